import { readFileSync, rmSync } from "node:fs";
import { Writable } from "node:stream";
import { pino } from "pino";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { ConfigFile, ServerName } from "../../src/config/schema.js";
import { startCore, type Core, type CoreOptions } from "../../src/core.js";
import type { OperationEvent } from "../../src/orchestrator/orchestrator.js";
import { taskMarker } from "../../src/domain/task.js";
import type { Logger } from "../../src/log.js";
import type { Store } from "../../src/store/store.js";
import { onlyServers, silentLog, tempDir, testConfig } from "../helpers.js";
import { faultServerPath } from "../core-harness.js";
import { storeEngines, type Engine } from "../store-engines.js";

// First: the stores close after the cores that use them (hooks run in reverse).
const engines = storeEngines();
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/**
 * A core built by the composition root on real local servers and a store of the engine
 * under test, taking no work until `start()`; with a movable clock.
 */
async function build(
  dataDir: string,
  file: ConfigFile,
  opts: { owner: string; store: Store; clock?: { offset: number }; log?: Logger },
) {
  const config = testConfig(dataDir, file);
  const clock = opts.clock ?? { offset: 0 };
  const now = () => Date.now() + clock.offset;
  const options: CoreOptions = { owner: opts.owner, now, dispatch: false, store: opts.store };
  const core: Core = await startCore(config, opts.log ?? silentLog, options);
  expect(core.started.filter((r) => !r.ok)).toEqual([]);
  const started: OperationEvent[] = [];
  core.orchestrator.on("operation.started", (e) => started.push(e));
  cleanups.push(() => core.close(2000));
  const { store, fleet, orchestrator } = core;
  return { core, config, store, fleet, orchestrator, started, clock, start: () => orchestrator.start() };
}

/** `build` on a fresh temporary folder (data in `data/`) and a fresh store of `engine`. */
async function buildFresh(
  engine: Engine,
  file: ConfigFile,
  opts: { owner: string; clock?: { offset: number }; log?: Logger },
) {
  const { dir, remove } = tempDir();
  cleanups.push(remove);
  const dataDir = path.join(dir, "data");
  const clock = opts.clock ?? { offset: 0 };
  const store = await engine.open(() => Date.now() + clock.offset);
  return { dataDir, ...(await build(dataDir, file, { ...opts, clock, store })) };
}

/** deltatask played by the fault server, answering every create after `ms`. */
function slowDeltatask(ms: number, extra: NonNullable<ConfigFile["servers"]>["deltatask"] = {}) {
  return {
    command: process.execPath,
    args: [faultServerPath],
    env: { FAULT: "slow", SLOW_MS: String(ms) },
    ...extra,
  };
}

/** A logger at info whose JSON lines the test reads. */
function capturedLog(): { log: Logger; lines: () => Array<{ msg?: string } & Record<string, unknown>> } {
  const seen: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      seen.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  return {
    log: pino({ level: "info" }, sink),
    lines: () => seen.map((l) => JSON.parse(l) as { msg?: string }),
  };
}

function deltaRecords(dataDir: string): Array<{ id: string; tags: string[] }> {
  return JSON.parse(readFileSync(path.join(dataDir, "deltatask", "tasks.json"), "utf8")).tasks;
}

describe.each(engines)("dispatcher on $name", (engine) => {
  it("dispatches in priority order (1 first) under a global limit", async () => {
    const servers = onlyServers(["deltatask", "memory", "time-tracker", "calendar"], {
      deltatask: { priority: 1 },
      memory: { priority: 2 },
      "time-tracker": { priority: 4 },
      calendar: { priority: 3 },
    });
    const c = await buildFresh(engine, { servers, dispatcher: { concurrency: 1 } }, { owner: "one" });
    const ids = [
      await c.orchestrator.createTask({ title: "first" }),
      await c.orchestrator.createTask({ title: "second" }),
    ];
    await c.start();
    for (const id of ids) expect((await c.orchestrator.waitForSettled(id, 20_000))?.task.status).toBe("done");
    const priority = (s: string) => c.config.servers[s as ServerName].priority;
    expect(c.started.map((e) => priority(e.server))).toEqual([1, 1, 2, 2, 3, 3, 4, 4]);
  });

  it("never runs one operation in two dispatchers sharing a database", async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    // Servers that take calls at once (a serial one is called by one dispatcher at a time
    // in a group: see the store contract), so both dispatchers get some of each.
    const file: ConfigFile = {
      servers: onlyServers(["deltatask", "time-tracker"], {
        deltatask: { concurrency: 2 },
        "time-tracker": { concurrency: 2 },
      }),
      dispatcher: { concurrency: 2 },
    };
    // Each dispatcher has its own server processes and data, so every record shows who made it.
    const [storeA, storeB] = await engine.openTwo();
    const a = await build(path.join(dir, "a"), file, { owner: "a", store: storeA });
    const b = await build(path.join(dir, "b"), file, { owner: "b", store: storeB });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push(await a.orchestrator.createTask({ title: `task ${i}` }));
    await a.start();
    await b.start();
    await vi.waitFor(async () => expect(await a.store.tasks.countByStatus()).toEqual({ done: 20 }), {
      timeout: 30_000,
      interval: 50,
    });
    expect(a.started.length).toBeGreaterThan(0);
    expect(b.started.length).toBeGreaterThan(0);
    expect(a.started.length + b.started.length).toBe(40);
    const records = [...deltaRecords(path.join(dir, "a")), ...deltaRecords(path.join(dir, "b"))];
    for (const id of ids) {
      expect(records.filter((r) => r.tags.includes(taskMarker(id)))).toHaveLength(1);
      for (const op of await a.store.operations.forTask(id)) expect(op.attempts).toBe(1);
    }
  });

  it("after a crash between a server call and its record, looks before creating: no second copy", async () => {
    const file: ConfigFile = {
      servers: onlyServers(["deltatask", "time-tracker", "notifications"]),
      dispatcher: { lease_seconds: 30 },
    };
    const clock = { offset: 0 };
    const c = await buildFresh(engine, file, { owner: "survivor", clock });
    const { dataDir } = c;
    const id = await c.orchestrator.createTask({ title: "survives a crash", tags: ["crash"] });

    // A dispatcher that dies: it claims the operations, reaches each server, and never records the result.
    const claimed = await c.store.operations.claim({
      owner: "doomed",
      leaseMs: 30_000,
      capacity: new Map(c.fleet.names.map((n) => [n, 1])),
      limit: 10,
    });
    expect(claimed.map((o) => o.server).sort()).toEqual(["deltatask", "time-tracker"]); // notifications waits for deltatask (required)
    const task = (await c.store.tasks.get(id))!;
    const reached = new Map<string, string>();
    for (const op of claimed) {
      const server = op.server as ServerName;
      const outcome = await c.fleet.execute(
        server,
        ({ call, signal }) => c.fleet.integration(server).create(task, call, signal),
        AbortSignal.timeout(10_000),
      );
      reached.set(server, (outcome as { remoteId: string }).remoteId);
    }

    // Its lease runs out, and so does the time a call begun in it could take; the survivor takes over.
    clock.offset += 41_000;
    await c.start();
    const view = await c.orchestrator.waitForSettled(id, 20_000);
    expect(view?.task.status).toBe("done");
    for (const op of view!.operations.filter((o) => o.server !== "notifications")) {
      expect(op.remoteId).toBe(reached.get(op.server));
      expect(op.attempts).toBe(2);
    }
    expect(deltaRecords(dataDir).filter((r) => r.tags.includes(taskMarker(id)))).toHaveLength(1);
    const tracked = JSON.parse(
      readFileSync(path.join(dataDir, "time-tracker", "time-tracker.json"), "utf8"),
    ).tasks;
    expect(tracked.filter((t: { tags: string[] }) => t.tags.includes(taskMarker(id)))).toHaveLength(1);
    const verified = (await c.store.events.forTask(id)).filter(
      (e) => e.type === "operation.done" && e.data.verified === true,
    );
    expect(verified.map((e) => e.data.server).sort()).toEqual(["deltatask", "time-tracker"]);
  });

  it("a claim that waits in the server's queue past its lease is never called; the outcome of a claim taken over is refused", async () => {
    const { log, lines } = capturedLog();
    const { dir } = tempDir();
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const calls = path.join(dir, "calls");
    const clock = { offset: 0 };
    // deltatask takes one call at a time and answers each after 1.5 s; two claims of it.
    const c = await buildFresh(
      engine,
      {
        servers: onlyServers(["deltatask"], {
          deltatask: slowDeltatask(1500, { env: { FAULT: "slow", SLOW_MS: "1500", CALLS_FILE: calls } }),
        }),
        dispatcher: { prefetch: 2 },
      },
      { owner: "paused", clock, log },
    );
    const first = await c.orchestrator.createTask({ title: "in flight" });
    const second = await c.orchestrator.createTask({ title: "queued" });
    await c.start();
    await vi.waitFor(() => expect(c.started.map((e) => e.taskId).sort()).toEqual([first, second].sort()));
    // This process "stands still" past both leases and the time a call begun in them could
    // take (30 s + deltatask's 10 s): another holder takes both over meanwhile.
    clock.offset += 41_000;
    const taken = await c.store.operations.claim({
      owner: "other",
      leaseMs: 30_000,
      capacity: new Map([["deltatask", 2]]),
      limit: 2,
      overrunMs: new Map([["deltatask", 10_000]]),
    });
    expect(taken.map((o) => o.taskId).sort()).toEqual([first, second].sort());
    // The call in flight ends; the queued one's turn comes and it is not sent.
    await vi.waitFor(
      () => {
        expect(
          lines().filter((l) => l.msg === "lease lost; leaving the operation to its next holder"),
        ).toHaveLength(1);
        expect(lines().filter((l) => l.msg?.startsWith("outcome not recorded"))).toHaveLength(1);
      },
      { timeout: 10_000, interval: 50 },
    );
    expect(readFileSync(calls, "utf8").split("\n").filter(Boolean)).toEqual(["in flight"]);
    // Both stay the other holder's, as it claimed them.
    for (const op of [
      ...(await c.store.operations.forTask(first)),
      ...(await c.store.operations.forTask(second)),
    ]) {
      expect(op).toMatchObject({ status: "running", leaseOwner: "other", attempts: 2, recheck: true });
    }
  });

  it("after a run that did not stop, looks up unfinished operations before creating them", async () => {
    const c = await buildFresh(
      engine,
      { servers: onlyServers(["deltatask", "time-tracker"]) },
      { owner: "next" },
    );
    const { dataDir } = c;
    const id = await c.orchestrator.createTask({ title: "claim lost to a power cut", tags: ["cut"] });
    // A run that claimed the operations and reached the servers, and whose claims a power
    // cut took (its rows read pending, never claimed), left its registration behind.
    await c.store.dispatchers.register("cut-off", "a process from an earlier boot", () => false);
    const task = (await c.store.tasks.get(id))!;
    const reached = new Map<string, string>();
    for (const server of ["deltatask", "time-tracker"] as ServerName[]) {
      const outcome = await c.fleet.execute(
        server,
        ({ call, signal }) => c.fleet.integration(server).create(task, call, signal),
        AbortSignal.timeout(10_000),
      );
      reached.set(server, (outcome as { remoteId: string }).remoteId);
    }
    expect((await c.store.operations.forTask(id)).map((o) => [o.status, o.recheck])).toEqual([
      ["pending", false],
      ["pending", false],
    ]);

    await c.start();
    const view = await c.orchestrator.waitForSettled(id, 20_000);
    expect(view?.task.status).toBe("done");
    for (const op of view!.operations) expect(op.remoteId).toBe(reached.get(op.server));
    expect(deltaRecords(dataDir).filter((r) => r.tags.includes(taskMarker(id)))).toHaveLength(1);
    const verified = (await c.store.events.forTask(id)).filter(
      (e) => e.type === "operation.done" && e.data.verified === true,
    );
    expect(verified.map((e) => e.data.server).sort()).toEqual(["deltatask", "time-tracker"]);
  });

  it("claims a new task's operations in the commit that stores it while its servers have room", async () => {
    const c = await buildFresh(
      engine,
      {
        // Two calls at a time each. (A server that takes one at a time is claimed by the pass
        // right after the commit on a store other instances may share: the claim looks at
        // whether another instance is calling it.)
        servers: onlyServers(["memory", "time-tracker"], {
          memory: { concurrency: 2 },
          "time-tracker": { concurrency: 2 },
        }),
        dispatcher: { prefetch: 1 },
      },
      { owner: "direct" },
    );
    await c.start();
    // The servers stand still (SIGSTOP) while the tasks are stored and read back: no call
    // finishes in between, on either store.
    const pids = c.fleet.names.map((s) => c.fleet.pid(s)!);
    for (const pid of pids) process.kill(pid, "SIGSTOP");
    let states;
    let ids: string[];
    try {
      // Two claims each: two tasks go straight to them, the third waits.
      ids = [];
      for (const title of ["one", "two", "three"]) ids.push(await c.orchestrator.createTask({ title }));
      states = await Promise.all(
        ids.map(async (id) => (await c.store.operations.forTask(id)).map((o) => [o.status, o.attempts])),
      );
    } finally {
      for (const pid of pids) process.kill(pid, "SIGCONT");
    }
    expect(states).toEqual([
      [
        ["running", 1],
        ["running", 1],
      ],
      [
        ["running", 1],
        ["running", 1],
      ],
      [
        ["pending", 0],
        ["pending", 0],
      ],
    ]);
    expect((await c.store.tasks.get(ids[0]!))?.status).toBe("running");
    for (const id of ids) expect((await c.orchestrator.waitForSettled(id, 20_000))?.task.status).toBe("done");
  });

  it("sends a batch's long calls first and its quick ones after, learned from answers and kept across a restart", async () => {
    // deltatask (answering after 60 ms) comes second by priority: without the ordering it is
    // always sent after calendar.
    const c = await buildFresh(
      engine,
      {
        servers: onlyServers(["deltatask", "calendar"], {
          deltatask: slowDeltatask(60, { priority: 5 }),
          calendar: { priority: 1 },
        }),
      },
      { owner: "longest-first" },
    );
    // Each started call, and whether it started with the first of its batch or after (the
    // microtask the first one queues runs once every call launched with it has started).
    const order = async (orchestrator: Core["orchestrator"], title: string) => {
      const seen: string[] = [];
      let armed = false;
      let later = false;
      const listen = (e: OperationEvent) => {
        if (!armed) {
          armed = true;
          queueMicrotask(() => (later = true));
        }
        seen.push(`${e.server}${later ? " later" : ""}`);
      };
      orchestrator.on("operation.started", listen);
      const id = await orchestrator.createTask({ title });
      expect((await orchestrator.waitForSettled(id, 20_000))?.task.status).toBe("done");
      orchestrator.off("operation.started", listen);
      return seen;
    };
    await c.start();
    // Nothing known yet: priority order, all at once.
    expect(await order(c.orchestrator, "first")).toEqual(["calendar", "deltatask"]);
    // The long call goes out first; the quick one (under half its time) on the next turn.
    expect(await order(c.orchestrator, "second")).toEqual(["deltatask", "calendar later"]);
    // Restarted on the same data, the dispatcher starts from the stored call times.
    await c.core.close(2000);
    const next = await startCore(c.config, silentLog, { owner: "next", store: c.store });
    cleanups.push(() => next.close(2000));
    expect(await order(next.orchestrator, "third")).toEqual(["deltatask", "calendar later"]);
  });

  it("without a backlog, commits a task's quick outcomes with its last one", async () => {
    const c = await buildFresh(
      engine,
      {
        // Two calls at a time each, so the task's own commit claims both on either store.
        servers: onlyServers(["deltatask", "memory"], {
          // Answers 30 ms after memory has, at the earliest.
          deltatask: slowDeltatask(30, { required: false, concurrency: 2 }),
          memory: { concurrency: 2 },
        }),
      },
      { owner: "one-commit" },
    );
    await c.start();
    const before = { ...c.store.commits };
    // Timers stand still (the servers' answers do not): memory's outcome, which settles
    // nothing while deltatask still has its call, waits for company however long that takes.
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
    try {
      const id = await c.orchestrator.createTask({ title: "two outcomes" });
      expect((await c.orchestrator.waitForSettled(id, 20_000))?.task.status).toBe("done");
    } finally {
      vi.useRealTimers();
    }
    // The task's own synced commit (which also claimed both), then one for both outcomes.
    expect(c.store.commits).toEqual({ full: before.full + 1, relaxed: before.relaxed + 1 });
  });

  it("returns the same task for a repeated idempotency key", async () => {
    const c = await buildFresh(engine, { servers: onlyServers(["memory"]) }, { owner: "k" });
    const first = await c.orchestrator.createTask({ title: "once" }, { idempotencyKey: "req-1" });
    const again = await c.orchestrator.createTask({ title: "once" }, { idempotencyKey: "req-1" });
    expect(again).toBe(first);
    expect(await c.store.tasks.recent(10)).toHaveLength(1);
  });
});
