import { z } from "zod";
import { MalformedReplyError } from "../errors.js";
import type { Task, TaskFields } from "../domain/task.js";
import { taskMarker } from "../domain/task.js";
import { ToolFailedError } from "../errors.js";
import {
  callForJson,
  describeTask,
  noToolFor,
  parseSettings,
  textOf,
  type Integration,
} from "./integration.js";

const role = "calendar";
export const caldavSettingsSchema = z.strictObject({
  /** The CalDAV server caldav-mcp talks to; default: the Radicale taskfan starts. */
  url: z.string().url().optional(),
  username: z.string().min(1).default("taskfan"),
  /** Start Debian's Radicale under DATA_DIR on this loopback port. */
  radicale: z.boolean().default(false),
  port: z.number().int().min(1).max(65535).default(5232),
  radicale_command: z.string().min(1).optional(),
});

const settingsSchema = z.strictObject({
  calendar_url: z.string().min(1),
  caldav: caldavSettingsSchema.optional(),
});
const todos = z.object({
  todos: z.array(
    z.object({
      uid: z.string(),
      summary: z.string(),
      description: z.string().optional(),
      status: z.string().optional(),
      due: z.string().optional().catch(undefined),
    }),
  ),
  total: z.number(),
});

export function todoSummary(task: Task): string {
  return `${task.title} [${taskMarker(task.id)}]`;
}

/**
 * What a todo holds of the task: the title (what precedes our marker at the end of the
 * summary) and the deadline (its due). caldav-mcp cannot take a due date away, so a task
 * without a deadline reads no due from its todo: it may be the one taskfan cleared.
 */
function fieldsOf(task: Task, todo: { summary: string; due?: string | undefined }): Partial<TaskFields> {
  const fields: Partial<TaskFields> = {};
  const suffix = ` [${taskMarker(task.id)}]`;
  if (todo.summary.endsWith(suffix)) fields.title = todo.summary.slice(0, -suffix.length);
  if (task.deadline !== null) {
    if (todo.due === undefined) fields.deadline = null;
    else if (!Number.isNaN(Date.parse(todo.due))) fields.deadline = new Date(todo.due).toISOString();
  }
  return fields;
}

/** caldav-mcp (or our local server with its surface): one VTODO per task, due = deadline. */
export function createCalendarIntegration(settings: unknown): Integration {
  const { calendar_url: calendarUrl } = parseSettings(settingsSchema, settings, role);
  return {
    role,
    requiredTools: ["create-todo", "list-todos", "delete-todo"],
    async create(task, call, signal) {
      const result = await call(
        "create-todo",
        {
          summary: todoSummary(task),
          calendarUrl,
          description: describeTask(task),
          ...(task.deadline ? { due: task.deadline } : {}),
        },
        signal,
      );
      const uid = textOf(result).trim();
      if (!uid || /\s/.test(uid))
        throw new MalformedReplyError(role, "create-todo", `expected a UID, got "${uid.slice(0, 80)}"`);
      return { remoteId: uid };
    },
    async verify(task, remoteId, call, signal) {
      const marker = taskMarker(task.id);
      for (let offset = 0; ; offset += 500) {
        const reply = await callForJson(
          call,
          role,
          "list-todos",
          { calendarUrl, status: "ALL", limit: 500, offset },
          todos,
          signal,
        );
        // Our marker ends the summary we write: a title that holds another task's marker
        // has it in the middle, never at the end.
        const hit = reply.todos.find((t) =>
          remoteId ? t.uid === remoteId : t.summary.endsWith(` [${marker}]`),
        );
        // STATUS:COMPLETED is done; NEEDS-ACTION and IN-PROCESS are open (RFC 5545).
        const state =
          hit?.status === "COMPLETED"
            ? { state: "done" as const }
            : hit?.status === "NEEDS-ACTION" || hit?.status === "IN-PROCESS"
              ? { state: "open" as const }
              : {};
        if (hit) return { found: true, remoteId: hit.uid, ...state, fields: fieldsOf(task, hit) };
        if (offset + 500 >= reply.total) return { found: false };
      }
    },
    async change({ kind, remoteId, recheck, has }, task, call, signal) {
      const uid = { uid: remoteId, calendarUrl };
      switch (kind) {
        case "update":
          if (!has("update-todo")) return noToolFor(role, kind, "update-todo");
          // caldav-mcp cannot clear a due date: a deadline taken away stays on the todo.
          await call(
            "update-todo",
            {
              ...uid,
              summary: todoSummary(task),
              description: describeTask(task),
              ...(task.deadline ? { due: task.deadline } : {}),
            },
            signal,
          );
          return {};
        case "complete":
          // STATUS:COMPLETED with COMPLETED set (RFC 5545); the server raises SEQUENCE.
          if (has("complete-todo")) await call("complete-todo", uid, signal);
          else if (has("update-todo")) await call("update-todo", { ...uid, status: "COMPLETED" }, signal);
          else return noToolFor(role, kind, "complete-todo");
          return {};
        case "reopen":
          if (!has("update-todo")) return noToolFor(role, kind, "update-todo");
          await call("update-todo", { ...uid, status: "NEEDS-ACTION" }, signal);
          return {};
        case "delete":
          try {
            await call("delete-todo", uid, signal);
          } catch (error) {
            // A retry after the delete landed finds nothing: it is gone.
            if (!(recheck && error instanceof ToolFailedError && /not found/i.test(error.message)))
              throw error;
          }
          return {};
      }
    },
    async probe(call, signal) {
      await call("list-todos", { calendarUrl, status: "ALL", limit: 1 }, signal);
    },
    async compensate(_task, remoteId, call, signal) {
      await call("delete-todo", { uid: remoteId, calendarUrl }, signal);
    },
  };
}
