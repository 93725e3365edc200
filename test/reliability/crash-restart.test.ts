import Database from "better-sqlite3";
import { type ChildProcess } from "node:child_process";
import { EventEmitter, once } from "node:events";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { alive, childPids, repoRoot, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";
import { onceEverywhere, recordsPerServer } from "../server-records.js";

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

interface Run {
  child: ChildProcess;
  servers: number[];
  log: string[];
  /** Emits "line" for every line the process logs. */
  lines: EventEmitter<{ line: [string] }>;
}

/** Starts `taskfan start` and resolves once it logs that it started, with its server pids. */
async function startTaskfan(): Promise<Run> {
  const child = spawnTracked(process.execPath, [bin, "start"], {
    cwd: dir,
    env: env(),
    stdio: ["ignore", "ignore", "pipe"],
  });
  const log: string[] = [];
  const lines = new EventEmitter<{ line: [string] }>();
  createInterface({ input: child.stderr! }).on("line", (line) => {
    log.push(line);
    lines.emit("line", line);
  });
  await new Promise<void>((resolve) =>
    lines.on("line", (line) => {
      if (line.includes('"msg":"taskfan started"')) resolve();
    }),
  );
  return { child, servers: childPids(child.pid!), log, lines };
}

/** Resolves once `done()` holds: looked at now and again whenever a task settles in `run`. */
function whenSettled(run: Run, done: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const look = (line?: string) => {
      if (line !== undefined && !line.includes('"msg":"task settled"')) return;
      if (!done()) return;
      run.lines.off("line", look);
      resolve();
    };
    run.lines.on("line", look);
    look();
  });
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
    await vi.waitFor(
      async () => expect(second.log.some((l) => l.includes('"msg":"operation done"'))).toBe(true),
      {
        timeout: 20_000,
        interval: 20,
      },
    );
    expect(await terminate(second.child)).toBe(0);
    expect(second.servers.filter(alive)).toEqual([]);
  });

  it("a third run finishes every task, each exactly once on every server", { timeout: 150_000 }, async () => {
    const third = await startTaskfan();
    // Every task settling is logged: the database is read again each time one does.
    await whenSettled(third, () => {
      const statuses = taskStatuses();
      return ids.every((id) => statuses[id] === "done");
    });
    expect(await terminate(third.child)).toBe(0);

    const records = recordsPerServer(path.join(dir, "data"), ids);
    for (const id of ids) expect(records.get(id), id).toEqual(onceEverywhere);
  });
});
