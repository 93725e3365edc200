import Database from "better-sqlite3";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { cpSync, mkdirSync, readdirSync } from "node:fs";
import { migrationsDir, openDatabase } from "../../src/store/sqlite/open-database.js";
import { blockedUntil } from "../../src/store/store.js";
import { createSqliteStore as createStore } from "../../src/store/sqlite/sqlite-store.js";
import { tempDir } from "../helpers.js";

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function fresh() {
  const { dir, remove } = tempDir();
  cleanups.push(remove);
  const file = path.join(dir, "taskfan.db");
  const store = createStore(file);
  cleanups.unshift(() => store.close());
  return { file, store };
}

/** A copy of the migrations up to `version`, to build a database as an older release left it. */
function stopAt(version: number): string {
  const { dir, remove } = tempDir();
  cleanups.push(remove);
  const target = path.join(dir, "migrations");
  mkdirSync(target);
  for (const f of readdirSync(migrationsDir).filter((f) => Number(f.slice(0, 4)) <= version))
    cpSync(path.join(migrationsDir, f), path.join(target, f));
  return target;
}

describe("store", () => {
  it("opens in WAL with full sync and foreign keys, migrated to the latest version", async () => {
    const { store } = fresh();
    expect(store.db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(store.db.pragma("synchronous", { simple: true })).toBe(2);
    expect(store.db.pragma("foreign_keys", { simple: true })).toBe(1);
    expect(store.db.pragma("busy_timeout", { simple: true })).toBe(5000);
    expect(store.db.pragma("temp_store", { simple: true })).toBe(2);
    expect(store.db.pragma("user_version", { simple: true })).toBe(16);
  });

  it("reads operations through indexes: only the small per-status ones are ever scanned whole", async () => {
    // Every statement the store prepares, planned against a database with data in it.
    const prepared: string[] = [];
    const prepare = Database.prototype.prepare;
    Database.prototype.prepare = function (this: Database.Database, sql: string) {
      prepared.push(sql);
      return prepare.call(this, sql);
    } as typeof prepare;
    let store;
    try {
      store = fresh().store;
    } finally {
      Database.prototype.prepare = prepare;
    }
    for (let i = 0; i < 50; i++) {
      await store.tasks.insertWithOperations(
        `t${i}`,
        { title: "t", description: "", priority: 3, deadline: null, tags: [] },
        null,
        [{ server: "git", priority: 1, waitsFor: [], idempotencyKey: `t${i}:git:create` }],
      );
    }
    const partial = [
      "operations_pending",
      "operations_running",
      "operations_failed",
      "operations_done",
      "operations_skipped",
    ];
    const reads = prepared.filter((sql) => /\boperations\b/.test(sql));
    expect(reads.length).toBeGreaterThan(30);
    for (const sql of reads) {
      const names = [...new Set([...sql.matchAll(/@(\w+)/g)].map((m) => m[1]!))];
      const args =
        names.length > 0
          ? [Object.fromEntries(names.map((n) => [n, 1]))]
          : Array(sql.split("?").length - 1).fill(1);
      const plan = store.db
        .prepare(`EXPLAIN QUERY PLAN ${sql}`)
        .all(...args)
        .map((r) => (r as { detail: string }).detail);
      for (const step of plan.filter((d) => /^SCAN (operations|o|p)\b/.test(d))) {
        // A scan is over the operations of one status (open ones are few), never all of them.
        expect({ sql, step }).toMatchObject({
          step: expect.stringMatching(new RegExp(`INDEX (${partial.join("|")})$`)),
        });
      }
    }
  });

  it("carries operations stored under phases over to waiting for their task's other creates", async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const file = path.join(dir, "taskfan.db");
    // A database as version 4 left it: backup in phase 1, blocked until phase 0 settles.
    const old = openDatabase(file, stopAt(4));
    const insert = old.prepare(
      `INSERT INTO operations (task_id, server, phase, priority, idempotency_key, next_attempt_at, created_at, updated_at)
       VALUES ('t1', ?, ?, 3, ?, ?, 1, 1)`,
    );
    old
      .prepare("INSERT INTO tasks (id, title, priority, created_at, updated_at) VALUES ('t1', 'a', 3, 1, 1)")
      .run();
    insert.run("git", 0, "t1:git:create", 1);
    insert.run("memory", 0, "t1:memory:create", 1);
    insert.run("backup", 1, "t1:backup:create", blockedUntil);
    old.close();

    const store = createStore(file);
    cleanups.unshift(() => store.close());
    const waits = Object.fromEntries(
      (await store.operations.forTask("t1")).map((o) => [o.server, o.waitsFor]),
    );
    expect(waits).toEqual({ git: [], memory: [], backup: ["git", "memory"] });
    expect(await store.operations.releaseWaiting("t1")).toEqual([]);
    store.db.prepare("UPDATE operations SET status = 'done' WHERE server IN ('git', 'memory')").run();
    expect(await store.operations.releaseWaiting("t1")).toEqual(["backup"]);
  });

  it("brings a database of every earlier version forward, keeping its tasks and operations", async () => {
    const latest = Math.max(...readdirSync(migrationsDir).map((f) => Number(f.slice(0, 4)) || 0));
    for (let version = 1; version < latest; version++) {
      const { dir, remove } = tempDir();
      cleanups.push(remove);
      const file = path.join(dir, "taskfan.db");
      const old = openDatabase(file, stopAt(version));
      old
        .prepare(
          "INSERT INTO tasks (id, title, priority, created_at, updated_at) VALUES ('old', 'from before', 3, 1, 1)",
        )
        .run();
      old
        .prepare(
          `INSERT INTO operations (id, task_id, server, status, priority, idempotency_key, remote_id, next_attempt_at, created_at, updated_at)
           VALUES (41, 'old', 'git', 'done', 3, 'old:git:create', 'g1', 1, 1, 1)`,
        )
        .run();
      if (version >= 2) {
        old
          .prepare(
            `INSERT INTO alerts (id, kind, server, status, first_seen, last_seen, delivered_count)
             VALUES (7, 'error', 'git', 'open', 1, 1, 1)`,
          )
          .run();
      }
      if (version >= 12) {
        old
          .prepare("INSERT INTO alert_deliveries (alert_id, route, delivered_count) VALUES (7, 'ops', 1)")
          .run();
      }
      old.close();
      const store = createStore(file);
      try {
        expect(store.db.pragma("user_version", { simple: true })).toBe(latest);
        expect(await store.tasks.get("old")).toMatchObject({
          title: "from before",
          state: "open",
          version: 1,
        });
        expect(await store.operations.forTask("old")).toMatchObject([
          { id: 41, kind: "create", remoteId: "g1" },
        ]);
        // The counts /stats reads start from the rows already stored.
        expect(await store.operations.countByServerStatus()).toEqual([
          { server: "git", status: "done", n: 1 },
        ]);
        expect(await store.tasks.countByStatus()).toEqual({ pending: 1 });
        // The rebuilt table keeps counting ids from where it was, and takes the change kinds.
        await store.operations.addChanges(
          "old",
          "complete",
          [{ server: "git", priority: 3, idempotencyKey: "old:git:complete:v2", remoteId: "g1" }],
          [],
        );
        const ids = (await store.operations.forTask("old")).map((o) => o.id);
        expect(ids[1]).toBeGreaterThan(41);
        // The rebuilt alerts keep their rows, ids and route deliveries, and take task events.
        if (version >= 2) expect(await store.alerts.get(7)).toMatchObject({ kind: "error", server: "git" });
        if (version >= 12) expect(await store.alertRoutes.forAlert(7)).toMatchObject([{ route: "ops" }]);
        const event = await store.alerts.notice("task_done", "", "old", { title: "from before" });
        expect(event).toMatchObject({ kind: "task_done", deliveredCount: 1 });
        if (version >= 2) expect(event.id).toBeGreaterThan(7);
      } finally {
        await store.close();
      }
    }
  });

  it("commits a relaxed transaction without fsync, then goes back to full sync", async () => {
    const { store } = fresh();
    const seen = await store.transaction(async (tx) => {
      await tx.tasks.insertWithOperations(
        "r1",
        { title: "a", description: "", priority: 1, deadline: null, tags: [] },
        null,
        [],
      );
      return store.db.pragma("synchronous", { simple: true });
    }, "relaxed");
    expect(seen).toBe(1); // NORMAL inside
    expect(store.db.pragma("synchronous", { simple: true })).toBe(2);
    expect((await store.tasks.get("r1"))?.title).toBe("a");
    await expect(
      store.transaction(async () => {
        throw new Error("boom");
      }, "relaxed"),
    ).rejects.toThrow("boom");
    expect(store.db.pragma("synchronous", { simple: true })).toBe(2);
  });

  it("migrates once: reopening keeps the data and the version", async () => {
    const { file, store } = fresh();
    await store.tasks.insertWithOperations(
      "t1",
      { title: "a", description: "", priority: 1, deadline: null, tags: [] },
      null,
      [{ server: "memory", priority: 2, waitsFor: [], idempotencyKey: "t1:memory:create" }],
    );
    await store.close();
    const again = createStore(file);
    cleanups.unshift(() => again.close());
    expect((await again.tasks.get("t1"))?.title).toBe("a");
    expect(await again.operations.forTask("t1")).toHaveLength(1);
  });

  it("keeps tables STRICT and statuses checked", async () => {
    const { file, store } = fresh();
    await store.close();
    const db = new Database(file);
    cleanups.unshift(() => db.close());
    expect(() =>
      db
        .prepare(
          "INSERT INTO tasks (id, title, priority, created_at, updated_at) VALUES ('x', 't', 'high', 1, 1)",
        )
        .run(),
    ).toThrow(/cannot store TEXT value in INTEGER column/);
    expect(() =>
      db
        .prepare(
          "INSERT INTO tasks (id, title, priority, status, created_at, updated_at) VALUES ('x', 't', 1, 'lost', 1, 1)",
        )
        .run(),
    ).toThrow(/CHECK constraint failed/);
  });
});
