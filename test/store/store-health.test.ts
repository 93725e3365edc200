import Database from "better-sqlite3";
import path from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { StoreUnavailableError } from "../../src/errors.js";
import { StoreHealth, StoreRetry, storeFault, type StoreState } from "../../src/store/store-health.js";
import { createSqliteStore as createStore } from "../../src/store/sqlite/sqlite-store.js";
import { tempDir } from "../helpers.js";

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

const busy = Object.assign(new Error("database is locked"), { code: "SQLITE_BUSY" });
const full = Object.assign(new Error("database or disk is full"), { code: "SQLITE_FULL" });

describe("the store's health", () => {
  it("counts a busy database unavailable only once it stays busy past the threshold; a full one at once", async () => {
    const clock = { t: 1_000 };
    const health = new StoreHealth(500, () => clock.t);
    const seen: StoreState[] = [];
    health.on("change", (s) => seen.push(s));
    expect(health.failed(busy)?.kind).toBe("busy");
    clock.t += 499;
    health.failed(busy);
    expect(health.state.ok).toBe(true);
    clock.t += 1;
    health.failed(busy);
    expect(health.state).toMatchObject({ ok: false, code: "SQLITE_BUSY", since: 1_000 });
    // A repeat changes nothing; a write that commits ends it.
    health.failed(busy);
    health.succeeded();
    expect(seen.map((s) => s.ok)).toEqual([false, true]);
    health.failed(full);
    expect(health.state).toMatchObject({
      ok: false,
      kind: "full",
      reason: "the database or its disk is full",
    });
    // Not the store's fault: not counted.
    expect(health.failed(new TypeError("a bug"))).toBeUndefined();
    expect(storeFault(Object.assign(new Error("x"), { code: "SQLITE_IOERR_WRITE" }))?.kind).toBe("io");
  });

  it("logs a loop's trouble once per code, backs off 1 s doubling, and says when it answers again", async () => {
    const clock = { t: 0 };
    const out: Array<{ msg: string }> = [];
    const log = pino(
      { level: "info" },
      new Writable({
        write(chunk, _e, done) {
          out.push(JSON.parse(String(chunk)));
          done();
        },
      }),
    );
    const retry = new StoreRetry("recovery", new StoreHealth(0, () => clock.t), log, { now: () => clock.t });
    const failing = () => Promise.reject(busy);
    expect(await retry.run(failing)).toBeUndefined();
    expect(retry.delayMs).toBe(1000);
    expect(await retry.run(async () => "skipped while backing off")).toBeUndefined();
    clock.t += 1000;
    await retry.run(failing);
    expect(retry.delayMs).toBe(2000);
    clock.t += 2000;
    await retry.run(failing);
    expect(retry.delayMs).toBe(4000);
    clock.t += 4000;
    expect(await retry.run(async () => "ran")).toBe("ran");
    expect(out.map((l) => l.msg)).toEqual([
      "recovery: the database is busy (another process holds its write lock); backing off and trying again",
      "recovery: the store answers again",
    ]);
  });

  it("a store's transactions and its probe report to its health; a store fault leaves as StoreUnavailableError", async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const file = path.join(dir, "taskfan.db");
    const store = createStore(file, Date.now, { busyTimeoutMs: 20, unavailableAfterMs: 0 });
    cleanups.unshift(() => store.close());
    const other = new Database(file);
    cleanups.unshift(() => other.close());
    other.exec("BEGIN IMMEDIATE");
    await expect(store.transaction((tx) => tx.events.append("x", {}))).rejects.toThrow(StoreUnavailableError);
    expect(store.health.state).toMatchObject({ ok: false, code: "SQLITE_BUSY" });
    expect(await store.probe()).toBe(false);
    other.exec("COMMIT");
    expect(await store.probe()).toBe(true);
    expect(store.health.state).toEqual({ ok: true });
  });
});
