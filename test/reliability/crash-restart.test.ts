import Database from "better-sqlite3";
import { execFileSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { taskMarker } from "../../src/orchestrator/task.js";
import { alive, childPids, repoRoot, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";

const bin = path.join(repoRoot, "bin", "taskfan.js");
const createMany = path.join(repoRoot, "test", "fixtures", "create-many.mjs");
const tasks = 200;
// A random point in the fan-out: this many ms after the last task was created.
const killAfterMs = Math.floor(Math.random() * 1500);
let dir: string;
let remove: () => void;
const env = () => ({ ...process.env, DATA_DIR: path.join(dir, "data"), HTTP_PORT: "0", LOG_LEVEL: "info" });

beforeAll(() => {
  ({ dir, remove } = tempDir());
  // Short leases, so a killed run's operations are taken over quickly.
  writeFileSync(path.join(dir, "taskfan.config.json"), JSON.stringify({ dispatcher: { lease_seconds: 2 } }));
});
afterAll(() => {
  stopSpawned(); // only what a failed or timed-out test left running
  remove();
});

function taskStatuses(): Record<string, string> {
  const db = new Database(path.join(dir, "data", "taskfan.db"), { readonly: true, fileMustExist: true });
  try {
    return Object.fromEntries(
      (db.prepare("SELECT id, status FROM tasks").all() as Array<{ id: string; status: string }>).map((r) => [
        r.id,
        r.status,
      ]),
    );
  } finally {
    db.close();
  }
}

/** Starts `taskfan start` and resolves once it logs that it started, with its server pids. */
async function startTaskfan(): Promise<{ child: ChildProcess; servers: number[]; log: string[] }> {
  const child = spawnTracked(process.execPath, [bin, "start"], {
    cwd: dir,
    env: env(),
    stdio: ["ignore", "ignore", "pipe"],
  });
  const log: string[] = [];
  const lines = createInterface({ input: child.stderr! });
  const started = new Promise<void>((resolve) =>
    lines.on("line", (line) => {
      log.push(line);
      if (line.includes('"msg":"taskfan started"')) resolve();
    }),
  );
  await started;
  return { child, servers: childPids(child.pid!), log };
}

describe("a crash of the orchestrator mid fan-out", () => {
  const ids: string[] = [];

  it("kill -9 while tasks fan out, then SIGTERM a restarted run mid-way: exits 0, leaves no process", async () => {
    const doomed = spawnTracked(process.execPath, [createMany, String(tasks)], {
      cwd: dir,
      env: env(),
      stdio: ["ignore", "pipe", "ignore"],
    });
    const out = createInterface({ input: doomed.stdout! });
    for await (const line of out) {
      ids.push(line.trim());
      if (ids.length === tasks) break;
    }
    const doomedServers = childPids(doomed.pid!);
    await new Promise((r) => setTimeout(r, killAfterMs)); // the crash point, not a wait for a result
    process.stdout.write(`crash test: SIGKILL ${killAfterMs} ms after creating ${tasks} tasks\n`);
    doomed.kill("SIGKILL");
    await once(doomed, "exit");
    expect(Object.values(taskStatuses()).filter((s) => s === "done").length).toBeLessThan(tasks);

    // A second run starts, reaps whatever server the killed one left behind, takes over,
    // and is asked to stop in the middle.
    const second = await startTaskfan();
    expect(doomedServers.filter(alive)).toEqual([]);
    expect(second.servers.length).toBeGreaterThanOrEqual(10);
    await vi.waitFor(() => expect(second.log.some((l) => l.includes('"msg":"operation done"'))).toBe(true), {
      timeout: 20_000,
      interval: 20,
    });
    expect(await terminate(second.child)).toBe(0);
    expect(second.servers.filter(alive)).toEqual([]);
  });

  it("a third run finishes every task, each exactly once on every server", async () => {
    const third = await startTaskfan();
    await vi.waitFor(
      () => {
        const statuses = taskStatuses();
        expect(ids.map((id) => statuses[id])).toEqual(ids.map(() => "done"));
      },
      { timeout: 120_000, interval: 200 },
    );
    expect(await terminate(third.child)).toBe(0);

    const data = path.join(dir, "data");
    const json = (...p: string[]) => JSON.parse(readFileSync(path.join(data, ...p), "utf8"));
    const jsonl = readFileSync(path.join(data, "memory", "memory.jsonl"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    const kv = new Database(path.join(data, "hpkv-memory", "context.db"), { readonly: true });
    const keys = (kv.prepare("SELECT key FROM context_items").all() as Array<{ key: string }>).map(
      (r) => r.key,
    );
    kv.close();
    const commits = execFileSync("git", ["-C", path.join(data, "git", "tasks"), "log", "--format=%b"], {
      encoding: "utf8",
    });
    const backupRoot = path.join(data, "backup", "backups");
    const backups = readdirSync(backupRoot).flatMap((f) =>
      readdirSync(path.join(backupRoot, f)).map((s) =>
        json("backup", "backups", f, s, "backup-metadata.json"),
      ),
    );
    const count = (values: string[], needle: string) => values.filter((v) => v.includes(needle)).length;
    for (const id of ids) {
      const marker = taskMarker(id);
      const perServer = {
        deltatask: count(
          json("deltatask", "tasks.json").tasks.map((t: { tags: string[] }) => t.tags.join(" ")),
          marker,
        ),
        shrimp: count(
          json("shrimp", "tasks.json").tasks.map((t: { name: string }) => t.name),
          `[${marker}]`,
        ),
        "hpkv-memory": keys.filter((k) => k === `taskfan_task_${id}`).length,
        memory: jsonl.filter((e) => e.name === `taskfan-task-${id}`).length,
        calendar: count(
          json("calendar", "calendar.json").calendars["/taskfan/tasks/"].map(
            (t: { summary: string }) => t.summary,
          ),
          `[${marker}]`,
        ),
        notifications: json("notifications", "messages.json").messages.filter(
          (m: { sequence_id: string }) => m.sequence_id === marker,
        ).length,
        "time-tracker": count(
          json("time-tracker", "time-tracker.json").tasks.map((t: { tags: string[] }) => t.tags.join(" ")),
          marker,
        ),
        git: commits.split("\n").filter((l) => l === `Taskfan-Task: ${id}`).length,
        filesystem: readdirSync(path.join(data, "files", "tasks")).filter((f) => f === `${id}.md`).length,
        backup: backups.filter((b) => (b.agent_context as string).includes(`"marker":"${marker}"`)).length,
      };
      expect(perServer, id).toEqual({
        deltatask: 1,
        shrimp: 1,
        "hpkv-memory": 1,
        memory: 1,
        calendar: 1,
        notifications: 1,
        "time-tracker": 1,
        git: 1,
        filesystem: 1,
        backup: 1,
      });
    }
  });
});
