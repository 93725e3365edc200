import path from "node:path";
import { z } from "zod";
import { taskMarker } from "../domain/task.js";
import { ToolFailedError } from "../errors.js";
import type { Task } from "../domain/task.js";
import { callForJson, parseSettings, type CallTool, type Integration } from "./integration.js";

const role = "backup";
/** `source_dir`: the folder of task files it backs up; by default the server's own (`backup_sources`). */
const settingsSchema = z.strictObject({ source_dir: z.string().min(1).optional() });
const sources = z.object({ sources: z.array(z.string()) });
const created = z.object({ timestamp: z.string() });
const listed = z.object({
  backups: z.array(z.object({ timestamp: z.string(), agent_context: z.string().nullable() })),
});

function contextOf(context: string | null): { marker?: unknown; change?: unknown } | null {
  try {
    return JSON.parse(context ?? "null") as { marker?: unknown; change?: unknown } | null;
  } catch {
    return null;
  }
}

function markerOf(context: string | null): unknown {
  return contextOf(context)?.marker;
}

/**
 * Backup: a snapshot of the task's record file, taken once the filesystem server has
 * written it; the task record itself travels as the backup's agent context. The folder it
 * backs up is the server's to say (`backup_sources`); `settings.source_dir` overrides it.
 */
export function createBackupIntegration(settings: unknown): Integration {
  const given = parseSettings(settingsSchema, settings, role).source_dir;
  let source = given;
  const folderOf = () => {
    if (!source) throw new ToolFailedError(role, "backup_sources", "no folder to back up yet");
    return source;
  };
  /** A snapshot of the task's file, with the task (and the change that made it) as context. */
  async function snapshot(task: Task, change: string | undefined, call: CallTool, signal: AbortSignal) {
    const context = JSON.stringify({
      marker: taskMarker(task.id),
      ...(change ? { change } : {}),
      task: { ...task, status: undefined },
    });
    const reply = await callForJson(
      call,
      role,
      "backup_folder_create",
      { folder_path: folderOf(), include_pattern: `${task.id}.md`, agent_context: context },
      created,
      signal,
    );
    return reply.timestamp;
  }
  return {
    role,
    requiredTools: [
      "backup_folder_create",
      "backup_folder_list",
      "backup_delete",
      ...(given ? [] : ["backup_sources"]),
    ],
    after: ["filesystem"],
    async prepare(call, signal) {
      if (given) return;
      const reply = await callForJson(call, role, "backup_sources", {}, sources, signal);
      source = reply.sources[0];
      if (!source) {
        throw new ToolFailedError(
          role,
          "backup_sources",
          "the server backs up no folder; give it one, or set servers.backup.settings.source_dir",
        );
      }
    },
    async create(task, call, signal) {
      return { remoteId: await snapshot(task, undefined, call, signal) };
    },
    async change({ kind, key, recheck }, task, call, signal) {
      // Snapshots of a deleted task are kept: the backup is there to bring it back.
      if (kind === "delete") return { skipped: "snapshots are kept after a delete, for recovery" };
      // A new snapshot per version, older ones kept; after an attempt that may have landed, look.
      if (recheck) {
        const reply = await callForJson(
          call,
          role,
          "backup_folder_list",
          { folder_path: folderOf() },
          listed,
          signal,
        );
        const hit = reply.backups.find((b) => contextOf(b.agent_context)?.change === key);
        if (hit) return { remoteId: hit.timestamp };
      }
      return { remoteId: await snapshot(task, key, call, signal) };
    },
    async verify(task, remoteId, call, signal) {
      const marker = taskMarker(task.id);
      const reply = await callForJson(
        call,
        role,
        "backup_folder_list",
        { folder_path: folderOf() },
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
      await call("backup_folder_list", { folder_path: path.join(folderOf(), ".probe") }, signal);
    },
    async compensate(_task, remoteId, call, signal) {
      await call("backup_delete", { folder_path: folderOf(), timestamp: remoteId }, signal);
    },
  };
}
