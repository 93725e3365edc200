import { ToolFailedError } from "../errors.js";
import { MalformedReplyError } from "../errors.js";
import type { Task } from "../domain/task.js";
import { taskMarker } from "../domain/task.js";
import { describeTask, noToolFor, textOf, type CallTool, type Integration } from "./integration.js";

const role = "shrimp-task-manager";
const uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

/** Shrimp names are unique and at most 100 characters: our marker, then the title. */
export function shrimpName(task: Task): string {
  return `[${taskMarker(task.id)}] ${task.title}`.slice(0, 100);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** The status shrimp shows for a task (pending, in_progress, completed, blocked), or "gone". */
async function statusOf(remoteId: string, call: CallTool, signal: AbortSignal): Promise<string> {
  let text: string;
  try {
    text = textOf(await call("get_task_detail", { taskId: remoteId }, signal));
  } catch (error) {
    // Shrimp answers an unknown id as an error ("找不到ID為 … 的任務", or "not found").
    if (error instanceof ToolFailedError && /not found|找不到/i.test(error.message)) return "gone";
    throw error;
  }
  const status = /\*\*Status:\*\*\s*([a-z_]+)/i.exec(text)?.[1];
  if (status) return status.toLowerCase();
  if (/not found|找不到/i.test(text)) return "gone";
  throw new MalformedReplyError(role, "get_task_detail", `no status in "${text.slice(0, 120)}"`);
}

function descriptionOf(task: Task): string {
  // Shrimp lists a task as "### <name> (ID: <uuid>)" with its description below: every
  // line of the person's text after the first is indented, so none can pass for a heading.
  return (task.description || `Task created from taskfan: ${task.title}`)
    .replace(/\n/g, "\n  ")
    .padEnd(10, ".")
    .slice(0, 2000);
}

/**
 * mcp-shrimp-task-manager: one planning task per taskfan task, always appended. Shrimp
 * keeps a completed task as it is (it refuses to update or delete one, and has no reopen):
 * a change of a task completed there is skipped with that reason.
 */
export function createShrimpIntegration(): Integration {
  return {
    role,
    requiredTools: ["split_tasks", "query_task", "delete_task"],
    async create(task, call, signal) {
      const name = shrimpName(task);
      const description = descriptionOf(task);
      const tasksRaw = JSON.stringify([
        {
          name,
          description,
          implementationGuide: describeTask(task).slice(0, 2000),
          notes: `Created by taskfan (${taskMarker(task.id)})`,
          ...(task.deadline ? { verificationCriteria: `Done before ${task.deadline}` } : {}),
        },
      ]);
      // The default mode wipes every task: always append.
      const result = await call("split_tasks", { updateMode: "append", tasksRaw }, signal);
      const text = textOf(result);
      // Bad input comes back as plain text (isError false): no ID block means it failed.
      const block = new RegExp(`${escapeRegExp(name)}\\s*\\n+\\*\\*ID:\\*\\*\\s*\`(${uuid})\``).exec(text);
      if (block?.[1]) return { remoteId: block[1] };
      if (/\*\*ID:\*\*/.test(text)) {
        throw new MalformedReplyError(role, "split_tasks", "the reply does not list the new task");
      }
      throw new ToolFailedError(role, "split_tasks", text.slice(0, 300));
    },
    async verify(task, remoteId, call, signal) {
      const query = remoteId
        ? { query: remoteId, isId: true }
        : { query: taskMarker(task.id), isId: false, pageSize: 20 };
      const text = textOf(await call("query_task", query, signal));
      // Result headings read "### <name> (ID: <uuid>)"; the query term is echoed elsewhere.
      const heading = remoteId
        ? new RegExp(`^### [^\\n]*\\(ID: (${escapeRegExp(remoteId)})\\)`, "m")
        : new RegExp(`^### \\[${escapeRegExp(taskMarker(task.id))}\\][^\\n]*\\(ID: (${uuid})\\)`, "m");
      const match = heading.exec(text);
      return match?.[1] ? { found: true, remoteId: match[1] } : { found: false };
    },
    async change({ kind, remoteId, has }, task, call, signal) {
      if (!has("get_task_detail")) return noToolFor(role, kind, "get_task_detail");
      const status = await statusOf(remoteId, call, signal);
      if (status === "gone") {
        return kind === "delete" ? {} : { skipped: "the task is gone from shrimp-task-manager" };
      }
      const completed = status === "completed";
      switch (kind) {
        case "update":
          if (completed) return { skipped: "shrimp-task-manager does not update a completed task" };
          if (!has("update_task")) return noToolFor(role, kind, "update_task");
          await expectSuccess(
            "update_task",
            await call(
              "update_task",
              {
                taskId: remoteId,
                name: shrimpName(task),
                description: descriptionOf(task),
                implementationGuide: describeTask(task).slice(0, 2000),
              },
              signal,
            ),
          );
          return {};
        case "complete":
          if (completed) return {};
          if (!has("execute_task") || !has("verify_task")) return noToolFor(role, kind, "verify_task");
          // Shrimp's completion flow: in progress first, then verified with a passing score.
          if (status !== "in_progress") await call("execute_task", { taskId: remoteId }, signal);
          await call(
            "verify_task",
            {
              taskId: remoteId,
              score: 100,
              summary: `Marked done in taskfan (${taskMarker(task.id)}), version ${task.version}.`,
            },
            signal,
          );
          return {};
        case "reopen":
          return completed ? { skipped: "shrimp-task-manager cannot reopen a completed task" } : {};
        case "delete": {
          if (completed)
            return { skipped: "shrimp-task-manager keeps completed tasks (it refuses to delete them)" };
          const text = textOf(await call("delete_task", { taskId: remoteId }, signal));
          if (!/^## Success|刪除成功/m.test(text))
            throw new ToolFailedError(role, "delete_task", text.slice(0, 300));
          return {};
        }
      }
    },
    async probe(call, signal) {
      await call("query_task", { query: "taskfan-probe", pageSize: 1 }, signal);
    },
    async compensate(_task, remoteId, call, signal) {
      const text = textOf(await call("delete_task", { taskId: remoteId }, signal));
      if (!/^## Success|刪除成功/m.test(text)) {
        throw new ToolFailedError(role, "delete_task", text.slice(0, 300));
      }
    },
  };
}

/** Shrimp answers an update with "## Success" (or a failure heading and isError). */
async function expectSuccess(tool: string, result: Awaited<ReturnType<CallTool>>): Promise<void> {
  const text = textOf(result);
  if (/## (Operation Failed|System Error)/.test(text))
    throw new ToolFailedError(role, tool, text.slice(0, 300));
}
