import { z } from "zod";
import { ToolFailedError } from "../errors.js";
import type { Task } from "../domain/task.js";
import { jsonOf, parseReply, textOf, type CallTool, type Integration } from "./integration.js";

const role = "hpkv-memory";
const got = z.object({ items: z.array(z.object({ key: z.string() })) });

/** HPKV-style key: project, date, session, sequence; ours ends with the task id. */
export function memoryKey(task: Task): string {
  return `taskfan_task_${task.id}`;
}

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
      return reply.items.some((i) => i.key === key) ? { found: true, remoteId: key } : { found: false };
    },
    async probe(call, signal) {
      await call("context_get", { key: "taskfan_probe" }, signal);
    },
    async compensate(_task, remoteId, call, signal) {
      await call("context_batch_delete", { keys: [remoteId] }, signal);
    },
  };
}
