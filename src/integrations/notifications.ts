import { z } from "zod";
import type { Task } from "../domain/task.js";
import { taskMarker } from "../domain/task.js";
import { callForJson, parseSettings, type Integration } from "./integration.js";

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
  return {
    role,
    requiredTools: ["ntfy_publish_message", "ntfy_fetch_messages", "ntfy_manage_message"],
    after: ["required"],
    async create(task, call, signal) {
      const reply = await callForJson(
        call,
        role,
        "ntfy_publish_message",
        {
          ...where,
          title: `New task (priority ${task.priority})`,
          message: messageOf(task),
          priority: 6 - task.priority,
          tags: ["taskfan", ...task.tags].slice(0, 10),
          sequence_id: taskMarker(task.id),
        },
        published,
        signal,
      );
      return { remoteId: reply.sequence_id ?? reply.id };
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
