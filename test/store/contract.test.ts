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
    const commits = { ...store.commits };
    const stored = await store.tasks.insertWithOperations("t3", task, null, [
      op("t3", "memory", { lease }),
      op("t3", "git", { priority: 4 }),
      op("t3", "backup", { priority: 5, waitsFor: ["memory"], lease }),
    ]);
    // On its own: one synced commit, and on PostgreSQL one statement.
    expect(store.commits).toEqual({ full: commits.full + 1, relaxed: commits.relaxed });
    const { claimed } = stored;
    expect(claimed).toEqual((await store.operations.forTask("t3")).filter((o) => o.status === "running"));
    expect(claimed.map((o) => o.server)).toEqual(["memory"]);
    expect(stored.task).toEqual(await store.tasks.get("t3"));
    expect(stored.task.status).toBe("running");
    // The one that waits is stored blocked, the other due now.
    const pending = (await store.operations.forTask("t3")).filter((o) => o.status === "pending");
    expect(pending.map((o) => [o.server, o.waitsFor, o.attempts, o.startedAt])).toEqual([
      ["git", [], 0, null],
      ["backup", ["memory"], 0, null],
    ]);
    await store.tasks.insertWithOperations("t4", task, null, [op("t4", "memory")]);
    expect((await store.tasks.get("t4"))?.status).toBe("pending");
    expect((await store.tasks.getMany(["t4", "none", "t3"])).map((t) => t.id).sort()).toEqual(["t3", "t4"]);
    expect(await store.tasks.getMany([])).toEqual([]);
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
    expect(await store.operations.recover(["git"])).toEqual([]);
    c.t += 10_000;
    // Only the servers it is given (which answer again), all of them in one call.
    expect(await store.operations.recover(["memory"])).toEqual([]);
    expect(await store.operations.recover(["memory", "git"])).toEqual(["t1"]);
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
    // Back before that time (restarted, a new session): recovery makes it due now.
    c.t += 1000;
    expect(await store.operations.recover(["git"])).toEqual(["t1"]);
    expect((await store.operations.forTask("t1")).find((o) => o.server === "git")).toMatchObject({
      waiting: null,
      nextAttemptAt: c.t,
    });
    expect(await store.operations.recover(["git"])).toEqual([]);
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

  it("holds a task for one transaction at a time: one that locks it after another waits for that one's commit", async () => {
    const store = await engine.open();
    await store.tasks.insertWithOperations("t1", task, null, [op("t1", "memory")]);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let holding!: () => void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    const first = store.transaction(async (tx) => {
      await tx.tasks.lock("t1");
      holding();
      await gate;
      await tx.tasks.setStatus("t1", "partial", "first", false);
    });
    await held;
    const second = store.transaction(async (tx) => {
      await tx.tasks.lock("t1");
      return (await tx.tasks.get("t1"))!.statusReason;
    });
    try {
      await engine.lockWaitSeen();
    } finally {
      release();
    }
    await first;
    // It saw what the first wrote: its lock waited for the first's commit.
    expect(await second).toBe("first");
  });

  it("sets a task's status with its reason, and the settle time only when settled", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    await store.tasks.insertWithOperations("t1", task, null, [op("t1", "memory")]);
    c.t += 5;
    expect(await store.tasks.setStatus("t1", "partial", "git failed", false)).toBe(c.t);
    expect(await store.tasks.get("t1")).toMatchObject({
      status: "partial",
      statusReason: "git failed",
      updatedAt: 1_000_005,
      settledAt: null,
    });
    c.t += 5;
    expect(await store.tasks.setStatus("t1", "done", null, true)).toBe(1_000_010);
    expect(await store.tasks.get("t1")).toMatchObject({
      status: "done",
      statusReason: null,
      updatedAt: 1_000_010,
      settledAt: 1_000_010,
    });
    expect(await store.tasks.countByStatus()).toEqual({ done: 1 });
  });

  it("lists the newest tasks first, a page at a time", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    for (const id of ["t1", "t2", "t3", "t4", "t5"]) {
      c.t += 1;
      await store.tasks.insertWithOperations(id, task, null, [op(id, "memory")]);
    }
    const ids = async (limit: number, offset?: number) =>
      (await store.tasks.recent(limit, offset)).map((t) => t.id);
    expect(await ids(2)).toEqual(["t5", "t4"]);
    expect(await ids(2, 2)).toEqual(["t3", "t2"]);
    expect(await ids(2, 4)).toEqual(["t1"]);
    expect(await ids(2, 6)).toEqual([]);
    expect(await store.tasks.count()).toBe(5);
  });

  it("counts events by type", async () => {
    const store = await engine.open();
    await store.tasks.insertWithOperations("t1", task, null, [op("t1", "memory")]);
    await store.events.append("drift.repaired", { taskId: "t1" });
    await store.events.append("drift.repaired", { taskId: "t1" }, { server: "git" });
    await store.events.append("task.created", { taskId: "t1" });
    expect(await store.events.count("drift.repaired")).toBe(2);
    expect(await store.events.count("task.created")).toBe(1);
    expect(await store.events.count("none.such")).toBe(0);
  });

  it("releases, at start, every create whose waits have settled, and no other", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    for (const id of ["t1", "t2"]) {
      c.t += 1;
      await store.tasks.insertWithOperations(id, task, null, [
        op(id, "git"),
        op(id, "backup", { waitsFor: ["git"] }),
      ]);
    }
    // t1's git settled, and the process stopped before its release (a crash between the two).
    const [git1] = (await store.operations.claim({
      owner: "a",
      leaseMs: 60_000,
      capacity: new Map([["git", 1]]),
      limit: 1,
    }))!;
    expect(git1!.taskId).toBe("t1");
    await store.operations.finish(git1!.id, claimOf(git1!), { status: "done", remoteId: "g", durationMs: 1 });
    expect(await store.operations.releaseAllWaiting()).toBe(1);
    const backupOf = async (id: string) =>
      (await store.operations.statesOf(id)).find((o) => o.server === "backup")!.nextAttemptAt;
    expect(await backupOf("t1")).not.toBe(blockedUntil);
    expect(await backupOf("t2")).toBe(blockedUntil);
    expect(await store.operations.releaseAllWaiting()).toBe(0);
  });

  it("gives up, past the cutoff, on what still waits for recovery or for its server, and on nothing newer", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    await store.tasks.insertWithOperations("old", task, null, [op("old", "git"), op("old", "memory")]);
    c.t += 1000;
    await store.tasks.insertWithOperations("new", task, null, [op("new", "git")]);
    const capacity = new Map([
      ["git", 2],
      ["memory", 1],
    ]);
    const claimed = await store.operations.claim({ owner: "a", leaseMs: 60_000, capacity, limit: 3 });
    const of = (taskId: string, server: string) =>
      claimed.find((o) => o.taskId === taskId && o.server === server)!;
    for (const o of [of("old", "git"), of("new", "git")])
      await store.operations.fail(o.id, claimOf(o), {
        error: "timed out",
        retryable: true,
        durationMs: 1,
        recheck: true,
        recoverAt: c.t + 60_000,
      });
    const memory = of("old", "memory");
    await store.operations.park(memory.id, claimOf(memory), {
      reason: "memory is down",
      until: c.t + 60_000,
      durationMs: 1,
      recheck: false,
    });
    expect(await store.operations.giveUp(1_000_500, "gave up: ")).toEqual(["old"]);
    const states = async (id: string) =>
      (await store.operations.forTask(id)).map((o) => [
        o.server,
        o.status,
        o.retryable,
        o.waiting,
        o.lastError,
      ]);
    expect(await states("old")).toEqual([
      ["git", "failed", false, null, "gave up: timed out"],
      ["memory", "failed", false, null, "gave up: memory is down"],
    ]);
    expect(await states("new")).toEqual([["git", "failed", true, null, "timed out"]]);
    expect(await store.operations.giveUp(1_000_500, "gave up: ")).toEqual([]);
  });

  it("reads back a server's latest done creates, not a rolled-back task's, and re-creates one that vanished", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    for (const id of ["t1", "t2", "t3"])
      await store.tasks.insertWithOperations(id, task, null, [op(id, "git")]);
    const capacity = new Map([["git", 3]]);
    const claimed = await store.operations.claim({ owner: "a", leaseMs: 60_000, capacity, limit: 3 });
    for (const o of [...claimed].sort((x, y) => x.taskId.localeCompare(y.taskId))) {
      c.t += 10;
      await store.operations.finish(o.id, claimOf(o), {
        status: "done",
        remoteId: `r-${o.taskId}`,
        durationMs: 1,
      });
    }
    await store.tasks.setStatus("t2", "rolled_back", "required server failed", true);
    const read = async (limit: number) =>
      (await store.operations.recentDone("git", limit)).map((o) => o.taskId);
    expect(await read(10)).toEqual(["t3", "t1"]);
    expect(await read(1)).toEqual(["t3"]);
    expect(await store.operations.recentDone("memory", 10)).toEqual([]);
    // t3's record is gone from git: its create runs again, once.
    const t3 = claimed.find((o) => o.taskId === "t3")!;
    expect(await store.operations.requeueForRepair(t3.id)).toBe(true);
    expect(await store.operations.requeueForRepair(t3.id)).toBe(false);
    expect((await store.operations.forTask("t3"))[0]).toMatchObject({ status: "pending", recheck: false });
    expect(await read(10)).toEqual(["t1"]);
    const [again] = await store.operations.claim({ owner: "a", leaseMs: 60_000, capacity, limit: 3 });
    expect(again?.id).toBe(t3.id);
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

  it("keeps each route's own outbox: one holder, delivered, tried again at its time, refused until the alert changes", async () => {
    const { s, tick } = await outbox();
    expect(await s.alertRoutes.start("ops", 1_000)).toBe(1_000);
    expect(await s.alertRoutes.start("ops", 5_000)).toBe(1_000);
    expect(await s.alertRoutes.start("team", 1_000)).toBe(1_000);
    const git = await s.alerts.raise("error", "git");
    const memory = await s.alerts.raise("error", "memory");
    const ops = async (owner: string, now: number, since = 1_000) =>
      (await s.alertRoutes.claim("ops", owner, since, 10, 30_000, now)).map((c) => [c.alert.id, c.attempts]);
    // Alerts seen before the route started are not its.
    expect(await ops("x", 2_000, 5_000)).toEqual([]);
    expect(await ops("x", 2_000)).toEqual([
      [git.id, 0],
      [memory.id, 0],
    ]);
    // Held: nobody else gets them, on this route; another route has its own.
    expect(await ops("y", 2_000)).toEqual([]);
    expect(await s.alertRoutes.claim("team", "y", 1_000, 10, 30_000, 2_000)).toHaveLength(2);
    await s.alertRoutes.delivered(git.id, "ops", "x", 1, 2_100);
    await s.alertRoutes.retryAt(memory.id, "ops", "x", "HTTP 503", 10_000);
    // One that does not hold the claim writes nothing.
    await s.alertRoutes.delivered(memory.id, "ops", "y", 1, 2_100);
    expect(await s.alertRoutes.summary()).toEqual([
      { route: "ops", since: 1_000, retrying: 1, nextAttemptAt: 10_000, refused: 0, lastError: "HTTP 503" },
      { route: "team", since: 1_000, retrying: 0, nextAttemptAt: null, refused: 0, lastError: null },
    ]);
    expect(await ops("y", 9_999)).toEqual([]);
    expect(await ops("y", 10_000)).toEqual([[memory.id, 1]]);
    await s.alertRoutes.refused(memory.id, "ops", "y", 1, "HTTP 404 no_service");
    expect(await ops("z", 50_000)).toEqual([]);
    expect(await s.alertRoutes.forAlert(memory.id)).toEqual([
      {
        route: "ops",
        deliveredCount: 0,
        deliveredAt: null,
        attempts: 2,
        nextAttemptAt: null,
        lastError: "HTTP 404 no_service",
        failedCount: 1,
      },
      {
        route: "team",
        deliveredCount: 0,
        deliveredAt: null,
        attempts: 0,
        nextAttemptAt: null,
        lastError: null,
        failedCount: 0,
      },
    ]);
    expect(await s.alertRoutes.forAlert(git.id)).toEqual([
      expect.objectContaining({ route: "ops", deliveredCount: 1, deliveredAt: 2_100, attempts: 0 }),
      expect.objectContaining({ route: "team", deliveredCount: 0 }),
    ]);
    expect((await s.alertRoutes.summary())[0]).toMatchObject({ route: "ops", retrying: 0, refused: 1 });
    // The refused alert changes (a repeat): due again on that route. The team route's
    // claims, never answered, are anyone's once they ran out.
    tick(10);
    await s.alerts.raise("error", "memory");
    expect(await ops("z", 50_000)).toEqual([[memory.id, 2]]);
    expect(await s.alertRoutes.claim("team", "z", 1_000, 10, 30_000, 31_999)).toEqual([]);
    expect(await s.alertRoutes.claim("team", "z", 1_000, 10, 30_000, 32_001)).toHaveLength(2);
  });

  it("writes a change: the task one version on with its record, only from the version it was made on", async () => {
    const c = clock();
    const store = await engine.open(c.now);
    await store.tasks.insertWithOperations("t1", task, null, [op("t1", "git")], { chatId: "42", userId: 7 });
    expect(await store.tasks.get("t1")).toMatchObject({
      state: "open",
      version: 1,
      completedAt: null,
      deletedAt: null,
      chatId: "42",
      userId: 7,
    });
    const fields = { ...task, title: "b", tags: ["x"] };
    const change = {
      kind: "update" as const,
      task: fields,
      state: "open" as const,
      completedAt: null,
      deletedAt: null,
      changed: { title: "b", tags: ["x"] },
      source: "chat",
      key: { key: "k1", hash: "h1" },
    };
    c.t += 5;
    expect(await store.tasks.applyChange("t1", 1, change)).toBe(true);
    // Made on version 1 again: another change came first, nothing is written.
    expect(await store.tasks.applyChange("t1", 1, { ...change, key: null })).toBe(false);
    expect(await store.tasks.get("t1")).toMatchObject({
      title: "b",
      tags: ["x"],
      version: 2,
      updatedAt: c.t,
    });
    await store.tasks.applyChange("t1", 2, {
      ...change,
      kind: "complete",
      state: "done",
      completedAt: c.t,
      changed: {},
      source: "deltatask",
      key: null,
    });
    expect(await store.tasks.get("t1")).toMatchObject({ state: "done", version: 3, completedAt: c.t });
    expect(await store.tasks.changeByIdempotencyKey("k1")).toEqual({ taskId: "t1", version: 2, hash: "h1" });
    expect(await store.tasks.changeByIdempotencyKey("k2")).toBeUndefined();
    expect((await store.tasks.changes("t1")).map((x) => [x.version, x.kind, x.changed, x.source])).toEqual([
      [2, "update", { title: "b", tags: ["x"] }, "chat"],
      [3, "complete", {}, "deltatask"],
    ]);
    // One key, one change.
    await expect(store.tasks.applyChange("t1", 3, change)).rejects.toThrow(/UNIQUE|unique/);
    expect((await store.tasks.get("t1"))?.version).toBe(3);
  });

  it("runs a change on a server only after every earlier operation of its task there, and supersedes pending ones", async () => {
    const store = await engine.open();
    await store.tasks.insertWithOperations("t1", task, null, [op("t1", "git"), op("t1", "memory")]);
    const change = (kind: "update" | "complete" | "delete", server: string, v: number) => ({
      server,
      priority: 2,
      idempotencyKey: `t1:${server}:${kind}:v${v}`,
      remoteId: null,
    });
    const capacity = new Map([
      ["git", 5],
      ["memory", 5],
    ]);
    const claim = () => store.operations.claim({ owner: "a", leaseMs: 60_000, capacity, limit: 10 });
    // git's create is claimed (running); memory's stays pending, parked for its server.
    const [gitCreate] = await store.operations.claim({
      owner: "a",
      leaseMs: 60_000,
      capacity: new Map([["git", 1]]),
      limit: 1,
    });
    await store.operations.parkServer("memory", "memory is down", blockedUntil - 1);
    expect(
      await store.operations.addChanges(
        "t1",
        "update",
        [change("update", "git", 2), change("update", "memory", 2)],
        ["update"],
      ),
    ).toBe(0);
    // Neither runs: git's create is running, memory's is parked but not settled.
    expect(await store.operations.releaseWaiting("t1")).toEqual([]);
    expect(await claim()).toEqual([]);
    await store.operations.finish(gitCreate!.id, claimOf(gitCreate!), {
      status: "done",
      remoteId: "g1",
      durationMs: 1,
    });
    expect(await store.operations.releaseWaiting("t1")).toEqual(["git"]);
    // A second update, and a complete, before git's first update ran: the second update
    // supersedes the first where it is still pending; the complete waits behind it.
    expect(
      await store.operations.addChanges(
        "t1",
        "update",
        [change("update", "git", 3), change("update", "memory", 3)],
        ["update"],
      ),
    ).toBe(2);
    await store.operations.addChanges(
      "t1",
      "complete",
      [change("complete", "git", 4)],
      ["complete", "reopen"],
    );
    expect((await store.operations.releaseWaiting("t1")).sort()).toEqual(["git"]);
    const first = await claim();
    expect(first.map((o) => [o.server, o.kind, o.idempotencyKey])).toEqual([
      ["git", "update", "t1:git:update:v3"],
    ]);
    await store.operations.finish(first[0]!.id, claimOf(first[0]!), {
      status: "done",
      remoteId: "g1",
      durationMs: 1,
    });
    expect(await store.operations.releaseWaiting("t1")).toEqual(["git"]);
    expect((await claim()).map((o) => [o.server, o.kind])).toEqual([["git", "complete"]]);
    // A delete supersedes every pending change, here memory's update.
    expect(
      await store.operations.addChanges(
        "t1",
        "delete",
        [change("delete", "memory", 5)],
        ["update", "complete", "reopen"],
      ),
    ).toBe(1);
    const ops = await store.operations.forTask("t1");
    expect(ops.map((o) => [o.server, o.kind, o.status, o.status === "skipped" ? o.lastError : null])).toEqual(
      [
        ["git", "create", "done", null],
        ["memory", "create", "pending", null],
        ["git", "update", "skipped", "superseded by a later update"],
        ["memory", "update", "skipped", "superseded by a later update"],
        ["git", "update", "done", null],
        ["memory", "update", "skipped", "superseded by a later delete"],
        ["git", "complete", "running", null],
        ["memory", "delete", "pending", null],
      ],
    );
  });

  it("keeps deleted tasks out of read-back, and lists tasks by state, deadline, tag and priority", async () => {
    const store = await engine.open();
    const make = async (id: string, extra: { deadline?: string; tags?: string[]; priority?: number }) => {
      await store.tasks.insertWithOperations(id, { ...task, ...extra }, null, [op(id, "git")]);
      const [o] = await store.operations.claim({
        owner: "a",
        leaseMs: 60_000,
        capacity: new Map([["git", 1]]),
        limit: 1,
      });
      await store.operations.finish(o!.id, claimOf(o!), {
        status: "done",
        remoteId: `r-${id}`,
        durationMs: 1,
      });
    };
    await make("a", { deadline: "2026-01-01T10:00:00.000Z", tags: ["home"] });
    await make("b", { priority: 2, tags: ["home_x"] });
    await make("c", { deadline: "2026-02-01T10:00:00.000Z", tags: ["work"] });
    const t = (await store.tasks.get("c"))!;
    await store.tasks.applyChange("c", 1, {
      kind: "delete",
      task: t,
      state: "deleted",
      completedAt: null,
      deletedAt: 5,
      changed: {},
      source: "api",
      key: null,
    });
    expect((await store.operations.recentDone("git", 10)).map((o) => o.taskId).sort()).toEqual(["a", "b"]);
    // The count of a filter is the length of its list.
    const ids = async (f: Omit<Parameters<Store["tasks"]["list"]>[0], "limit">) => {
      const listed = (await store.tasks.list({ limit: 10, ...f })).map((x) => x.id);
      expect(await store.tasks.count(f)).toBe(listed.length);
      return listed;
    };
    expect(await ids({})).toEqual(["c", "b", "a"]);
    expect(await ids({ state: "open" })).toEqual(["b", "a"]);
    expect(await ids({ state: "deleted" })).toEqual(["c"]);
    expect(await ids({ deadlineBefore: "2026-01-15T00:00:00.000Z" })).toEqual(["a"]);
    expect(await ids({ deadlineFrom: "2026-01-15T00:00:00.000Z" })).toEqual(["c"]);
    // A tag is matched whole: "home" is not "home_x", and "_" is not a wildcard.
    expect(await ids({ tag: "home" })).toEqual(["a"]);
    expect(await ids({ tag: "home_x" })).toEqual(["b"]);
    expect(await ids({ tag: "homexx" })).toEqual([]);
    expect(await ids({ priority: 2 })).toEqual(["b"]);
    expect(await store.tasks.list({ limit: 1, offset: 1 })).toMatchObject([{ id: "b" }]);
  });
});

describe.each(engines)("the $name reminders", (engine) => {
  const hour = 3_600_000;
  const due = (t: number) => new Date(t).toISOString();
  const openChange = (deadline: string | null, state: "open" | "done" = "open") => ({
    kind: state === "done" ? ("complete" as const) : ("update" as const),
    task: { ...task, deadline },
    state,
    completedAt: null,
    deletedAt: null,
    changed: {},
    source: "chat",
    key: null,
  });

  it("plans a task once per version, fires each reminder once, and keeps none for a task that is done", async () => {
    const c = clock(10 * hour);
    const store = await engine.open(c.now);
    const deadline = due(c.t + 3 * hour);
    await store.tasks.insertWithOperations("t1", { ...task, deadline }, null, [op("t1", "git")], {
      chatId: "42",
      userId: 7,
      remind: [60, 0],
    });
    // No chat: planned, with nothing to plan.
    await store.tasks.insertWithOperations("t2", { ...task, deadline }, null, [op("t2", "git")]);
    expect(await store.reminders.toPlan(10)).toMatchObject([
      { taskId: "t1", version: 1, deadline, chatId: "42", remind: [60, 0] },
      { taskId: "t2", version: 1, chatId: null, remind: null },
    ]);
    const at = Date.parse(deadline);
    expect(
      await store.reminders.replan(
        "t1",
        1,
        [
          { offsetMs: hour, fireAt: at - hour },
          { offsetMs: 0, fireAt: at },
        ],
        true,
      ),
    ).toBe(true);
    expect(await store.reminders.replan("t2", 1, [], true)).toBe(true);
    expect(await store.reminders.toPlan(10)).toEqual([]);
    // A plan for a version the task has left writes nothing.
    expect(await store.reminders.replan("t1", 0, [], true)).toBe(false);

    expect(await store.reminders.claim("a", at - hour - 1, 10, 60_000)).toEqual([]);
    const [first, ...more] = await store.reminders.claim("a", at - hour, 10, 60_000);
    expect(more).toEqual([]);
    expect(first).toMatchObject({
      taskId: "t1",
      kind: "before",
      offsetMs: hour,
      title: "a",
      chatId: "42",
      userId: 7,
    });
    // Claimed: no one else gets it while the claim holds; the holder records it sent once.
    expect(await store.reminders.claim("b", at - hour + 30_000, 10, 60_000)).toEqual([]);
    expect(await store.reminders.sent(first!.id, "b", false)).toBe(false);
    expect(await store.reminders.sent(first!.id, "a", false)).toBe(true);
    expect(await store.reminders.claim("b", at - 1, 10, 60_000)).toEqual([]);
    expect((await store.reminders.upcoming("42", 10)).map((r) => r.fireAt)).toEqual([at]);

    // Done: planned again, it keeps nothing to fire.
    expect(await store.tasks.applyChange("t1", 1, openChange(deadline, "done"))).toBe(true);
    const [again] = await store.reminders.toPlan(10);
    expect(again).toMatchObject({ taskId: "t1", version: 2, state: "done" });
    expect(await store.reminders.replan("t1", 2, [], false)).toBe(true);
    expect(await store.reminders.claim("a", at + hour, 10, 60_000)).toEqual([]);
    expect(await store.reminders.upcoming("42", 10)).toEqual([]);
  });

  it("moves a task's reminders with its deadline, keeps its snoozes, one per reminder, and takes back a claim that ran out", async () => {
    const c = clock(10 * hour);
    const store = await engine.open(c.now);
    const first = c.t + 2 * hour;
    await store.tasks.insertWithOperations("t1", { ...task, deadline: due(first) }, null, [op("t1", "git")], {
      chatId: "42",
      userId: null,
    });
    await store.reminders.replan("t1", 1, [{ offsetMs: hour, fireAt: first - hour }], true);
    const [r] = await store.reminders.claim("a", first - hour, 10, 60_000);
    await store.reminders.sent(r!.id, "a", false);
    const snooze = await store.reminders.snooze(r!.id, first - hour + hour / 2);
    expect(snooze).toBeTypeOf("number");
    // The same button again: no second snooze.
    expect(await store.reminders.snooze(r!.id, first)).toBeUndefined();

    // The deadline moves a day on: the reminder before it moves; the snooze stays.
    const moved = first + 24 * hour;
    await store.tasks.applyChange("t1", 1, openChange(due(moved)));
    await store.reminders.replan("t1", 2, [{ offsetMs: hour, fireAt: moved - hour }], true);
    expect((await store.reminders.upcoming("42", 10)).map((x) => [x.kind, x.fireAt])).toEqual([
      ["snooze", first - hour / 2],
      ["before", moved - hour],
    ]);
    // A holder that never says it sent: its claim runs out and another instance takes it.
    const [held] = await store.reminders.claim("a", first, 10, 60_000);
    expect(held).toMatchObject({ id: snooze, kind: "snooze" });
    expect(await store.reminders.claim("b", first + 59_000, 10, 60_000)).toEqual([]);
    const [taken] = await store.reminders.claim("b", first + 61_000, 10, 60_000);
    expect(taken?.id).toBe(snooze);
    expect(await store.reminders.sent(snooze!, "a", false)).toBe(false);
    expect(await store.reminders.sent(snooze!, "b", true)).toBe(true);
    // A send that failed comes back at its new time.
    const [last] = await store.reminders.claim("a", moved - hour, 10, 60_000);
    await store.reminders.retry(last!.id, "a", moved - hour + 60_000);
    expect(await store.reminders.claim("a", moved - hour + 59_000, 10, 60_000)).toEqual([]);
    expect(await store.reminders.claim("a", moved - hour + 60_000, 10, 60_000)).toHaveLength(1);
  });

  it("never hands one reminder to two of three instances claiming at once", async () => {
    const [a, b] = await engine.openTwo();
    const at = Date.now() + 10 * hour;
    for (let i = 0; i < 60; i++) {
      await a.tasks.insertWithOperations(
        `t${i}`,
        { ...task, deadline: due(at) },
        null,
        [op(`t${i}`, "git")],
        {
          chatId: "42",
          userId: null,
        },
      );
      await a.reminders.replan(
        `t${i}`,
        1,
        [
          { offsetMs: hour, fireAt: at - hour },
          { offsetMs: 0, fireAt: at },
        ],
        true,
      );
    }
    const taken: number[] = [];
    const claimAll = async (store: Store, owner: string) => {
      for (;;) {
        const got = await store.reminders.claim(owner, at, 7, 60_000);
        if (got.length === 0) return;
        taken.push(...got.map((r) => r.id));
      }
    };
    await Promise.all([claimAll(a, "one"), claimAll(b, "two"), claimAll(a, "three")]);
    expect(taken).toHaveLength(120);
    expect(new Set(taken).size).toBe(120);
  });
});
