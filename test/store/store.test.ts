import Database from "better-sqlite3";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createStore } from "../../src/store/store.js";
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

describe("store", () => {
  it("opens in WAL with full sync and foreign keys, migrated to the latest version", () => {
    const { store } = fresh();
    expect(store.db.pragma("journal_mode", { simple: true })).toBe("wal");
    expect(store.db.pragma("synchronous", { simple: true })).toBe(2);
    expect(store.db.pragma("foreign_keys", { simple: true })).toBe(1);
    expect(store.db.pragma("busy_timeout", { simple: true })).toBe(5000);
    expect(store.db.pragma("user_version", { simple: true })).toBe(4);
  });

  it("migrates once: reopening keeps the data and the version", () => {
    const { file, store } = fresh();
    store.tasks.insertWithOperations(
      "t1",
      { title: "a", description: "", priority: 1, deadline: null, tags: [] },
      null,
      [{ server: "memory", priority: 2, phase: 0, idempotencyKey: "t1:memory:create" }],
    );
    store.close();
    const again = createStore(file);
    cleanups.unshift(() => again.close());
    expect(again.tasks.get("t1")?.title).toBe("a");
    expect(again.operations.forTask("t1")).toHaveLength(1);
  });

  it("keeps tables STRICT and statuses checked", () => {
    const { file, store } = fresh();
    store.close();
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

  it("writes a task and its operations in one transaction: all or nothing", () => {
    const { store } = fresh();
    const task = { title: "a", description: "", priority: 1, deadline: null, tags: [] };
    expect(() =>
      store.tasks.insertWithOperations("t2", task, null, [
        { server: "memory", priority: 2, phase: 0, idempotencyKey: "dup" },
        { server: "git", priority: 4, phase: 0, idempotencyKey: "dup" },
      ]),
    ).toThrow(/UNIQUE/);
    expect(store.tasks.get("t2")).toBeUndefined();
  });

  it("hands a due operation to one owner only, and again after its lease expires", () => {
    let now = 1_000_000;
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const store = createStore(path.join(dir, "l.db"), () => now);
    cleanups.unshift(() => store.close());
    store.tasks.insertWithOperations(
      "t3",
      { title: "a", description: "", priority: 1, deadline: null, tags: [] },
      null,
      [{ server: "memory", priority: 2, phase: 0, idempotencyKey: "t3:memory:create" }],
    );
    const capacity = new Map([["memory", 5]]);
    const first = store.operations.claim({ owner: "a", leaseMs: 1000, capacity, limit: 5 });
    expect(first).toHaveLength(1);
    expect(store.operations.claim({ owner: "b", leaseMs: 1000, capacity, limit: 5 })).toHaveLength(0);
    now += 1001;
    const second = store.operations.claim({ owner: "b", leaseMs: 1000, capacity, limit: 5 });
    expect(second).toHaveLength(1);
    expect(second[0]).toMatchObject({ leaseOwner: "b", recheck: true });
    // The old owner can no longer write its outcome.
    expect(store.operations.finish(first[0]!.id, "a", { status: "done", remoteId: "x", durationMs: 1 })).toBe(
      false,
    );
    expect(store.operations.finish(first[0]!.id, "b", { status: "done", remoteId: "y", durationMs: 1 })).toBe(
      true,
    );
  });
});
