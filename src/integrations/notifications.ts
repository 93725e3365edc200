import { z } from "zod";
import type { Task } from "../domain/task.js";
import { taskMarker } from "../domain/task.js";
import { callForJson, parseSettings, type CallTool, type Integration } from "./integration.js";

const role = "notifications";
const settingsSchema = z.strictObject({ topic: z.string().min(1).optional() });
const published = z.object({ id: z.string(), sequence_id: z.string().optional() });
const fetched = z.object({
  messages: z.array(z.object({ id: z.string(), sequence_id: z.string().optional() })),
});

function messageOf(task: Task): string {
  const parts = [task.title];
  if (task.deadline) parts.push(`due ${task.deadline}`);
  if (task.tags.length > 0) parts.push(task.tags.map((t) => `#${t}`).join(" "));
  return parts.join(" · ");
}

/**
 * ntfy: a notification that the task exists. A person may read it at once, so it waits
 * for the servers whose failure would roll the task back; its sequence id is our marker.
 */
export function createNotificationsIntegration(settings: unknown): Integration {
  const { topic } = parseSettings(settingsSchema, settings, role);
  const where = topic ? { topic } : {};
  /** Publishes the task's notification under its sequence id; the id it has there. */
  async function publish(title: string, task: Task, call: CallTool, signal: AbortSignal) {
    const reply = await callForJson(
      call,
      role,
      "ntfy_publish_message",
      {
        ...where,
        title,
        message: messageOf(task),
        priority: 6 - task.priority,
        tags: ["taskfan", ...task.tags].slice(0, 10),
        sequence_id: taskMarker(task.id),
      },
      published,
      signal,
    );
    return reply.sequence_id ?? reply.id;
  }
  return {
    role,
    requiredTools: ["ntfy_publish_message", "ntfy_fetch_messages", "ntfy_manage_message"],
    after: ["required"],
    async create(task, call, signal) {
      return { remoteId: await publish(`New task (priority ${task.priority})`, task, call, signal) };
    },
    async change({ kind }, task, call, signal) {
      const sequence = { ...where, sequence_id: taskMarker(task.id) };
      switch (kind) {
        // Published again with its sequence id, the notification is replaced in place.
        case "update":
          await publish(`Task changed (priority ${task.priority})`, task, call, signal);
          return {};
        case "reopen":
          await publish(`Task reopened (priority ${task.priority})`, task, call, signal);
          return {};
        case "complete":
          await call("ntfy_manage_message", { ...sequence, operation: "clear" }, signal);
          return {};
        case "delete":
          await call("ntfy_manage_message", { ...sequence, operation: "delete" }, signal);
          return {};
      }
    },
    async verify(task, _remoteId, call, signal) {
      const marker = taskMarker(task.id);
      const reply = await callForJson(
        call,
        role,
        "ntfy_fetch_messages",
        { ...where, since: "all", sequence_id: marker },
        fetched,
        signal,
      );
      return reply.messages.some((m) => m.sequence_id === marker)
        ? { found: true, remoteId: marker }
        : { found: false };
    },
    async probe(call, signal) {
      await call("ntfy_fetch_messages", { ...where, since: "1s" }, signal);
    },
    async compensate(task, _remoteId, call, signal) {
      await call(
        "ntfy_manage_message",
        { ...where, sequence_id: taskMarker(task.id), operation: "delete" },
        signal,
      );
    },
  };
}
