import path from "node:path";
import { z } from "zod";
import { taskMarker } from "../domain/task.js";
import { callForJson, parseSettings, type Integration } from "./integration.js";

const role = "backup";
const settingsSchema = z.strictObject({ source_dir: z.string().min(1) });
const created = z.object({ timestamp: z.string() });
const listed = z.object({
  backups: z.array(z.object({ timestamp: z.string(), agent_context: z.string().nullable() })),
});

function markerOf(context: string | null): unknown {
  try {
    return (JSON.parse(context ?? "null") as { marker?: unknown } | null)?.marker;
  } catch {
    return undefined;
  }
}

/**
 * Backup: a snapshot of the task's record file, taken once the filesystem server has
 * written it; the task record itself travels as the backup's agent context.
 */
export function createBackupIntegration(settings: unknown): Integration {
  const { source_dir: folder } = parseSettings(settingsSchema, settings, role);
  return {
    role,
    requiredTools: ["backup_folder_create", "backup_folder_list", "backup_delete"],
    after: ["filesystem"],
    async create(task, call, signal) {
      const context = JSON.stringify({ marker: taskMarker(task.id), task: { ...task, status: undefined } });
      const reply = await callForJson(
        call,
        role,
        "backup_folder_create",
        { folder_path: folder, include_pattern: `${task.id}.md`, agent_context: context },
        created,
        signal,
      );
      return { remoteId: reply.timestamp };
    },
    async verify(task, remoteId, call, signal) {
      const marker = taskMarker(task.id);
      const reply = await callForJson(
        call,
        role,
        "backup_folder_list",
        { folder_path: folder },
        listed,
        signal,
      );
      // The marker is a field of the context we wrote, not text a title could carry.
      const hit = reply.backups.find((b) =>
        remoteId ? b.timestamp === remoteId : markerOf(b.agent_context) === marker,
      );
      return hit ? { found: true, remoteId: hit.timestamp } : { found: false };
    },
    async probe(call, signal) {
      await call("backup_folder_list", { folder_path: path.join(folder, ".probe") }, signal);
    },
    async compensate(_task, remoteId, call, signal) {
      await call("backup_delete", { folder_path: folder, timestamp: remoteId }, signal);
    },
  };
}
