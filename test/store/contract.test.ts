import { describe, expect, it } from "vitest";
import type { Operation } from "../../src/domain/task.js";
import { blockedUntil, type NewOperationRow, type Store } from "../../src/store/store.js";
import { storeEngines } from "../store-engines.js";

/** What every store promises, on SQLite and on PostgreSQL alike. */
const engines = storeEngines();

const task = { title: "a", description: "", priority: 1, deadline: null, tags: [] };
const op = (taskId: string, server: string, extra: Partial<NewOperationRow> = {}): NewOperationRow => ({
  server,
  priority: 2,
  waitsFor: [],
  idempotencyKey: `${taskId}:${server}:create`,
  ...extra,
});
/** The claim an operation was handed with, as its holder names it in its writes. */
const claimOf = (o: Operation) => ({ owner: o.leaseOwner!, token: o.attempts });
const clock = (start = 1_000_000) => {
  const c = { t: start, now: () => c.t };
  return c;
};

describe.each(engines)("the $name store", (engine) => {
  it("writes a task and its operations in one transaction: all or nothing", async () => {
    const store = await engine.open();
    await expect(
      store.tasks.insertWithOperations("t2", task, null, [
        op("t2", "memory", { idempotencyKey: "dup" }),
        op("t2", "git", { idempotencyKey: "dup" }),
      ]),
    ).rejects.toThrow(/UNIQUE|unique/);
    expect(await store.tasks.get("t2")).toBeUndefined();
    expect(await store.tasks.count()).toBe(0);
  });

  it("commits a transaction's calls together and rolls all of them back on an error", async () => {
    const store = await engine.open();
    await expect(
      store.transaction(async (tx) => {
        await tx.tasks.insertWithOperations("t1", task, null, [op("t1", "memory")]);
        await tx.events.append("task.created", { taskId: "t1" });
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(await store.tasks.get("t1")).toBeUndefined();
    expect(await store.events.forTask("t1")).toEqual([]);
    const commits = { ...store.commits };
    await store.transaction(async (tx) => {
      await tx.tasks.insertWithOperations("t1", task, null, [op("t1", "memory")]);
      await tx.events.append("task.created", { taskId: "t1" }, { servers: 1 });
    }, "relaxed");
    expect(store.commits).toEqual({ full: commits.full, relaxed: commits.relaxed + 1 });
    expect((await store.taskView("t1"))?.operations).toHaveLength(1);
    expect((await store.events.forTask("t1")).map((e) => [e.type, e.data])).toEqual([
      ["task.created", { servers: 1 }],
    ]);
  });

  it("returns the operations it stores claimed exactly as stored, and stores their task running", async () => {
    const store = await engine.open();
    const lease = { owner: "me", expiresAt: Date.now() + 60_000 };
    const claimed = await store.tasks.insertWithOperations("t3", task, null, [
      op("t3", "memory", { lease }),
      op("t3", "git", { priority: 4 }),
      op("t3", "backup", { priority: 5, waitsFor: ["memory"], lease }),
    ]);
    expect(claimed).toEqual((await store.operations.forTask("t3")).filter((o) => o.status === "running"));
    expect(claimed.map((o) => o.server)).toEqual(["memory"]);
    expect((await store.tasks.get("t3"))?.status).toBe("running");
    await store.tasks.insertWithOperations("t4", task, null, [op("t4", "memory")]);
    expect((await store.tasks.get("t4"))?.status).toBe("pending");
    expect(await store.tasks.countByStatus()).toEqual({ running: 1, pending: 1 });
  });

  it("hands a due operation to one owner only, and again after its lease expires", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    await store.tasks.insertWithOperations("t3", task, null, [op("t3", "memory")]);
    const capacity = new Map([["memory", 5]]);
    const first = await store.operations.claim({ owner: "a", leaseMs: 1000, capacity, limit: 5 });
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({
      status: "running",
      attempts: 1,
      leaseOwner: "a",
      leaseExpiresAt: c.t + 1000,
    });
    expect(await store.operations.claim({ owner: "b", leaseMs: 1000, capacity, limit: 5 })).toHaveLength(0);
    c.t += 1001;
    // A pass that skips orphans (the dispatcher's between polls) leaves it alone.
    expect(
      await store.operations.claim({ owner: "b", leaseMs: 1000, capacity, limit: 5, orphans: false }),
    ).toEqual([]);
    const second = await store.operations.claim({ owner: "b", leaseMs: 1000, capacity, limit: 5 });
    expect(second).toHaveLength(1);
    expect(second[0]).toMatchObject({ leaseOwner: "b", recheck: true, attempts: 2 });
    // The old owner can no longer write its outcome.
    expect(
      await store.operations.finish(first[0]!.id, claimOf(first[0]!), {
        status: "done",
        remoteId: "x",
        durationMs: 1,
      }),
    ).toBe(false);
    expect(
      await store.operations.finish(first[0]!.id, claimOf(second[0]!), {
        status: "done",
        remoteId: "y",
        durationMs: 1,
      }),
    ).toBe(true);
    expect((await store.operations.forTask("t3"))[0]).toMatchObject({ status: "done", remoteId: "y" });
  });

  it("fences a claim: renewed only while it is this claim's and has not run out; its orphan waits out the server's overrun", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    await store.tasks.insertWithOperations("t1", task, null, [op("t1", "memory"), op("t1", "git")]);
    const capacity = new Map([
      ["memory", 1],
      ["git", 1],
    ]);
    const overrunMs = new Map([
      ["memory", 500],
      ["git", 500],
    ]);
    const claimed = await store.operations.claim({
      owner: "a",
      leaseMs: 1000,
      capacity,
      limit: 2,
      overrunMs,
    });
    const memory = claimed.find((o) => o.server === "memory")!;
    const git = claimed.find((o) => o.server === "git")!;
    const leaseOf = async (id: number) =>
      (await store.operations.forTask("t1")).find((o) => o.id === id)!.leaseExpiresAt;
    // Renewed while live, and never shortened.
    c.t += 900;
    expect(await store.operations.renewClaim(memory.id, claimOf(memory), 5000)).toBe(true);
    expect(await store.operations.renewClaim(memory.id, claimOf(memory), 10)).toBe(true);
    expect(await leaseOf(memory.id)).toBe(c.t + 5000);
    // A counted attempt moves the token on: the claim's old token is refused from then on.
    expect(await store.operations.startAttempt(memory.id, claimOf(memory), 5000)).toBe(true);
    expect(await store.operations.renewClaim(memory.id, claimOf(memory), 5000)).toBe(false);
    const memoryNow = { owner: "a", token: memory.attempts + 1 };
    expect(await store.operations.renewClaim(memory.id, memoryNow, 5000)).toBe(true);
    // git's lease runs out: the heartbeat renews memory's only, and git's claim is not renewed.
    c.t += 200;
    expect(await store.operations.renewLeases("a", 5000)).toEqual([memory.id]);
    expect(await store.operations.renewClaim(git.id, claimOf(git), 5000)).toBe(false);
    expect(await store.operations.startAttempt(git.id, claimOf(git), 5000)).toBe(false);
    // It is no orphan until the server's overrun has passed too; then another takes it.
    expect(
      await store.operations.claim({ owner: "b", leaseMs: 1000, capacity, limit: 2, overrunMs }),
    ).toEqual([]);
    c.t += 401;
    const [taken] = await store.operations.claim({
      owner: "b",
      leaseMs: 1000,
      capacity,
      limit: 2,
      overrunMs,
    });
    expect(taken).toMatchObject({ id: git.id, leaseOwner: "b", recheck: true, attempts: git.attempts + 1 });
    // The first holder's outcome for git is refused; for memory, still its claim, it is written.
    const outcome = { status: "done" as const, remoteId: "r", durationMs: 1 };
    expect(await store.operations.finish(git.id, claimOf(git), outcome)).toBe(false);
    expect(await store.operations.finish(memory.id, memoryNow, outcome)).toBe(true);
    expect(await store.operations.finish(git.id, claimOf(taken!), outcome)).toBe(true);
  });

  it("claims priority 1 first, within each server's room and the global limit", async () => {
    const store = await engine.open();
    await store.tasks.insertWithOperations("t1", task, null, [
      op("t1", "memory", { priority: 3 }),
      op("t1", "git", { priority: 1 }),
      op("t1", "backup", { priority: 2 }),
    ]);
    await store.tasks.insertWithOperations("t2", task, null, [
      op("t2", "memory", { priority: 3 }),
      op("t2", "git", { priority: 1 }),
    ]);
    const capacity = new Map([
      ["memory", 2],
      ["git", 1],
      ["backup", 1],
    ]);
    const claimed = await store.operations.claim({ owner: "a", leaseMs: 60_000, capacity, limit: 3 });
    expect(claimed.map((o) => `${o.taskId}:${o.server}`)).toEqual(["t1:git", "t1:backup", "t1:memory"]);
    const rest = await store.operations.claim({ owner: "a", leaseMs: 60_000, capacity, limit: 10 });
    expect(rest.map((o) => `${o.taskId}:${o.server}`)).toEqual(["t2:git", "t2:memory"]);
    expect(await store.operations.queueSize()).toBe(5);
  });

  it("never hands one operation to two stores claiming at once on one database", async () => {
    const [a, b] = await engine.openTwo();
    const servers = ["memory", "git", "backup", "calendar"];
    for (let i = 0; i < 50; i++) {
      await a.tasks.insertWithOperations(
        `t${i}`,
        task,
        null,
        servers.map((s) => op(`t${i}`, s)),
      );
    }
    const capacity = new Map(servers.map((s) => [s, 7]));
    const taken: number[] = [];
    const claimAll = async (store: Store, owner: string) => {
      for (;;) {
        const got = await store.operations.claim({ owner, leaseMs: 60_000, capacity, limit: 20 });
        if (got.length === 0) return;
        taken.push(...got.map((o) => o.id));
      }
    };
    await Promise.all([claimAll(a, "a"), claimAll(b, "b"), claimAll(a, "a2"), claimAll(b, "b2")]);
    expect(taken).toHaveLength(200);
    expect(new Set(taken).size).toBe(200);
  });

  it("records outcomes only for the lease owner: done, failed, parked, released", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    await store.tasks.insertWithOperations("t1", task, null, [
      op("t1", "memory"),
      op("t1", "git"),
      op("t1", "backup"),
      op("t1", "calendar"),
    ]);
    const capacity = new Map(["memory", "git", "backup", "calendar"].map((s) => [s, 1]));
    const ops = await store.operations.claim({ owner: "a", leaseMs: 60_000, capacity, limit: 4 });
    const by = (s: string) => ops.find((o) => o.server === s)!.id;
    const a = { owner: "a", token: 1 };
    // Another owner, or this one with another claim's token, writes nothing.
    expect(
      await store.operations.finish(
        by("memory"),
        { owner: "b", token: 1 },
        { status: "done", remoteId: "m0", durationMs: 1 },
      ),
    ).toBe(false);
    expect(
      await store.operations.finish(
        by("memory"),
        { owner: "a", token: 2 },
        { status: "done", remoteId: "m0", durationMs: 1 },
      ),
    ).toBe(false);
    expect(
      await store.operations.finish(by("memory"), a, { status: "done", remoteId: "m1", durationMs: 12.4 }),
    ).toBe(true);
    expect(
      await store.operations.fail(by("git"), a, {
        error: "disk full",
        retryable: true,
        durationMs: 5,
        recheck: true,
        recoverAt: c.t + 10_000,
      }),
    ).toBe(true);
    expect(
      await store.operations.park(by("backup"), a, {
        reason: "breaker open",
        until: c.t + 5000,
        durationMs: 1,
        recheck: false,
      }),
    ).toBe(true);
    expect(await store.operations.renewLeases("a", 120_000)).toEqual([by("calendar")]);
    expect(await store.operations.release("a")).toBe(1);
    const view = await store.taskView("t1");
    const states = Object.fromEntries(view!.operations.map((o) => [o.server, o]));
    expect(states.memory).toMatchObject({ status: "done", remoteId: "m1", durationMs: 12, totalMs: 12 });
    expect(states.git).toMatchObject({
      status: "failed",
      lastError: "disk full",
      retryable: true,
      recheck: true,
    });
    expect(states.backup).toMatchObject({
      status: "pending",
      waiting: "breaker open",
      nextAttemptAt: c.t + 5000,
    });
    expect(states.calendar).toMatchObject({ status: "pending", recheck: true, leaseOwner: null });
    expect(await store.operations.recentDurations("memory", 10)).toEqual([12]);
    expect(await store.operations.finishedPerBucket(c.t - 1000, 1000, 3)).toEqual([0, 2, 0]);
    expect(await store.operations.countByServerStatus()).toEqual(
      expect.arrayContaining([
        { server: "memory", status: "done", n: 1 },
        { server: "git", status: "failed", n: 1 },
        { server: "backup", status: "pending", n: 1 },
      ]),
    );
    // Recovery re-drives the retryable failure once it is due.
    expect(await store.operations.recover("git")).toEqual([]);
    c.t += 10_000;
    expect(await store.operations.recover("git")).toEqual(["t1"]);
    expect(await store.operations.requeueFailed("t1")).toBe(0);
  });

  it("parks a server's due operations: until a time, or marked only and still due for others", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    await store.tasks.insertWithOperations("t1", task, null, [op("t1", "memory"), op("t1", "git")]);
    // One instance cannot reach memory: marked, still due, so another that can takes it.
    expect(await store.operations.parkServer("memory", "circuit open", null)).toEqual(["t1"]);
    expect(await store.operations.parkServer("memory", "circuit open", null)).toEqual([]);
    const memory = () =>
      store.operations.forTask("t1").then((ops) => ops.find((o) => o.server === "memory")!);
    expect(await memory()).toMatchObject({ waiting: "circuit open", nextAttemptAt: c.t });
    const capacity = new Map([["memory", 1]]);
    const [taken] = await store.operations.claim({ owner: "other", leaseMs: 1000, capacity, limit: 1 });
    expect(taken).toMatchObject({ server: "memory", waiting: null });
    // Alone on its store, the instance parks until the server may be back.
    expect(await store.operations.parkServer("git", "circuit open", c.t + 5000)).toEqual(["t1"]);
    expect((await store.operations.forTask("t1")).find((o) => o.server === "git")).toMatchObject({
      waiting: "circuit open",
      nextAttemptAt: c.t + 5000,
    });
    expect(
      await store.operations.claim({
        owner: "other",
        leaseMs: 1000,
        capacity: new Map([["git", 1]]),
        limit: 1,
      }),
    ).toEqual([]);
  });

  it("releases an operation waiting for its task's other creates once they have settled", async () => {
    const store = await engine.open();
    await store.tasks.insertWithOperations("t1", task, null, [
      op("t1", "git"),
      op("t1", "memory"),
      op("t1", "backup", { waitsFor: ["git", "memory"] }),
    ]);
    const backup = (await store.operations.forTask("t1")).find((o) => o.server === "backup")!;
    expect(backup).toMatchObject({ waitsFor: ["git", "memory"], nextAttemptAt: blockedUntil });
    expect(await store.operations.releaseWaiting("t1")).toEqual([]);
    const capacity = new Map([
      ["git", 1],
      ["memory", 1],
    ]);
    for (const o of await store.operations.claim({ owner: "a", leaseMs: 60_000, capacity, limit: 2 })) {
      await store.operations.finish(o.id, claimOf(o), {
        status: "done",
        remoteId: `r-${o.server}`,
        durationMs: 1,
      });
    }
    expect(await store.operations.releaseWaiting("t1")).toEqual(["backup"]);
    expect(
      (await store.operations.statesOf("t1")).find((o) => o.server === "backup")?.nextAttemptAt,
    ).not.toBe(blockedUntil);
  });

  it("rolls a task back: unfinished creates skipped, one compensation per record made", async () => {
    const store = await engine.open();
    await store.tasks.insertWithOperations("t1", task, null, [op("t1", "git"), op("t1", "memory")]);
    const [git] = await store.operations.claim({
      owner: "a",
      leaseMs: 60_000,
      capacity: new Map([["git", 1]]),
      limit: 1,
    });
    await store.operations.finish(git!.id, claimOf(git!), { status: "done", remoteId: "g1", durationMs: 1 });
    expect(await store.tasks.markRolledBack("t1", "deltatask failed for good")).toBe(true);
    expect(await store.tasks.markRolledBack("t1", "again")).toBe(false);
    expect(await store.operations.rollback("t1")).toBe(1);
    expect(await store.operations.rollback("t1")).toBe(0);
    const ops = await store.operations.forTask("t1");
    expect(ops.map((o) => [o.server, o.kind, o.status, o.remoteId])).toEqual([
      ["git", "create", "done", "g1"],
      ["memory", "create", "skipped", null],
      ["git", "compensate", "pending", "g1"],
    ]);
    expect((await store.tasks.get("t1"))?.rollbackReason).toBe("deltatask failed for good");
  });

  it("finds a task by its idempotency key and the hash of its request", async () => {
    const store = await engine.open();
    await store.tasks.insertWithOperations("t1", task, { key: "req-1", hash: "h1" }, [op("t1", "git")]);
    expect(await store.tasks.getByIdempotencyKey("req-1")).toEqual({ id: "t1", hash: "h1" });
    expect(await store.tasks.getByIdempotencyKey("req-2")).toBeUndefined();
    await expect(
      store.tasks.insertWithOperations("t2", task, { key: "req-1", hash: "h1" }, [op("t2", "git")]),
    ).rejects.toMatchObject({ code: expect.stringMatching(/^SQLITE_CONSTRAINT|^23505$/) });
  });

  it("claims a serial server's operations only while no other running dispatcher is calling it", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    for (const id of ["t1", "t2", "t3"]) {
      await store.tasks.insertWithOperations(id, task, null, [op(id, "memory"), op(id, "git")]);
    }
    const alive = () => false;
    await store.dispatchers.register("a", "a", alive);
    await store.dispatchers.register("b", "b", alive);
    const capacity = new Map([
      ["memory", 2],
      ["git", 2],
    ]);
    const serial = new Set(["memory"]);
    const overrunMs = new Map([["memory", 500]]);
    const claim = (owner: string, orphans = true) =>
      store.operations.claim({ owner, leaseMs: 1000, capacity, limit: 10, serial, orphans, overrunMs });
    const servers = (ops: Array<{ server: string }>) => ops.map((o) => o.server).sort();
    expect(servers(await claim("a"))).toEqual(["git", "git", "memory", "memory"]);
    // b may take git's last one, not memory's while a calls it.
    expect(servers(await claim("b"))).toEqual(["git"]);
    // a may take more of memory's: it is the one calling.
    expect(servers(await claim("a"))).toEqual(["memory"]);
    // A dispatcher that stopped (its row gone) calls nothing: no wait for its leases...
    const [held] = (await store.operations.forTask("t1")).filter((o) => o.server === "memory");
    await store.tasks.insertWithOperations("t4", task, null, [op("t4", "memory")]);
    await store.dispatchers.unregister("a");
    expect(servers(await claim("b"))).toEqual(["memory"]);
    // ...and one still registered is waited for until its leases expire, and a call it
    // began just in time would be over (the server's overrun).
    await store.dispatchers.register("a", "a", alive);
    await store.tasks.insertWithOperations("t5", task, null, [op("t5", "memory")]);
    expect(servers(await claim("a"))).toEqual([]);
    c.t += 1001;
    expect(servers(await claim("a", false))).toEqual([]);
    c.t += 500;
    expect(servers(await claim("a", false))).toEqual(["memory"]);
    expect(held?.leaseOwner).toBe("a");
  });

  it("never lets two stores claiming at once on one database call a serial server together", async () => {
    const [a, b] = await engine.openTwo();
    for (let i = 0; i < 40; i++)
      await a.tasks.insertWithOperations(`t${i}`, task, null, [op(`t${i}`, "memory")]);
    const owners = ["a", "a2", "b", "b2"];
    for (const owner of owners) await a.dispatchers.register(owner, owner, () => false);
    const capacity = new Map([["memory", 3]]);
    const serial = new Set(["memory"]);
    const holders = new Set<string>();
    await Promise.all(
      owners.map((owner, i) =>
        (i < 2 ? a : b).operations
          .claim({ owner, leaseMs: 60_000, capacity, limit: 3, serial })
          .then((got) => got.forEach((o) => holders.add(o.leaseOwner!))),
      ),
    );
    expect(holders.size).toBe(1);
  });

  it("marks unfinished operations for a look-up when an earlier run's process is gone", async () => {
    const store = await engine.open();
    await store.tasks.insertWithOperations("t9", task, null, [op("t9", "memory"), op("t9", "git")]);
    const gone = (p: string) => p === "dead";
    expect(await store.dispatchers.register("first", "alive", gone)).toEqual({ gone: [], rechecked: 0 });
    await store.dispatchers.unregister("first");
    expect(await store.dispatchers.register("second", "dead", gone)).toEqual({ gone: [], rechecked: 0 });
    const capacity = new Map([["memory", 1]]);
    await store.operations.claim({ owner: "second", leaseMs: 60_000, capacity, limit: 1 });
    expect((await store.operations.forTask("t9")).map((o) => o.recheck)).toEqual([false, false]);
    expect(await store.dispatchers.register("third", "alive", gone)).toEqual({
      gone: ["second"],
      rechecked: 2,
    });
    // What the dead run held is free at once, not when its lease runs out.
    expect((await store.operations.forTask("t9")).map((o) => [o.status, o.recheck, o.leaseOwner])).toEqual([
      ["pending", true, null],
      ["pending", true, null],
    ]);
    expect(await store.dispatchers.register("fourth", "alive", gone)).toEqual({ gone: [], rechecked: 0 });
  });

  it("keeps the bot's state: conversations, mutes, time zones, alert messages", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    const { bot } = store;
    expect(await bot.conversations.read("chat-1")).toBeUndefined();
    await bot.conversations.write("chat-1", { step: "title", draft: { title: "ünïcode ✓" } });
    await bot.conversations.write("chat-1", { step: "tags" });
    expect(await bot.conversations.read("chat-1")).toEqual({ step: "tags" });
    await bot.conversations.delete("chat-1");
    expect(await bot.conversations.read("chat-1")).toBeUndefined();
    await bot.mutes.mute("git", c.t + 60_000);
    expect(await bot.mutes.isMuted("git")).toBe(true);
    expect(await bot.mutes.isMuted("memory")).toBe(false);
    await bot.mutes.mute("*", c.t + 1000);
    expect(await bot.mutes.isMuted("memory")).toBe(true);
    c.t += 2000;
    expect(await bot.mutes.active()).toEqual([{ server: "git", until: c.t + 58_000 }]);
    await bot.mutes.unmute();
    expect(await bot.mutes.active()).toEqual([]);
    await bot.timezones.set(42, "Europe/Moscow");
    await bot.timezones.set(42, "Asia/Tokyo");
    expect(await bot.timezones.get(42)).toBe("Asia/Tokyo");
    expect(await bot.timezones.get(43)).toBeUndefined();
    const alert = await store.alerts.raise("error", "git");
    expect(await bot.alertMessages.get(alert.id)).toBeUndefined();
    await bot.alertMessages.set(alert.id, "-100123", 77);
    expect(await bot.alertMessages.get(alert.id)).toEqual({ chatId: "-100123", messageId: 77 });
  });

  it("answers a probe with a real write", async () => {
    const store = await engine.open();
    expect(await store.probe()).toBe(true);
    expect(store.health.state).toEqual({ ok: true });
  });
});

describe.each(engines)("the $name alert outbox", (engine) => {
  const outbox = async () => {
    const c = clock(1_000);
    const s = await engine.open(c.now);
    return { s, tick: (ms: number) => (c.t += ms) };
  };

  it("folds repeats of an open condition into one row", async () => {
    const { s, tick } = await outbox();
    const first = await s.alerts.raise("breaker_open", "git", { error: "timeout" });
    tick(500);
    const again = await s.alerts.raise("breaker_open", "git", { error: "timeout again" });
    expect(again).toMatchObject({ id: first.id, count: 2, firstSeen: 1000, lastSeen: 1500 });
    expect(again.details).toEqual({ error: "timeout again" });
    expect((await s.alerts.raise("breaker_open", "memory")).id).not.toBe(first.id);
    expect(await s.alerts.open()).toHaveLength(2);
  });

  it("closes a server's alerts on recovery; the next failure opens a new row", async () => {
    const { s } = await outbox();
    const a = await s.alerts.raise("error", "git");
    expect((await s.alerts.resolve("git")).map((x) => x.id)).toEqual([a.id]);
    expect((await s.alerts.get(a.id))?.status).toBe("closed");
    expect((await s.alerts.raise("error", "git")).id).not.toBe(a.id);
    expect((await s.alerts.recent(10)).map((x) => x.status)).toEqual(["open", "closed"]);
  });

  it("records the first acknowledgement of an open alert, and none of a closed one", async () => {
    const { s, tick } = await outbox();
    const a = await s.alerts.raise("error", "git");
    expect(a.acknowledged).toBeNull();
    tick(250);
    expect((await s.alerts.acknowledge(a.id, { name: "Ann", userId: 5 }))?.acknowledged).toEqual({
      by: "Ann",
      userId: 5,
      at: 1250,
    });
    // A second press does not take it over; a repeat keeps it.
    expect((await s.alerts.acknowledge(a.id, { name: "Bob", userId: 6 }))?.acknowledged?.by).toBe("Ann");
    expect((await s.alerts.raise("error", "git")).acknowledged?.by).toBe("Ann");
    expect((await s.alerts.open())[0]!.acknowledged?.userId).toBe(5);
    await s.alerts.resolve("git");
    const next = await s.alerts.raise("error", "git");
    expect(await s.alerts.acknowledge(next.id + 1000, { name: "Ann", userId: 5 })).toBeUndefined();
    await s.alerts.resolve("git");
    expect((await s.alerts.acknowledge(next.id, { name: "Ann", userId: 5 }))?.acknowledged).toBeNull();
  });

  it("finds the open message of another server's problem within the window, and what it shows", async () => {
    const { s, tick } = await outbox();
    const git = await s.alerts.raise("error", "git");
    await s.bot.alertMessages.set(git.id, "-100", 51);
    tick(10_000);
    const memory = await s.alerts.raise("error", "memory");
    // git's message, first seen 10 s before: within 30 s, not within 5 s; never for git itself.
    expect(await s.bot.alertMessages.openGroup(memory.firstSeen - 30_000, "memory")).toEqual({
      chatId: "-100",
      messageId: 51,
    });
    expect(await s.bot.alertMessages.openGroup(memory.firstSeen - 5_000, "memory")).toBeUndefined();
    expect(await s.bot.alertMessages.openGroup(memory.firstSeen - 30_000, "git")).toBeUndefined();
    await s.bot.alertMessages.set(memory.id, "-100", 51);
    await s.bot.alertMessages.set((await s.alerts.raise("error", "backup")).id, "-100", 52);
    expect((await s.bot.alertMessages.sharing("-100", 51)).map((a) => a.server)).toEqual(["git", "memory"]);
    // Closed problems start no group.
    await s.alerts.resolve("git");
    await s.alerts.resolve("memory");
    await s.alerts.resolve("backup");
    expect(await s.bot.alertMessages.openGroup(0, "calendar")).toBeUndefined();
  });

  it("hands each undelivered alert to one deliverer, and again when it changed", async () => {
    const { s, tick } = await outbox();
    const a = await s.alerts.raise("degraded", "shrimp-task-manager");
    const notice = await s.alerts.notice("rolled_back", "", "task1", { reason: "deltatask failed for good" });
    expect(notice.status).toBe("closed");
    const claimed = await s.alerts.claimUndelivered("bot-1", 10, 30_000);
    expect(claimed.map((x) => x.id)).toEqual([a.id, notice.id]);
    expect(await s.alerts.claimUndelivered("bot-2", 10, 30_000)).toEqual([]);
    expect(await s.alerts.markDelivered(a.id, "bot-2", 1)).toBe(false);
    expect(await s.alerts.markDelivered(a.id, "bot-1", 1)).toBe(true);
    await s.alerts.releaseClaim(notice.id, "bot-1"); // Telegram refused: try again later
    expect((await s.alerts.claimUndelivered("bot-2", 10, 30_000)).map((x) => x.id)).toEqual([notice.id]);
    // A repeat of the delivered alert makes it due again, to update the sent message.
    await s.alerts.raise("degraded", "shrimp-task-manager");
    tick(1);
    expect(await s.alerts.claimUndelivered("bot-1", 10, 30_000)).toEqual([
      expect.objectContaining({ id: a.id, count: 2, deliveredCount: 1 }),
    ]);
  });
});
