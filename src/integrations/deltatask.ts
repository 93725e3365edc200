import { z } from "zod";
import type { Task } from "../domain/task.js";
import { taskMarker } from "../domain/task.js";
import { ToolFailedError } from "../errors.js";
import {
  jsonOf,
  noToolFor,
  parseReply,
  throwIfErrorPayload,
  type CallTool,
  type Integration,
} from "./integration.js";

const role = "deltatask";
const created = z.object({ id: z.string().min(1) });
const listed = z.array(
  z.object({
    id: z.string(),
    tags: z.array(z.string()),
    completed: z.boolean().optional(),
    title: z.string().optional(),
  }),
);

const stateOf = (completed: unknown) =>
  typeof completed === "boolean" ? { state: completed ? ("done" as const) : ("open" as const) } : {};
const titleOf = (title: unknown) => (typeof title === "string" ? { title } : {});

async function callJson(call: CallTool, tool: string, args: Record<string, unknown>, signal: AbortSignal) {
  const value = jsonOf(await call(tool, args, signal), role, tool);
  throwIfErrorPayload(value, role, tool);
  return value;
}

/** Our priority 1 (most important) is DeltaTask's urgency 5. */
export function urgencyOf(task: Task): number {
  return 6 - task.priority;
}

/** DeltaTask: the task itself, tagged with our marker; deadline set by update_task. */
export function createDeltataskIntegration(): Integration {
  return {
    role,
    requiredTools: [
      "create_task",
      "get_task_by_id",
      "update_task",
      "delete_task",
      "list_tasks",
      "get_statistics",
    ],
    async create(task, call, signal) {
      const value = await callJson(
        call,
        "create_task",
        {
          title: task.title,
          description: task.description,
          urgency: urgencyOf(task),
          effort: 1,
          tags: [...task.tags, taskMarker(task.id)],
        },
        signal,
      );
      const { id } = parseReply(created, value, role, "create_task");
      if (task.deadline) {
        await callJson(call, "update_task", { task_id: id, updates: { deadline: task.deadline } }, signal);
      }
      return { remoteId: id };
    },
    async verify(task, remoteId, call, signal) {
      if (remoteId) {
        const value = jsonOf(
          await call("get_task_by_id", { task_id: remoteId }, signal),
          role,
          "get_task_by_id",
        );
        const found = value && typeof value === "object" && "id" in value;
        return found
          ? {
              found: true,
              remoteId,
              ...stateOf((value as { completed?: unknown }).completed),
              ...titleOf((value as { title?: unknown }).title),
            }
          : { found: false };
      }
      const value = await callJson(call, "list_tasks", { tags: [taskMarker(task.id)] }, signal);
      const tasks = parseReply(listed, value, role, "list_tasks");
      const match = tasks.find((t) => t.tags.includes(taskMarker(task.id)));
      return match
        ? { found: true, remoteId: match.id, ...stateOf(match.completed), ...titleOf(match.title) }
        : { found: false };
    },
    async change({ kind, remoteId, has }, task, call, signal) {
      const id = { task_id: remoteId };
      switch (kind) {
        case "update":
          // update_task replaces the whole tag list: our marker goes with the person's tags.
          await callJson(
            call,
            "update_task",
            {
              ...id,
              updates: {
                title: task.title,
                description: task.description,
                urgency: urgencyOf(task),
                tags: [...task.tags, taskMarker(task.id)],
                deadline: task.deadline,
              },
            },
            signal,
          );
          return {};
        case "complete":
          if (!has("finish_task")) return noToolFor(role, kind, "finish_task");
          await callJson(call, "finish_task", id, signal);
          return {};
        case "reopen":
          await callJson(call, "update_task", { ...id, updates: { completed: false } }, signal);
          return {};
        case "delete":
          try {
            await callJson(call, "delete_task", id, signal);
          } catch (error) {
            // A second delete (a retry after the first one landed) finds nothing: it is gone.
            if (!(error instanceof ToolFailedError && /not found/i.test(error.message))) throw error;
          }
          return {};
      }
    },
    async probe(call, signal) {
      await callJson(call, "get_statistics", {}, signal);
    },
    async compensate(_task, remoteId, call, signal) {
      await callJson(call, "delete_task", { task_id: remoteId }, signal);
    },
  };
}
