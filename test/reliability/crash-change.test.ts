import Database from "better-sqlite3";
import pg from "pg";
import { once } from "node:events";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { repoRoot, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";
import { startPostgres, type TestPostgres } from "../postgres.js";
import { expectDeletedFromServers, taskOnServers } from "../server-records.js";
import { startTaskfan, whenSettled } from "./taskfan-run.js";

/**
 * kill -9 in the middle of every kind of change: 24 tasks are edited, completed, completed
 * and reopened, or deleted at once, the process dies while the changes fan out, and a new
 * run finishes them. Each change lands once on every server (one commit and one snapshot per
 * change, the right state everywhere), or is skipped with its reason.
 */
const changeMany = path.join(repoRoot, "test", "fixtures", "change-many.mjs");
const tasks = 24;
// A random point in the changes' fan-out: this many ms after the last change was committed.
const killAfterMs = Math.floor(Math.random() * 500);
let postgres: TestPostgres | undefined;

afterAll(() => {
  stopSpawned(); // only what a failed or timed-out test left running
  postgres?.remove();
});

interface OpRow {
  task_id: string;
  server: string;
  kind: string;
  status: string;
  idempotency_key: string;
  last_error: string | null;
}

describe.each(["SQLite", "PostgreSQL"])("a crash in the middle of changes, on %s", (engine) => {
  it("every change lands once on every server after a restart", { timeout: 240_000 }, async () => {
    const { dir, remove } = tempDir();
    try {
      writeFileSync(
        path.join(dir, "taskfan.config.json"),
        JSON.stringify({ dispatcher: { lease_seconds: 2 } }),
      );
      let databaseUrl: string | undefined;
      if (engine === "PostgreSQL") {
        postgres ??= await startPostgres();
        databaseUrl = await postgres.createDatabase();
      }
      const env = {
        ...process.env,
        DATA_DIR: path.join(dir, "data"),
        HTTP_PORT: "0",
        LOG_LEVEL: "info",
        ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
      };
      const changeOps = async (): Promise<OpRow[]> => {
        const sql = `SELECT task_id, server, kind, status, idempotency_key, last_error FROM operations
          WHERE kind IN ('update', 'complete', 'reopen', 'delete')`;
        if (databaseUrl) {
          const client = new pg.Client({ connectionString: databaseUrl });
          await client.connect();
          try {
            return (await client.query<OpRow>(sql)).rows;
          } finally {
            await client.end();
          }
        }
        const db = new Database(path.join(dir, "data", "taskfan.db"), {
          readonly: true,
          fileMustExist: true,
        });
        try {
          return db.prepare(sql).all() as OpRow[];
        } finally {
          db.close();
        }
      };

      const doomed = spawnTracked(process.execPath, [changeMany, String(tasks)], {
        cwd: dir,
        env,
        stdio: ["ignore", "pipe", "pipe"],
      });
      // What it says on stderr (a change it could not make) goes into the failure message.
      let stderr = "";
      doomed.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
      const ids: string[] = [];
      const changes: string[] = [];
      for await (const line of createInterface({ input: doomed.stdout! })) {
        const [what, id] = line.trim().split(" ");
        if (what === "ready") ids.push(id!);
        if (what === "changed") changes.push(line.trim());
        if (what === "committed") break;
      }
      expect(ids, stderr).toHaveLength(tasks);
      expect(changes, stderr).toHaveLength(tasks + tasks / 4);
      await new Promise((r) => setTimeout(r, killAfterMs)); // the crash point, not a wait for a result
      process.stdout.write(
        `crash-change test (${engine}): SIGKILL ${killAfterMs} ms after the last change\n`,
      );
      doomed.kill("SIGKILL");
      await once(doomed, "exit");
      const active = (ops: OpRow[]) => ops.filter((o) => o.status === "pending" || o.status === "running");
      // git makes one commit at a time: 30 changes are far from done when the process dies.
      expect(active(await changeOps()).length).toBeGreaterThan(0);

      // A new run takes the killed one's leases over and finishes every change.
      const run = await startTaskfan(dir, env);
      await whenSettled(
        run,
        async () => active(await changeOps()).length === 0,
        (line) => /"msg":"operation (done|skipped|failed)"/.test(line),
      );
      expect(await terminate(run.child)).toBe(0);

      const ops = await changeOps();
      const dataDir = path.join(dir, "data");
      for (const [i, id] of ids.entries()) {
        const mine = ops.filter((o) => o.task_id === id);
        // Every change settled: done, or skipped with its reason (a later one superseded it,
        // or the server keeps no such thing).
        for (const o of mine)
          expect([o.status, o.last_error], `${o.idempotency_key}`).toSatisfy(
            ([status, error]: [string, string | null]) =>
              status === "done" || (status === "skipped" && !!error),
          );
        const r = taskOnServers(dataDir, id);
        const done = (server: string) =>
          mine.filter((o) => o.server === server && o.status === "done").map((o) => o.idempotency_key);
        // One commit and one snapshot for each change that landed there, none for another.
        expect([...r.commitChanges].sort(), id).toEqual(done("git").sort());
        expect([...r.snapshotChanges].sort(), id).toEqual(done("backup").sort());
        if (i % 4 === 0) {
          expect(r.delta).toMatchObject([{ title: `edited ${i}`, urgency: 5, completed: false }]);
          expect(r.shrimp).toMatchObject([{ name: expect.stringContaining(`edited ${i}`) }]);
          expect(r.saved).toMatchObject([{ title: `edited ${i}`, priority: 1 }]);
          expect(r.entities).toHaveLength(1);
          expect(r.entities[0]!.observations!.filter((o: string) => o === `title: edited ${i}`)).toHaveLength(
            1,
          );
          expect(r.todos).toMatchObject([{ summary: expect.stringContaining(`edited ${i}`) }]);
          expect(r.messages).toHaveLength(1);
          expect(r.tracked).toMatchObject([{ name: `edited ${i}`, active: true }]);
          expect(r.file).toContain(`# edited ${i}`);
        }
        if (i % 4 === 1) {
          expect(r.delta).toMatchObject([{ completed: true }]);
          expect(r.shrimp).toMatchObject([{ status: "completed" }]);
          expect(r.saved).toMatchObject([{ state: "done" }]);
          expect(r.entities[0]!.observations!.filter((o: string) => o === "state: done")).toHaveLength(1);
          expect(r.todos).toMatchObject([{ status: "COMPLETED", percentComplete: 100 }]);
          expect(r.messages).toMatchObject([{ cleared: true }]);
          expect(r.tracked).toMatchObject([{ active: false }]);
          expect(r.file).toContain("State: done");
        }
        if (i % 4 === 2) {
          // Open again everywhere that can reopen (shrimp cannot, and says so).
          expect(r.delta).toMatchObject([{ completed: false }]);
          expect(r.saved[0]!).not.toHaveProperty("state");
          expect(r.entities[0]!.observations!).not.toContain("state: done");
          expect(r.todos[0]!.status).not.toBe("COMPLETED");
          expect(r.messages).toHaveLength(1);
          expect(r.messages[0]).not.toHaveProperty("cleared");
          expect(r.tracked).toMatchObject([{ active: true }]);
          expect(r.file).not.toContain("State:");
        }
        if (i % 4 === 3) {
          expect(r.shrimp).toEqual([]);
          expectDeletedFromServers(r, id);
          expect(r.snapshots).toBe(1);
        }
      }
    } finally {
      remove();
    }
  });
});
