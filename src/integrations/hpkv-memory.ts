import { z } from "zod";
import { ToolFailedError } from "../errors.js";
import type { Task, TaskFields } from "../domain/task.js";
import { jsonOf, parseReply, textOf, type CallTool, type Integration } from "./integration.js";

const role = "hpkv-memory";
const got = z.object({ items: z.array(z.object({ key: z.string(), value: z.unknown().optional() })) });
const watchOpened = z.object({ watcherId: z.string().min(1) });
const watchPolled = z.object({
  changes: z.array(z.object({ key: z.string() })),
  hasMore: z.boolean().optional(),
});
/** Pages of 100 changes one poll reads at most; more means a flood: read everything. */
const maxPages = 20;
/** The saved value as taskfan wrote it, field by field: a field of another type is not read. */
const savedValue = z.object({
  title: z.string().optional().catch(undefined),
  description: z.string().optional().catch(undefined),
  priority: z.number().optional().catch(undefined),
  deadline: z.string().datetime({ offset: true }).nullable().optional().catch(undefined),
  tags: z.array(z.string()).optional().catch(undefined),
  state: z.enum(["open", "done"]).optional().catch(undefined),
});

/**
 * The state and fields a saved value holds (a value with no state is an open task); a
 * value that is no JSON object holds none. The change taskfan makes of them is checked
 * like any other, so a value taskfan does not take (an empty title) is not taken.
 */
function readBack(value: unknown): { state: "open" | "done"; fields: Partial<TaskFields> } | undefined {
  let parsed: unknown = value;
  if (typeof value === "string") {
    try {
      parsed = JSON.parse(value);
    } catch {
      return undefined;
    }
  }
  const saved = savedValue.safeParse(parsed);
  if (!saved.success) return undefined;
  const { state, ...fields } = saved.data;
  const held = Object.fromEntries(Object.entries(fields).filter(([, v]) => v !== undefined));
  if (typeof held.deadline === "string") held.deadline = new Date(held.deadline).toISOString();
  return { state: state ?? "open", fields: held as Partial<TaskFields> };
}

/** HPKV-style key: project, date, session, sequence; ours ends with the task id. */
export function memoryKey(task: Pick<Task, "id">): string {
  return `${keyPrefix}${task.id}`;
}
const keyPrefix = "taskfan_task_";

function priorityOf(task: Task): "high" | "normal" | "low" {
  return task.priority <= 2 ? "high" : task.priority === 3 ? "normal" : "low";
}

/** Saves the task under its key (an upsert); the key. */
async function save(task: Task, call: CallTool, signal: AbortSignal): Promise<string> {
  const key = memoryKey(task);
  const value = JSON.stringify({
    id: task.id,
    title: task.title,
    description: task.description,
    priority: task.priority,
    deadline: task.deadline,
    tags: task.tags,
    ...(task.state && task.state !== "open" ? { state: task.state } : {}),
  });
  const text = textOf(
    await call("context_save", { key, value, category: "task", priority: priorityOf(task) }, signal),
  );
  if (!text.includes(key)) throw new ToolFailedError(role, "context_save", text.slice(0, 300));
  return key;
}

/**
 * Semantic memory through mcp-memory-keeper (the hosted HPKV server cannot be reached
 * here): save by key, get by key, delete by key. Saving a key again overwrites it.
 */
export function createHpkvMemoryIntegration(): Integration {
  return {
    role,
    requiredTools: ["context_save", "context_get", "context_batch_delete"],
    async create(task, call, signal) {
      return { remoteId: await save(task, call, signal) };
    },
    async change({ kind, remoteId }, task, call, signal) {
      // Saving the key again overwrites it: the value carries the task as it now is.
      if (kind !== "delete") return { remoteId: await save(task, call, signal) };
      await call("context_batch_delete", { keys: [remoteId] }, signal);
      return {};
    },
    async verify(task, _remoteId, call, signal) {
      const key = memoryKey(task);
      const result = await call("context_get", { key }, signal);
      if (/^No matching context/i.test(textOf(result).trim())) return { found: false };
      const reply = parseReply(got, jsonOf(result, role, "context_get"), role, "context_get");
      const item = reply.items.find((i) => i.key === key);
      if (!item) return { found: false };
      // The state and fields as saved: sync reads a change made there from them.
      return { found: true, remoteId: key, ...readBack(item.value) };
    },
    async changes(cursor, call, signal, has) {
      if (!has("context_watch")) return undefined;
      if (cursor !== null) {
        const changed = new Set<string>();
        for (let page = 0; page < maxPages; page++) {
          const result = await call("context_watch", { action: "poll", watcherId: cursor }, signal);
          // Expired (30 minutes without a poll), stopped, or unknown to a new database.
          if (/^Error:/.test(textOf(result).trim())) break;
          const reply = parseReply(watchPolled, jsonOf(result, role, "context_watch"), role, "context_watch");
          for (const c of reply.changes) changed.add(c.key);
          if (!reply.hasMore) return { cursor, changed };
        }
      }
      const result = await call(
        "context_watch",
        { action: "create", filters: { keys: [`${keyPrefix}*`] } },
        signal,
      );
      const opened = parseReply(watchOpened, jsonOf(result, role, "context_watch"), role, "context_watch");
      return { cursor: opened.watcherId, changed: "all" };
    },
    async probe(call, signal) {
      await call("context_get", { key: "taskfan_probe" }, signal);
    },
    async compensate(_task, remoteId, call, signal) {
      await call("context_batch_delete", { keys: [remoteId] }, signal);
    },
  };
}
