import { z } from "zod";
import type { Task } from "../domain/task.js";
import { callForJson, type Integration } from "./integration.js";

const role = "memory";
const graph = z.object({
  entities: z.array(z.object({ name: z.string(), observations: z.array(z.string()).optional() })),
});

export function entityName(task: Task): string {
  return `taskfan-task-${task.id}`;
}

function observations(task: Task): string[] {
  const o = [`title: ${task.title}`, `priority: ${task.priority}`];
  if (task.description) o.push(`description: ${task.description}`);
  if (task.deadline) o.push(`deadline: ${task.deadline}`);
  for (const tag of task.tags) o.push(`tag: ${tag}`);
  if (task.state && task.state !== "open") o.push(`state: ${task.state}`);
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
    async change({ kind, remoteId }, task, call, signal) {
      if (kind === "delete") {
        await call("delete_entities", { entityNames: [remoteId] }, signal);
        return {};
      }
      // No update tool: the observations that no longer hold go, the new ones come. Both
      // are idempotent given what is read first, so a retry changes nothing twice.
      const reply = await callForJson(call, role, "open_nodes", { names: [remoteId] }, graph, signal);
      const entity = reply.entities.find((e) => e.name === remoteId);
      if (!entity) return { skipped: `the entity ${remoteId} is gone from memory` };
      const have = entity.observations ?? [];
      const want = observations(task);
      const stale = have.filter((o) => !want.includes(o));
      const missing = want.filter((o) => !have.includes(o));
      if (stale.length > 0) {
        await call(
          "delete_observations",
          { deletions: [{ entityName: remoteId, observations: stale }] },
          signal,
        );
      }
      if (missing.length > 0) {
        await call(
          "add_observations",
          { observations: [{ entityName: remoteId, contents: missing }] },
          signal,
        );
      }
      return {};
    },
    async probe(call, signal) {
      await call("open_nodes", { names: [] }, signal);
    },
    async compensate(_task, remoteId, call, signal) {
      await call("delete_entities", { entityNames: [remoteId] }, signal);
    },
  };
}
