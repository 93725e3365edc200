import { z } from "zod";
import type { Task, TaskFields } from "../domain/task.js";
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
/** A DeltaTask record as taskfan reads it back; what is not as expected is left out. */
const record = z.object({
  id: z.string(),
  tags: z.array(z.string()).optional().catch(undefined),
  completed: z.boolean().optional().catch(undefined),
  title: z.string().optional().catch(undefined),
  description: z.string().optional().catch(undefined),
  urgency: z.number().int().min(1).max(5).optional().catch(undefined),
  deadline: z.string().nullable().optional().catch(undefined),
});
const listed = z.array(record.extend({ tags: z.array(z.string()) }));

/**
 * What the record holds of the task: its state, and every field DeltaTask keeps whole (the
 * tags without our marker, the urgency as our priority). A deadline that is not a date
 * is left out.
 */
function lookupOf(task: Task, value: z.infer<typeof record>) {
  const fields: Partial<TaskFields> = {};
  if (value.title !== undefined) fields.title = value.title;
  if (value.description !== undefined) fields.description = value.description;
  if (value.urgency !== undefined) fields.priority = 6 - value.urgency;
  if (value.tags) fields.tags = value.tags.filter((t) => t !== taskMarker(task.id));
  if (value.deadline === null) fields.deadline = null;
  else if (value.deadline !== undefined && !Number.isNaN(Date.parse(value.deadline)))
    fields.deadline = new Date(value.deadline).toISOString();
  return {
    found: true as const,
    remoteId: value.id,
    ...(value.completed === undefined
      ? {}
      : { state: value.completed ? ("done" as const) : ("open" as const) }),
    fields,
  };
}

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
        return found ? lookupOf(task, parseReply(record, value, role, "get_task_by_id")) : { found: false };
      }
      const value = await callJson(call, "list_tasks", { tags: [taskMarker(task.id)] }, signal);
      const tasks = parseReply(listed, value, role, "list_tasks");
      const match = tasks.find((t) => t.tags.includes(taskMarker(task.id)));
      return match ? lookupOf(task, match) : { found: false };
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
