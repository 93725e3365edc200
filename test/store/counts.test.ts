import path from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { serverNames } from "../../src/config/schema.js";
import { createPostgresStore } from "../../src/store/postgres/postgres-store.js";
import { createSqliteStore, type SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { NewOperationRow, Store } from "../../src/store/store.js";
import { lastHourActivity } from "../../src/monitoring/stats.js";
import { startHarness } from "../core-harness.js";
import { instantRoles, tempDir } from "../helpers.js";
import { startPostgres, type TestPostgres } from "../postgres.js";

/**
 * The counts /stats, /health and the metrics read are kept as rows change (SQLite
 * migration 0016, PostgreSQL 0009), so answering costs a few rows however many operations
 * are stored: the counts always equal a count of the rows, and /stats scans none of them.
 */

/** A store of one engine with a way to run SQL on its database beside it. */
interface Opened {
  store: Store;
  sql(text: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** The statements the store runs inside `fn`, with their parameters. */
  recorded<T>(fn: () => Promise<T>): Promise<Array<{ text: string; values: unknown[] }>>;
  /** The tables a statement reads in full, and how many of their rows it reads. */
  plan(text: string, values: unknown[]): Promise<{ scans: string[]; rows: number }>;
  close(): Promise<void>;
}

const watched = new Set(["operations", "tasks", "events"]);

let server: TestPostgres | undefined;
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(() => server?.remove());
const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const engines: Array<{ name: string; open(): Promise<Opened> }> = [
  {
    name: "SQLite",
    async open() {
      const { dir, remove } = tempDir();
      const store = createSqliteStore(path.join(dir, "taskfan.db")) as SqliteStore;
      const { db } = store;
      const statement = Object.getPrototypeOf(db.prepare("SELECT 1")) as Record<
        "all" | "get" | "run" | "iterate",
        (...args: unknown[]) => unknown
      >;
      return {
        store,
        async sql(text, params = []) {
          const s = db.prepare(text);
          return s.reader ? (s.all(...params) as Record<string, unknown>[]) : (s.run(...params), []);
        },
        async recorded(fn) {
          const spies = (["all", "get", "run", "iterate"] as const).map((m) => vi.spyOn(statement, m));
          try {
            await fn();
            return spies.flatMap((s) =>
              s.mock.contexts.map((c, i) => ({
                text: (c as { source: string }).source,
                values: s.mock.calls[i]!,
              })),
            );
          } finally {
            for (const s of spies) s.mockRestore();
          }
        },
        async plan(text, values) {
          const steps = db.prepare(`EXPLAIN QUERY PLAN ${text}`).all(...values) as Array<{ detail: string }>;
          // "SCAN t" reads all of t (or all of one of its indexes); "SEARCH t" a range of an index.
          const scans = steps.flatMap((s) => {
            const table = /^SCAN (\w+)/.exec(s.detail)?.[1];
            return table && watched.has(table) ? [s.detail] : [];
          });
          return { scans, rows: 0 };
        },
        async close() {
          await store.close();
          remove();
        },
      };
    },
  },
  {
    name: "PostgreSQL",
    async open() {
      const url = await server!.createDatabase();
      const store = await createPostgresStore(url);
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      return {
        store,
        async sql(text, params = []) {
          return (await client.query(text, params)).rows as Record<string, unknown>[];
        },
        async recorded(fn) {
          const spy = vi.spyOn(pg.Client.prototype, "query");
          try {
            await fn();
            return spy.mock.calls.flatMap(([first, second]) => {
              const config = typeof first === "string" ? { text: first, values: second } : first;
              const { text, values } = config as { text?: unknown; values?: unknown };
              return typeof text === "string" ? [{ text, values: (values as unknown[]) ?? [] }] : [];
            });
          } finally {
            spy.mockRestore();
          }
        },
        async plan(text, values) {
          const [
            {
              "QUERY PLAN": [root],
            },
          ] = (await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values)).rows as [
            { "QUERY PLAN": [{ Plan: PlanNode }] },
          ];
          const scans: string[] = [];
          let rows = 0;
          const walk = (node: PlanNode) => {
            const table = node["Relation Name"];
            if (table && watched.has(table)) {
              rows += node["Actual Rows"] * node["Actual Loops"];
              if (node["Node Type"] === "Seq Scan") scans.push(`Seq Scan on ${table}`);
            }
            for (const child of node.Plans ?? []) walk(child);
          };
          walk(root!.Plan);
          return { scans, rows };
        },
        async close() {
          await client.end();
          await store.close();
        },
      };
    },
  },
];

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Actual Rows": number;
  "Actual Loops": number;
  Plans?: PlanNode[];
}

const task = { title: "a", description: "", priority: 1, deadline: null, tags: [] };
const op = (taskId: string, server: string, claimed = false): NewOperationRow => ({
  server,
  priority: 2,
  waitsFor: [],
  idempotencyKey: `${taskId}:${server}:create`,
  ...(claimed ? { lease: { owner: "me", expiresAt: Date.now() + 60_000 } } : {}),
});

describe.each(engines)("counts on $name", (engine) => {
  it("equal a count of the rows after every kind of write, and compacting changes none", async () => {
    const opened = await engine.open();
    cleanups.push(() => opened.close());
    const { store, sql } = opened;
    const counted = async () => ({
      operations: await store.operations.countByServerStatus(),
      queue: await store.operations.queueSize(),
      tasks: await store.tasks.countByStatus(),
      drift: await store.events.count("operation.drift"),
      none: await store.events.count("none.such"),
      // Buckets of 2.5 minutes and of 7 s, their edges off the minute.
      activity: await store.operations.finishedPerBucket(since, 150_000, 6),
      seconds: await store.operations.finishedPerBucket(recent, 7000, 4),
    });
    const since = Date.now() - 600_000 - 12_345;
    const recent = Date.now() - 20_000;
    const finishedIn = async (from: number, bucket: number, n: number) => {
      const out: number[] = [];
      for (let b = 0; b < n; b++) {
        const lo = Math.round(from + b * bucket);
        const found = await sql(
          "SELECT count(*) AS n FROM operations WHERE finished_at >= $1 AND finished_at < $2".replace(
            /\$\d/g,
            store.compactCounts ? (m) => m : () => "?",
          ),
          [lo, lo + bucket],
        );
        out.push(Number(found[0]!.n));
      }
      return out;
    };
    const fromRows = async () => ({
      operations: (
        await sql("SELECT server, status, count(*) AS n FROM operations GROUP BY server, status")
      ).map((r) => ({ ...r, n: Number(r.n) })),
      queue: Number(
        (await sql("SELECT count(*) AS n FROM operations WHERE status IN ('pending', 'running')"))[0]!.n,
      ),
      tasks: Object.fromEntries(
        (await sql("SELECT status, count(*) AS n FROM tasks GROUP BY status")).map((r) => [
          r.status,
          Number(r.n),
        ]),
      ),
      drift: Number((await sql("SELECT count(*) AS n FROM events WHERE type = 'operation.drift'"))[0]!.n),
      none: 0,
      activity: await finishedIn(since, 150_000, 6),
      seconds: await finishedIn(recent, 7000, 4),
    });
    const same = async () => {
      const [mine, theirs] = [await counted(), await fromRows()];
      expect({ ...mine, operations: expect.arrayContaining(theirs.operations) }).toEqual(theirs);
      expect(mine.operations).toHaveLength(theirs.operations.length);
    };

    await same();
    // Inserts, some of them claimed at once.
    for (const id of ["t1", "t2", "t3"])
      await store.tasks.insertWithOperations(
        id,
        task,
        null,
        ["memory", "git", "backup"].map((s) => op(id, s, s === "git")),
      );
    await same();
    // A claim moves rows between statuses; a group commit finishes several in one statement.
    const claimed = await store.operations.claim({
      owner: "me",
      capacity: new Map([
        ["backup", 3],
        ["memory", 3],
      ]),
      limit: 10,
      leaseMs: 60_000,
    });
    expect(claimed.length).toBeGreaterThan(0);
    await same();
    await store.transaction(async (tx) => {
      for (const [i, o] of claimed.entries()) {
        const claim = { owner: o.leaseOwner!, token: o.attempts };
        if (i % 2 === 0)
          await tx.operations.finish(o.id, claim, { status: "done", remoteId: "r", durationMs: 5 });
        else
          await tx.operations.fail(o.id, claim, {
            error: "down",
            retryable: true,
            durationMs: 3,
            recheck: false,
          });
      }
      await tx.events.append("operation.drift", { taskId: "t1" });
      await tx.events.append("operation.drift", { taskId: "t2" });
      await tx.tasks.setStatus("t1", "done", null, true);
    });
    await same();
    // Rows written and removed outside taskfan's calls are counted too: finished times
    // moved across minutes, rows deleted.
    await sql(
      "UPDATE operations SET finished_at = finished_at - id * 37000 WHERE finished_at IS NOT NULL AND id % 3 = 0",
    );
    await same();
    expect((await counted()).activity.filter((n) => n > 0).length).toBeGreaterThan(1);
    await sql("DELETE FROM events WHERE task_id = 't2'");
    await sql("DELETE FROM operations WHERE task_id = 't3'");
    await sql("DELETE FROM tasks WHERE id = 't3'");
    await same();
    if (store.compactCounts) {
      const before = Number((await sql("SELECT count(*) AS n FROM operation_counts"))[0]!.n);
      expect(await store.compactCounts()).toBeGreaterThan(0);
      const keys = Number(
        (await sql("SELECT count(*) AS n FROM (SELECT DISTINCT server, status FROM operations) k"))[0]!.n,
      );
      expect(Number((await sql("SELECT count(*) AS n FROM operation_counts"))[0]!.n)).toBe(keys);
      expect(keys).toBeLessThan(before);
      // Every other count table folded too: one row per key.
      for (const [table, distinct] of [
        ["task_counts", "SELECT DISTINCT status FROM tasks"],
        ["event_counts", "SELECT DISTINCT type FROM events"],
        [
          "finished_counts",
          "SELECT DISTINCT finished_at / 60000 FROM operations WHERE finished_at IS NOT NULL",
        ],
      ]) {
        const rows = Number((await sql(`SELECT count(*) AS n FROM ${table}`))[0]!.n);
        const wanted = Number((await sql(`SELECT count(*) AS n FROM (${distinct}) k`))[0]!.n);
        expect({ table, rows }).toEqual({ table, rows: wanted });
      }
      await same();
      expect(await store.compactCounts()).toBe(0);
    }
  });

  it("answers /stats without reading operations, tasks or events in full", async () => {
    const opened = await engine.open();
    cleanups.push(() => opened.close());
    const { store, sql } = opened;
    // 5 000 tasks with an operation on each of the ten servers, finished over the last day.
    const day = 86_400_000;
    const now = Date.now();
    const ids = Array.from({ length: 5000 }, (_, i) => `seed${i}`);
    const finishedAt = ids.map((_, i) => now - Math.floor((i / ids.length) * day));
    if (store.compactCounts) {
      await sql(
        `INSERT INTO tasks (id, title, priority, status, created_at, updated_at, settled_at)
         SELECT id, 'seeded', 3, 'done', at, at, at FROM unnest($1::text[], $2::bigint[]) AS s(id, at)`,
        [ids, finishedAt],
      );
      await sql(
        `INSERT INTO operations (task_id, server, kind, status, priority, attempts, idempotency_key,
           remote_id, duration_ms, total_ms, next_attempt_at, created_at, started_at, finished_at, updated_at)
         SELECT t.id, s, 'create', 'done', 3, 1, t.id || ':' || s, 'r', 9, 9, t.created_at, t.created_at,
           t.created_at, t.created_at, t.created_at
         FROM tasks t CROSS JOIN unnest($1::text[]) AS s`,
        [serverNames],
      );
      await sql("ANALYZE");
    } else {
      const { db } = store as SqliteStore;
      const insertTask = db.prepare(
        "INSERT INTO tasks (id, title, priority, status, created_at, updated_at, settled_at) VALUES (?, 'seeded', 3, 'done', ?, ?, ?)",
      );
      const insertOp = db.prepare(
        `INSERT INTO operations (task_id, server, kind, status, priority, attempts, idempotency_key, remote_id,
           duration_ms, total_ms, next_attempt_at, created_at, started_at, finished_at, updated_at)
         VALUES (?, ?, 'create', 'done', 3, 1, ?, 'r', 9, 9, ?, ?, ?, ?, ?)`,
      );
      db.transaction(() => {
        for (const [i, id] of ids.entries()) {
          const at = finishedAt[i]!;
          insertTask.run(id, at, at, at);
          for (const s of serverNames) insertOp.run(id, s, `${id}:${s}`, at, at, at, at, at);
        }
      })();
      db.exec("ANALYZE");
    }
    const countRows = async () => Number((await sql("SELECT count(*) AS n FROM operation_counts"))[0]!.n);
    if (store.compactCounts) {
      // Each statement that moves rows between keys appends its change...
      await sql("UPDATE operations SET status = 'failed' WHERE task_id = 'seed1'");
      await sql("UPDATE operations SET status = 'done' WHERE task_id = 'seed1'");
      expect(await countRows()).toBe(50);
    }
    const harness = await startHarness({ servers: instantRoles() }, undefined, { store, dispatch: false });
    cleanups.push(() => harness.stop());
    // ...and the instance that runs maintenance folds them back to one row per key.
    if (store.compactCounts)
      await vi.waitFor(
        async () => {
          await harness.core.maintenance.recover();
          expect(await countRows()).toBe(10);
        },
        { timeout: 20_000, interval: 50 },
      );
    // Nothing else reads meanwhile: only /stats's statements are recorded.
    await harness.core.maintenance.stop();
    let stats: Awaited<ReturnType<typeof harness.core.getStats>> | undefined;
    let activity: number[] = [];
    const statements = await opened.recorded(async () => {
      stats = await harness.core.getStats();
      // The last hour in five-minute bars, as the chat's /stats asks for them.
      activity = await lastHourActivity(store);
    });
    expect(activity.reduce((a, b) => a + b)).toBeGreaterThan(1500);
    expect(stats!.total_operations).toBe(50_000);
    expect(stats!.tasks_by_status).toEqual({ done: 5000 });
    const reads = statements.filter((s) => /^\s*\(?\s*SELECT\b/i.test(s.text));
    expect(reads.length).toBeGreaterThanOrEqual(4);
    for (const { text, values } of reads) {
      const { scans, rows } = await opened.plan(text, values);
      expect({ text, scans }).toEqual({ text, scans: [] });
      // The latency percentiles read each server's last 1 000 durations, no more.
      expect({ text, rows: Math.min(rows, 1000) }).toEqual({ text, rows });
    }
  }, 60_000);
});
