import type { ServerName } from "../config/schema.js";
import type { Operation, Task } from "../domain/task.js";
import { processIdentity, stillRunning } from "../fleet/pid-files.js";
import { percentile } from "../monitoring/health-rules.js";
import type { NewOperationRow, StoreQueries } from "../store/store.js";
import type { OutcomeSituation } from "./commit-rule.js";
import type { Claimed, OrchestratorContext, Parts } from "./context.js";
import type { Lease } from "./leases.js";

/** How many of a server's recent calls its typical call time starts from. */
const typicalWindow = 20;

type Plan = { capacity: Map<ServerName, number>; free: number };

/**
 * Takes due operations and runs them: claims with a lease, priority 1 first, within the
 * global and per-server limits, asking the database only about servers that may have work;
 * launches each claim through the runner, the slowest calls of a batch first.
 */
export class Dispatcher {
  /**
   * Claims being run until their outcome is written, by lease (a later claim of the same
   * operation, after this run paused past its lease, has its own); `calling` while the
   * server has the call.
   */
  private readonly inflight = new Map<
    Lease,
    { server: ServerName; taskId: string; calling: boolean; done: Promise<void> }
  >();
  /**
   * Servers that may have due operations: marked by whatever makes work due (a new task, a
   * release, a requeue, the poll), unmarked when a claim comes back short. A pass asks the
   * database about these only.
   */
  private readonly mayHaveWork = new Set<ServerName>();
  /**
   * Each server's typical call time in ms: the median of its recent calls at start, then a
   * moving average of its answers. A batch of claims is sent longest first, so the slowest
   * call of a task (which decides when the task settles) is not queued behind the quick ones.
   */
  private readonly typicalMs = new Map<ServerName, number>();
  /**
   * Operations claimed in a transaction not yet committed: they count against the limits
   * from the moment they are taken, so a transaction begun meanwhile does not claim their slots.
   */
  private readonly reserved = new Map<number, { server: ServerName; taskId: string }>();
  /** Keys (negative) of a new task's operations reserved before the store gives them ids. */
  private plannedKeys = 0;
  private stopListening: (() => void) | undefined;
  /** The pass under way: one at a time, as each plans from what is in flight. */
  private pumping: Promise<unknown> | undefined;
  /** Look for operations with an expired lease on the next pass (set by the poll). */
  private orphansDue = true;
  private pumpQueued = false;
  private timers: NodeJS.Timeout[] = [];
  private readonly retries;
  private running = false;
  private draining = false;
  /**
   * Servers that take one call at a time: in a group of instances (a store others share)
   * only one dispatcher calls each at a time (see ClaimRequest.serial).
   */
  private readonly serial: ReadonlySet<string>;
  /** Each server's call timeout: how long past a lease its holder's call may still run there. */
  private readonly overrunMs: ReadonlyMap<string, number>;

  constructor(
    private readonly ctx: OrchestratorContext,
    private readonly parts: Parts,
  ) {
    this.retries = { dispatch: ctx.retry("dispatch") };
    this.serial = new Set(
      ctx.store.cluster ? ctx.fleet.names.filter((s) => ctx.fleet.config(s).concurrency === 1) : [],
    );
    this.overrunMs = new Map(ctx.fleet.names.map((s) => [s, ctx.fleet.config(s).timeout * 1000]));
    ctx.fleet.on("breaker", ({ state }) => {
      if (state !== "open") this.schedulePump();
    });
  }

  /**
   * Starts dispatching: operations left by a dead process are taken once their lease
   * expires. Resolves once the first pass has claimed what was due.
   */
  async start(): Promise<void> {
    if (this.running) return;
    const { store, fleet, config, owner, leaseMs, log } = this.ctx;
    this.running = true;
    const poll = setInterval(() => {
      this.orphansDue = true;
      this.schedulePump();
    }, config.dispatcher.poll_interval * 1000);
    const heartbeat = setInterval(() => void this.parts.leases.renew(), Math.max(leaseMs / 3, 50));
    poll.unref();
    heartbeat.unref();
    this.timers.push(poll, heartbeat);
    // Work another process made due (a task created through another instance) is looked
    // at on its announcement, not on the next poll.
    const names = new Set<string>(fleet.names);
    this.stopListening = store.onDue?.((server) => {
      if (server === "") this.schedulePump();
      else if (names.has(server)) this.schedulePump([server as ServerName]);
    });
    const { gone, rechecked } = await store.dispatchers.register(
      owner,
      processIdentity(),
      (p) => !stillRunning(p),
    );
    if (gone.length > 0) {
      log.warn(
        { runs: gone.length, operations: rechecked },
        "an earlier run did not stop cleanly; unfinished operations are looked up before they are created",
      );
    }
    for (const server of fleet.names) {
      const typical = percentile(await store.operations.recentDurations(server, typicalWindow), 0.5);
      if (typical !== undefined) this.typicalMs.set(server, typical);
    }
    await store.operations.releaseAllWaiting();
    this.schedulePump();
    // Started once the first pass (it begins on the immediate queued just before) is done.
    await new Promise((resolve) => setImmediate(resolve));
    await this.pumping;
  }

  /**
   * Stops taking work and lets in-flight operations finish until `deadlineMs`, then aborts
   * them (the shutdown signal) and gives them a second to notice.
   */
  async drain(deadlineMs: number): Promise<void> {
    this.draining = true;
    this.stopListening?.();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    const all = Promise.all([...this.inflight.values()].map((f) => f.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, deadlineMs)))]);
    clearTimeout(timer);
    if (this.inflight.size > 0) {
      this.ctx.shutdown.abort(new Error("shutting down"));
      await Promise.race([all, new Promise((r) => setTimeout(r, 1000))]);
    }
    this.running = false;
  }

  /** Shutting down: no new claims. */
  get stopping(): boolean {
    return this.draining;
  }

  /** Marks servers that may have due work, for the next pass. */
  markDue(servers: Iterable<ServerName>): void {
    for (const s of servers) this.mayHaveWork.add(s);
  }

  /** Schedules a dispatch pass; `servers` (all by default) may have new due work. */
  schedulePump(servers: Iterable<ServerName> = this.ctx.fleet.names): void {
    this.markDue(servers);
    if (!this.running || this.draining || this.pumpQueued) return;
    this.pumpQueued = true;
    const go = () => {
      this.pumpQueued = false;
      // A store that does not answer: logged once, and the poll tries again after a backoff.
      this.pumping = this.retries.dispatch.run(() => this.pump()).finally(() => (this.pumping = undefined));
    };
    setImmediate(() => (this.pumping ? void this.pumping.then(go) : go()));
  }

  /** A dispatch pass: parks the operations of servers that cannot be called, claims, runs. */
  private async pump(): Promise<void> {
    if (this.draining) return;
    await this.parkUnavailable();
    if (!this.plan()) return;
    await this.claiming(async (_tx, claims) => void (await claims.claimFreed()), "relaxed");
  }

  /**
   * Stores a new task through `write`, one atomic write of its own (one statement on
   * PostgreSQL, its own synced commit), with the operations planned here: those stored
   * claimed count against the limits from now on, and their calls are launched once it
   * returned, with the task as stored (nothing is read back).
   */
  async storeNew(
    taskId: string,
    write: (ops: NewOperationRow[]) => Promise<{ task: Task; claimed: Operation[] }>,
  ): Promise<void> {
    const ops = this.newOperations(taskId);
    // Not stored yet: held under keys of their own until the store gives them ids.
    const keys: number[] = [];
    for (const op of ops) {
      if (!op.lease || op.waitsFor.length > 0) continue;
      const key = -++this.plannedKeys;
      this.reserved.set(key, { server: op.server as ServerName, taskId });
      keys.push(key);
    }
    let stored: { task: Task; claimed: Operation[] };
    try {
      stored = await write(ops);
    } finally {
      for (const key of keys) this.reserved.delete(key);
    }
    // The store answers: a pass backing off after it did not is due at once, so the task's
    // servers that were not claimed here are claimed by the pass that follows.
    this.retries.dispatch.succeeded();
    this.launch(stored.claimed.map((op) => ({ op, task: stored.task })));
  }

  /**
   * Runs `fn` in one transaction whose claims are launched once it committed; until then
   * they count against the limits. `claims.claimFreed` claims what waits for the free
   * slots, with `also`, the operations the transaction stored claimed.
   */
  async claiming<T>(
    fn: (
      tx: StoreQueries,
      claims: { claimFreed(also?: readonly Operation[]): Promise<Claimed[]> },
    ) => Promise<T>,
    durability: "full" | "relaxed",
  ): Promise<T> {
    const claimed: Claimed[] = [];
    const reserved: number[] = [];
    const reserve = (key: number, server: string, taskId: string) => {
      this.reserved.set(key, { server: server as ServerName, taskId });
      reserved.push(key);
    };
    const claimsIn = (tx: StoreQueries) => ({
      claimFreed: async (also: readonly Operation[] = []) => {
        for (const op of also) reserve(op.id, op.server, op.taskId);
        const more = await this.claimForFreedSlots(tx, also);
        for (const { op } of more) if (!this.reserved.has(op.id)) reserve(op.id, op.server, op.taskId);
        claimed.push(...more);
        return more;
      },
    });
    let value: T;
    try {
      value = await this.ctx.store.transaction((tx) => {
        // A run again (the store retries a deadlock): the earlier run's claims rolled back.
        for (const key of reserved.splice(0)) this.reserved.delete(key);
        claimed.length = 0;
        return fn(tx, claimsIn(tx));
      }, durability);
    } finally {
      for (const key of reserved) this.reserved.delete(key);
    }
    this.launch(claimed);
    return value;
  }

  /** Parks the due operations of marked servers that cannot be called now. */
  private async parkUnavailable(): Promise<void> {
    for (const server of this.mayHaveWork) {
      const availability = this.ctx.fleet.availability(server);
      if (availability.ok) continue;
      // Parked until the server may be back; the poll (or its breaker closing) marks it again.
      // On a store other instances share, they stay due for them: this instance's view of
      // the server (its breaker, its connection) is its own.
      this.mayHaveWork.delete(server);
      const touched = await this.ctx.store.operations.parkServer(
        server,
        availability.reason,
        this.ctx.store.cluster ? null : availability.retryAt,
      );
      for (const taskId of touched) await this.parts.status.refresh(taskId);
    }
  }

  /** How much to claim from which marked servers, within the global and per-server limits. */
  private plan(): Plan | undefined {
    if (!this.running || this.draining) return undefined;
    const free = this.ctx.config.dispatcher.concurrency - this.calling();
    if (free <= 0) return undefined;
    const capacity = new Map<ServerName, number>();
    for (const server of this.mayHaveWork) {
      if (!this.ctx.fleet.availability(server).ok) continue;
      const cap = this.room(server);
      if (cap > 0) capacity.set(server, cap);
    }
    return capacity.size > 0 ? { capacity, free } : undefined;
  }

  /** Whether some server has more work due than room for it. */
  private backlogged(): boolean {
    for (const server of this.mayHaveWork) if (this.room(server) <= 0) return true;
    return false;
  }

  /** How many calls in flight (those the servers still have) match `which`. */
  private calling(which: (f: { server: ServerName; taskId: string }) => boolean = () => true): number {
    let n = 0;
    for (const f of this.inflight.values()) if (f.calling && which(f)) n += 1;
    for (const r of this.reserved.values()) if (which(r)) n += 1;
    return n;
  }

  /**
   * How many more a server may have claimed: a little ahead of its own concurrency, so the
   * next call waits in the server's queue instead of behind a claim when one finishes.
   */
  private room(server: ServerName): number {
    const busy = this.calling((f) => f.server === server);
    return this.ctx.fleet.config(server).concurrency * this.ctx.config.dispatcher.prefetch - busy;
  }

  /**
   * A new task's operations, each stored already claimed (with a lease) when its server has
   * room and nothing else due, so its call starts as soon as the caller has the id; the
   * others are claimed by the usual pass, in priority order behind what they already have.
   */
  private newOperations(taskId: string): NewOperationRow[] {
    const { fleet, config, owner, leaseMs, now, dependencies } = this.ctx;
    let free = this.running && !this.draining ? config.dispatcher.concurrency - this.calling() : 0;
    const lease = { owner, expiresAt: now() + leaseMs };
    return fleet.names.map((server) => {
      const waitsFor = dependencies.get(server) ?? [];
      // A serial server another instance may be calling waits for the claim, which knows.
      const direct =
        free > 0 &&
        waitsFor.length === 0 &&
        !this.serial.has(server) &&
        !this.mayHaveWork.has(server) &&
        fleet.availability(server).ok &&
        this.room(server) > 0;
      if (direct) free -= 1;
      else if (waitsFor.length === 0) this.mayHaveWork.add(server);
      return {
        server,
        priority: fleet.config(server).priority,
        waitsFor,
        idempotencyKey: `${taskId}:${server}:create`,
        ...(direct ? { lease } : {}),
      };
    });
  }

  /** Inside a transaction: claims what waits for the slots there are, with the operations' tasks. */
  private async claimForFreedSlots(tx: StoreQueries, also: readonly Operation[] = []): Promise<Claimed[]> {
    const plan = this.plan();
    return this.withTasks(tx, [...also, ...(plan ? await this.claimPlanned(tx, plan) : [])]);
  }

  /**
   * Inside the caller's transaction: claims what the plan allows. The claim is the record
   * that a call may reach its server; it shares the caller's commit (relaxed for a pass: it
   * survives a crash of this process, and if a power cut takes it, this run's row in
   * `dispatchers` makes the next start look up every unfinished operation before creating
   * it).
   */
  private async claimPlanned(tx: StoreQueries, { capacity, free }: Plan): Promise<Operation[]> {
    const orphans = this.orphansDue;
    this.orphansDue = false;
    const claimed = await tx.operations.claim({
      owner: this.ctx.owner,
      leaseMs: this.ctx.leaseMs,
      capacity,
      limit: free,
      orphans,
      serial: this.serial,
      overrunMs: this.overrunMs,
    });
    // A server whose claim came back short has nothing more due (unless the global limit cut it).
    if (claimed.length < free) {
      for (const [server, cap] of capacity) {
        if (claimed.filter((o) => o.server === server).length < cap) this.mayHaveWork.delete(server);
      }
    }
    return claimed;
  }

  /**
   * Inside the claim's transaction: each task with claimed operations becomes running and
   * is read once for all of them (the runs need it).
   */
  private async withTasks(tx: StoreQueries, claimed: readonly Operation[]): Promise<Claimed[]> {
    const tasks = new Map<string, Task | undefined>();
    const ids = [...new Set(claimed.map((o) => o.taskId))].sort();
    const read = new Map((await tx.tasks.getMany(ids)).map((t) => [t.id, t]));
    // In id order, as every transaction that updates several tasks does: none waits for another.
    for (const taskId of ids) {
      const task = read.get(taskId);
      // A running task stays running when more of its operations are claimed: nothing to
      // derive. Any other (pending, settled with a retry claimed, rolled back) is recomputed.
      const unchanged = task?.status === "running" && !task.rollbackReason && task.settledAt === null;
      tasks.set(taskId, unchanged ? task : (await this.parts.status.recompute(tx, taskId)).task);
    }
    return claimed.flatMap((op) => {
      const task = tasks.get(op.taskId);
      return task ? [{ op, task }] : [];
    });
  }

  /**
   * Runs claimed operations (their claim committed), counted in flight at once and started
   * on the next microtask, after the caller (createTask) has returned, the longest typical
   * call first. On shutdown, their leases are released for the next start.
   */
  private launch(claimed: readonly Claimed[]): void {
    const typical = (c: Claimed) => this.typicalMs.get(c.op.server as ServerName) ?? 0;
    // Equal (or unknown) call times: priority 1 first.
    const order = [...claimed].sort((a, b) => typical(b) - typical(a) || a.op.priority - b.op.priority);
    // The long calls (at least half the longest's typical time) go out first, the quick
    // ones on the next turn of the event loop: started together, the calls' promise chains
    // take turns step by step, and a long call's request would wait for every quick one's
    // preparation.
    const long = order.filter((c) => typical(c) >= typical(order[0]!) / 2).length;
    const rest = new Promise<void>((resolve) => (long < order.length ? setImmediate(resolve) : resolve()));
    order.forEach(({ op, task }, i) => {
      const lease = this.parts.leases.hold(op);
      const done = (i < long ? Promise.resolve() : rest)
        .then(() => (this.draining ? undefined : this.parts.runner.run(op, task, lease)))
        .catch((error: unknown) => {
          // Not expected (the runner records its outcomes through the retried commit queue);
          // if it happens, the claim's lease runs out and the operation is looked up and run again.
          this.ctx.log.error({ err: error, taskId: op.taskId, server: op.server }, "operation run failed");
        })
        .finally(() => {
          this.callEnded(lease);
          this.inflight.delete(lease);
          this.parts.leases.drop(lease);
        });
      this.inflight.set(lease, { server: op.server as ServerName, taskId: op.taskId, calling: true, done });
    });
  }

  /**
   * The server is done with an operation's call: its slot is free for the next claim. When
   * the outcome's commit follows (`commitFollows`), that commit claims for the slot in its own
   * transaction; the server is not idle meanwhile, as it has the prefetched call queued.
   */
  callEnded(lease: Lease, commitFollows = false): void {
    const entry = this.inflight.get(lease);
    if (!entry?.calling) return;
    entry.calling = false;
    if (!commitFollows && this.parts.commits.pending === 0) this.schedulePump([]);
  }

  /** A server answered after `ms`: its typical call time moves toward it. */
  answered(server: ServerName, ms: number): void {
    const typical = this.typicalMs.get(server);
    this.typicalMs.set(server, typical === undefined ? ms : typical + (ms - typical) / 8);
  }

  /**
   * What the commit rule needs to know about an outcome of `taskId` on `server`; each fact
   * is looked at only when the ones before leave the answer open (a hot path).
   */
  situation(taskId: string, server: ServerName): OutcomeSituation {
    const calling = (servers: readonly ServerName[] = this.ctx.fleet.names) =>
      this.calling((f) => f.taskId === taskId && servers.includes(f.server));
    // It releases a create that waits for this server (and for nothing else of the task
    // still being called) and could be called right away.
    const releases = (d: ServerName) =>
      !calling(this.ctx.dependencies.get(d)) && this.ctx.fleet.availability(d).ok && this.room(d) > 0;
    const backlogged = this.backlogged();
    const taskCallsInFlight = !backlogged && calling() > 0;
    return {
      backlogged,
      taskCallsInFlight,
      releasesCreate: taskCallsInFlight && (this.ctx.dependents.get(server) ?? []).some(releases),
    };
  }
}
