import Database from "better-sqlite3";
import pg from "pg";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { alive, childPids, repoRoot, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";
import { startTaskfan, whenSettled } from "./taskfan-run.js";
import { startPostgres, type TestPostgres } from "../postgres.js";
import { onceEverywhere, recordsPerServer } from "../server-records.js";

const createMany = path.join(repoRoot, "test", "fixtures", "create-many.mjs");
const tasks = 200;
// A random point in the fan-out, set by progress rather than by a clock: right after this
// many tasks were created, while the earlier ones fan out and the rest are not made yet.
const killAfterTasks = 50 + Math.floor(Math.random() * 100);
let dir: string;
let remove: () => void;
let postgres: TestPostgres | undefined;
/** The store of the suite that runs: SQLite under DATA_DIR, or a PostgreSQL database. */
let databaseUrl: string | undefined;
const env = () => ({
  ...process.env,
  DATA_DIR: path.join(dir, "data"),
  HTTP_PORT: "0",
  LOG_LEVEL: "info",
  ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
});

afterAll(() => {
  stopSpawned(); // only what a failed or timed-out test left running
  postgres?.remove();
});

async function taskStatuses(): Promise<Record<string, string>> {
  let rows: Array<{ id: string; status: string }>;
  if (databaseUrl) {
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      rows = (await client.query<{ id: string; status: string }>("SELECT id, status FROM tasks")).rows;
    } finally {
      await client.end();
    }
  } else {
    const db = new Database(path.join(dir, "data", "taskfan.db"), { readonly: true, fileMustExist: true });
    try {
      rows = db.prepare("SELECT id, status FROM tasks").all() as Array<{ id: string; status: string }>;
    } finally {
      db.close();
    }
  }
  return Object.fromEntries(rows.map((r) => [r.id, r.status]));
}

describe.each(["SQLite", "PostgreSQL"])("a crash of the orchestrator mid fan-out, on %s", (engine) => {
  const ids: string[] = [];
  beforeAll(async () => {
    ({ dir, remove } = tempDir());
    // Short leases, so a killed run's operations are taken over quickly.
    writeFileSync(
      path.join(dir, "taskfan.config.json"),
      JSON.stringify({ dispatcher: { lease_seconds: 2 } }),
    );
    if (engine === "PostgreSQL") {
      postgres ??= await startPostgres();
      databaseUrl = await postgres.createDatabase();
    } else databaseUrl = undefined;
  }, 60_000);
  afterAll(() => remove());

  // Bounded, not timed: creating 200 tasks one after another while they fan out takes a
  // few seconds on SQLite and several times that on PostgreSQL sharing two busy cores.
  it(
    "kill -9 while tasks fan out, then SIGTERM a restarted run mid-way: exits 0, leaves no process",
    { timeout: 150_000 },
    async () => {
      const doomed = spawnTracked(process.execPath, [createMany, String(tasks)], {
        cwd: dir,
        env: env(),
        stdio: ["ignore", "pipe", "ignore"],
      });
      const out = createInterface({ input: doomed.stdout! });
      let printed = 0;
      for await (const line of out) if (line.trim() && ++printed === killAfterTasks) break;
      const doomedServers = childPids(doomed.pid!);
      doomed.kill("SIGKILL");
      await once(doomed, "exit");
      // Every task it committed, printed or not: the next runs owe each one to every server.
      const statuses = await taskStatuses();
      ids.push(...Object.keys(statuses));
      const unfinished = Object.values(statuses).filter((s) => s !== "done").length;
      process.stdout.write(
        `crash test: SIGKILL after ${killAfterTasks} tasks printed; ${ids.length} stored, ${unfinished} not done\n`,
      );
      expect(ids.length).toBeGreaterThanOrEqual(killAfterTasks);
      expect(ids.length).toBeLessThan(tasks);

      // A second run starts, reaps whatever server the killed one left behind, takes over,
      // and is asked to stop in the middle.
      const second = await startTaskfan(dir, env());
      expect(doomedServers.filter(alive)).toEqual([]);
      expect(second.servers.length).toBeGreaterThanOrEqual(10);
      // Mid-way: once it has finished an operation of what the first left (if it left any).
      if (unfinished > 0) {
        await vi.waitFor(
          async () => expect(second.log.some((l) => l.includes('"msg":"operation done"'))).toBe(true),
          { timeout: 60_000, interval: 20 },
        );
      }
      expect(await terminate(second.child)).toBe(0);
      expect(second.servers.filter(alive)).toEqual([]);
    },
  );

  it("a third run finishes every task, each exactly once on every server", { timeout: 150_000 }, async () => {
    const third = await startTaskfan(dir, env());
    // Every task settling is logged: the database is read again each time one does.
    await whenSettled(third, async () => {
      const statuses = await taskStatuses();
      return ids.every((id) => statuses[id] === "done");
    });
    expect(await terminate(third.child)).toBe(0);

    const records = recordsPerServer(path.join(dir, "data"), ids);
    for (const id of ids) expect(records.get(id), id).toEqual(onceEverywhere);
  });
});
