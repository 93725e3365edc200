import Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { expect } from "vitest";
import { serverNames, type ServerName } from "../src/config/schema.js";
import { taskMarker } from "../src/domain/task.js";

/**
 * How many records of each task every server of the embedded default keeps, read from the
 * servers' own data under `dataDir` (not from taskfan's database). `deltatask` may name the
 * fault server's TASKS_FILE when it plays that role.
 */
export function recordsPerServer(
  dataDir: string,
  ids: readonly string[],
  options: { deltatask?: string } = {},
): Map<string, Record<ServerName, number>> {
  const json = (...p: string[]) => JSON.parse(readFileSync(path.join(dataDir, ...p), "utf8"));
  const delta: Array<{ tags: string[] }> = options.deltatask
    ? JSON.parse(readFileSync(options.deltatask, "utf8"))
    : json("deltatask", "tasks.json").tasks;
  const memory = readFileSync(path.join(dataDir, "memory", "memory.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { name?: string });
  const kv = new Database(path.join(dataDir, "hpkv-memory", "context.db"), { readonly: true });
  const keys = (kv.prepare("SELECT key FROM context_items").all() as Array<{ key: string }>).map(
    (r) => r.key,
  );
  kv.close();
  const trailers = execFileSync("git", ["-C", path.join(dataDir, "git", "tasks"), "log", "--format=%b"], {
    encoding: "utf8",
  }).split("\n");
  const backupRoot = path.join(dataDir, "backup", "backups");
  const backups = existsSync(backupRoot)
    ? readdirSync(backupRoot).flatMap((f) =>
        readdirSync(path.join(backupRoot, f)).map(
          (s) => json("backup", "backups", f, s, "backup-metadata.json") as { agent_context: string },
        ),
      )
    : [];
  const files = readdirSync(path.join(dataDir, "files", "tasks"));
  const shrimp: Array<{ name: string }> = json("shrimp", "tasks.json").tasks;
  const todos: Array<{ summary: string }> =
    json("calendar", "calendar.json").calendars["/taskfan/tasks/"] ?? [];
  const messages: Array<{ sequence_id?: string; deleted?: boolean }> = json(
    "notifications",
    "messages.json",
  ).messages;
  const entries: Array<{ tags: string[] }> = json("time-tracker", "time-tracker.json").tasks;
  return new Map(
    ids.map((id) => {
      const marker = taskMarker(id);
      return [
        id,
        {
          deltatask: delta.filter((t) => t.tags.includes(marker)).length,
          "shrimp-task-manager": shrimp.filter((t) => t.name.startsWith(`[${marker}]`)).length,
          "hpkv-memory": keys.filter((k) => k === `taskfan_task_${id}`).length,
          memory: memory.filter((e) => e.name === `taskfan-task-${id}`).length,
          calendar: todos.filter((t) => t.summary.endsWith(`[${marker}]`)).length,
          notifications: messages.filter((m) => m.sequence_id === marker && !m.deleted).length,
          "time-tracker": entries.filter((t) => t.tags.includes(marker)).length,
          git: trailers.filter((l) => l === `Taskfan-Task: ${id}`).length,
          filesystem: files.filter((f) => f === `${id}.md`).length,
          backup: backups.filter((b) => JSON.parse(b.agent_context).marker === marker).length,
        },
      ];
    }),
  );
}

/** One record of the task on each of the ten servers. */
export const onceEverywhere = Object.fromEntries(serverNames.map((s) => [s, 1]));

/**
 * What each server of the embedded default holds of one task now, read from its own files
 * under `dataDir`: the records, the git subjects, the file, the trash and the snapshots.
 */
export function taskOnServers(dataDir: string, id: string) {
  const data = (...p: string[]) => path.join(dataDir, ...p);
  const readJson = (...p: string[]) => JSON.parse(readFileSync(data(...p), "utf8"));
  const marker = taskMarker(id);
  const delta = readJson("deltatask", "tasks.json").tasks.filter((t: { tags: string[] }) =>
    t.tags.includes(marker),
  );
  const shrimp = readJson("shrimp", "tasks.json").tasks.filter((t: { name: string }) =>
    t.name.startsWith(`[${marker}]`),
  );
  const kv = new Database(data("hpkv-memory", "context.db"), { readonly: true });
  const saved = kv
    .prepare("SELECT value FROM context_items WHERE key = ?")
    .all(`taskfan_task_${id}`) as Array<{
    value: string;
  }>;
  kv.close();
  const entities = readFileSync(data("memory", "memory.jsonl"), "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { name?: string; observations?: string[] })
    .filter((e) => e.name === `taskfan-task-${id}`);
  const todos = (readJson("calendar", "calendar.json").calendars["/taskfan/tasks/"] ?? []).filter(
    (t: { summary: string }) => t.summary.endsWith(`[${marker}]`),
  );
  const messages = readJson("notifications", "messages.json").messages.filter(
    (m: { sequence_id?: string; deleted?: boolean }) => m.sequence_id === marker && !m.deleted,
  );
  const tracked = readJson("time-tracker", "time-tracker.json").tasks.filter((t: { tags: string[] }) =>
    t.tags.includes(marker),
  );
  const subjects = execFileSync(
    "git",
    ["-C", data("git", "tasks"), "log", "--format=%s", `--grep=^Taskfan-Task: ${id}$`],
    { encoding: "utf8" },
  )
    .split("\n")
    .filter(Boolean)
    .reverse();
  const file = data("files", "tasks", `${id}.md`);
  const trash = existsSync(data("files", "trash"))
    ? readdirSync(data("files", "trash")).filter((f) => f.startsWith(id))
    : [];
  // The change each commit of the task carries (its operation's key), from the trailers.
  const commitChanges = execFileSync(
    "git",
    ["-C", data("git", "tasks"), "log", "--format=%b", `--grep=^Taskfan-Task: ${id}$`],
    { encoding: "utf8" },
  )
    .split("\n")
    .filter((l) => l.startsWith("Taskfan-Change: "))
    .map((l) => l.slice("Taskfan-Change: ".length));
  const backupRoot = data("backup", "backups");
  const snapshots = existsSync(backupRoot)
    ? readdirSync(backupRoot)
        .flatMap((f) =>
          readdirSync(path.join(backupRoot, f)).map(
            (s) => readJson("backup", "backups", f, s, "backup-metadata.json") as { agent_context: string },
          ),
        )
        .map((b) => JSON.parse(b.agent_context) as { marker: string; change?: string })
        .filter((c) => c.marker === marker)
    : [];
  return {
    delta,
    shrimp,
    saved: saved.map((r) => JSON.parse(r.value) as Record<string, unknown>),
    entities,
    todos,
    messages,
    tracked,
    subjects,
    file: existsSync(file) ? readFileSync(file, "utf8") : undefined,
    trash,
    snapshots: snapshots.length,
    commitChanges,
    /** The change each snapshot was taken for (none for the create's). */
    snapshotChanges: snapshots.flatMap((c) => (c.change ? [c.change] : [])),
  };
}

/**
 * A deleted task is gone from every server that deletes (shrimp keeps a completed one, git
 * its history, backup its snapshots: the caller says what it expects of those), and its
 * file is in the trash.
 */
export function expectDeletedFromServers(r: ReturnType<typeof taskOnServers>, id: string): void {
  expect(r.delta).toEqual([]);
  expect(r.saved).toEqual([]);
  expect(r.entities).toEqual([]);
  expect(r.todos).toEqual([]);
  expect(r.messages).toEqual([]);
  expect(r.tracked).toEqual([]);
  expect(r.file).toBeUndefined();
  expect(r.trash).toEqual([`${id}-deleted.md`]);
}
