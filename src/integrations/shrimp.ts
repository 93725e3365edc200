import { ToolFailedError } from "../errors.js";
import { MalformedReplyError } from "../errors.js";
import type { Task } from "../domain/task.js";
import { taskMarker } from "../domain/task.js";
import { describeTask, textOf, type Integration } from "./integration.js";

const role = "shrimp-task-manager";
const uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";

/** Shrimp names are unique and at most 100 characters: our marker, then the title. */
export function shrimpName(task: Task): string {
  return `[${taskMarker(task.id)}] ${task.title}`.slice(0, 100);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** mcp-shrimp-task-manager: one planning task per taskfan task, always appended. */
export function createShrimpIntegration(): Integration {
  return {
    role,
    requiredTools: ["split_tasks", "query_task", "delete_task"],
    async create(task, call, signal) {
      const name = shrimpName(task);
      // Shrimp lists a task as "### <name> (ID: <uuid>)" with its description below: every
      // line of the person's text after the first is indented, so none can pass for a heading.
      const description = (task.description || `Task created from taskfan: ${task.title}`)
        .replace(/\n/g, "\n  ")
        .padEnd(10, ".")
        .slice(0, 2000);
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
