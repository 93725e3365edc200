import { z } from "zod";
import type { Task } from "../domain/task.js";
import { callForJson, type Integration } from "./integration.js";

const role = "memory";
const graph = z.object({ entities: z.array(z.object({ name: z.string() })) });

export function entityName(task: Task): string {
  return `taskfan-task-${task.id}`;
}

function observations(task: Task): string[] {
  const o = [`title: ${task.title}`, `priority: ${task.priority}`];
  if (task.description) o.push(`description: ${task.description}`);
  if (task.deadline) o.push(`deadline: ${task.deadline}`);
  for (const tag of task.tags) o.push(`tag: ${tag}`);
  return o;
}

/** The knowledge graph: one entity per task, named by its id (creating it twice is a no-op). */
export function createMemoryIntegration(): Integration {
  return {
    role,
    requiredTools: ["create_entities", "open_nodes", "delete_entities"],
    async create(task, call, signal) {
      const name = entityName(task);
      await call(
        "create_entities",
        { entities: [{ name, entityType: "task", observations: observations(task) }] },
        signal,
      );
      return { remoteId: name };
    },
    async verify(task, _remoteId, call, signal) {
      const name = entityName(task);
      const reply = await callForJson(call, role, "open_nodes", { names: [name] }, graph, signal);
      return reply.entities.some((e) => e.name === name) ? { found: true, remoteId: name } : { found: false };
    },
    async probe(call, signal) {
      await call("open_nodes", { names: [] }, signal);
    },
    async compensate(_task, remoteId, call, signal) {
      await call("delete_entities", { entityNames: [remoteId] }, signal);
    },
  };
}
