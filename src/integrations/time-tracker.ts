import { z } from "zod";
import { taskMarker } from "../domain/task.js";
import { ToolFailedError } from "../errors.js";
import { callForJson, noToolFor, type Integration } from "./integration.js";

const role = "time-tracker";
const created = z.object({ id: z.string() });
const listed = z.object({ tasks: z.array(z.object({ id: z.string(), tags: z.array(z.string()) })) });

/** The time tracker: registers the task so time can be tracked against it. */
export function createTimeTrackerIntegration(): Integration {
  return {
    role,
    requiredTools: ["toggl_create_task", "toggl_list_tasks", "toggl_delete_task"],
    async create(task, call, signal) {
      const reply = await callForJson(
        call,
        role,
        "toggl_create_task",
        { name: task.title, tags: [taskMarker(task.id), ...task.tags] },
        created,
        signal,
      );
      return { remoteId: reply.id };
    },
    async verify(task, remoteId, call, signal) {
      const marker = taskMarker(task.id);
      const reply = await callForJson(call, role, "toggl_list_tasks", { tag: marker }, listed, signal);
      const hit = reply.tasks.find((t) => (remoteId ? t.id === remoteId : t.tags.includes(marker)));
      return hit ? { found: true, remoteId: hit.id } : { found: false };
    },
    async change({ kind, remoteId, recheck, has }, task, call, signal) {
      if (kind === "delete") {
        try {
          await call("toggl_delete_task", { task_id: remoteId }, signal);
        } catch (error) {
          // A retry after the delete landed finds nothing: it is gone.
          if (!(recheck && error instanceof ToolFailedError && /not found/i.test(error.message))) throw error;
        }
        return {};
      }
      // Toggl's shape: a done task is inactive (its running timer stops); reopened, active again.
      if (!has("toggl_update_task")) return noToolFor(role, kind, "toggl_update_task");
      const fields =
        kind === "update"
          ? { name: task.title, tags: [taskMarker(task.id), ...task.tags] }
          : { active: kind === "reopen" };
      await call("toggl_update_task", { task_id: remoteId, ...fields }, signal);
      return {};
    },
    async probe(call, signal) {
      await call("toggl_list_tasks", { tag: "taskfan-probe" }, signal);
    },
    async compensate(_task, remoteId, call, signal) {
      await call("toggl_delete_task", { task_id: remoteId }, signal);
    },
  };
}
