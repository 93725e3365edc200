import { createHash, randomBytes } from "node:crypto";
import { EventEmitter, setMaxListeners } from "node:events";
import type { Config, ServerName } from "../config/schema.js";
import { IdempotencyConflictError, TaskfanError, describeError } from "../errors.js";
import type { Fleet } from "../fleet/fleet.js";
import { processIdentity, stillRunning } from "../fleet/pid-files.js";
import { classify, mayHaveReachedServer } from "../fleet/policy.js";
import { percentile } from "../monitoring/health-rules.js";
import { dependencies, type CallTool, type CreateOutcome } from "../integrations/integration.js";
import type { Logger } from "../log.js";
import type { Store } from "../store/store.js";
import { blockedUntil, type OperationState } from "../store/operations.js";
import { asStoreError, StoreRetry, storeFault } from "../store/store-health.js";
import { commitDelay } from "./commit-rule.js";
import { deriveTaskStatus, isActive } from "./status.js";
import {
  newTaskId,
  validateNewTask,
  type NewTask,
  type Operation,
  type Task,
  type TaskView,
  type ValidTask,
} from "../domain/task.js";

export interface OperationEvent {
  taskId: string;
  operationId: number;
  server: string;
  attempt?: number;
  ms?: number;
  remoteId?: string | null;
  error?: string;
  retryable?: boolean;
}

export interface OrchestratorEvents {
  "operation.started": [OperationEvent];
  "operation.done": [OperationEvent];
  "operation.failed": [OperationEvent];
  "operation.waiting": [OperationEvent];
  "task.settled": [TaskView];
  "task.rolled_back": [{ taskId: string; reason: string }];
}

export interface OrchestratorOptions {
  store: Store;
  fleet: Fleet;
  config: Config;
  log: Logger;
  /** Lease owner name; unique per process by default. */
  owner?: string;
  now?: () => number;
}

class LeaseLostError extends TaskfanError {
  constructor() {
    super("another dispatcher took over this operation");
  }
}

type AttemptOutcome = CreateOutcome & { verified?: boolean };

/** A claimed operation and its task as read in the claim's transaction. */
interface Claimed {
  op: Operation;
  task: Task;
}

/** How many of a server's recent calls its typical call time starts from. */
const typicalWindow = 20;

/** What a task's recomputed status asks for once its transaction committed. */
interface TaskEffects {
  /** Servers whose operations waited on others and became due. */
  released: ServerName[];
  /** The task settled in this transaction. */
  settled: boolean;
}

/**
 * The core: makes a task durable, then dispatches its operations to the fleet with
 * leases, priorities and concurrency limits, and keeps the task's status.
 */
export class Orchestrator extends EventEmitter<OrchestratorEvents> {
  readonly owner: string;
  private readonly store: Store;
  private readonly fleet: Fleet;
  private readonly config: Config;
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly leaseMs: number;
  private readonly dependencies: Map<ServerName, ServerName[]>;
  /** Claimed operations until their outcome is written; `calling` while the server has the call. */
  private readonly inflight = new Map<
    number,
    { server: ServerName; taskId: string; calling: boolean; done: Promise<void> }
  >();
  /** For each server some other create waits for, the servers of those creates. */
  private readonly dependents = new Map<ServerName, ServerName[]>();
  private commitTimer: { timer: NodeJS.Timeout; due: number } | undefined;
  private commitImmediate: NodeJS.Immediate | undefined;
  private readonly abort = new AbortController();
  private readonly waiters = new Map<string, Array<(view: TaskView | undefined) => void>>();
  private readonly commits: Array<{
    taskId: string;
    write: () => unknown;
    resolve: (result: { value: unknown; effects?: TaskEffects }) => void;
    reject: (error: unknown) => void;
  }> = [];
  private running = false;
  /** Look for operations with an expired lease on the next pass (set by the poll). */
  private orphansDue = true;
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
  private stopping = false;
  private pumpQueued = false;
  private timers: NodeJS.Timeout[] = [];
  /**
   * What a store that does not answer does to each mechanism: logged once, backed off, tried
   * again. Outcomes that could not be committed stay queued (`commits`) until they can.
   */
  private readonly retries: Record<"dispatch" | "commit" | "leases" | "events", StoreRetry>;
  private commitRetryTimer: NodeJS.Timeout | undefined;

  constructor(options: OrchestratorOptions) {
    super();
    this.store = options.store;
    this.fleet = options.fleet;
    this.config = options.config;
    this.log = options.log.child({ component: "orchestrator" });
    this.now = options.now ?? Date.now;
    this.owner = options.owner ?? `${process.pid}-${randomBytes(4).toString("hex")}`;
    this.leaseMs = options.config.dispatcher.lease_seconds * 1000;
    this.dependencies = dependencies(
      this.fleet.names.map((name) => ({ name, required: this.fleet.config(name).required })),
      new Map(this.fleet.names.map((name) => [name, this.fleet.integration(name)])),
    );
    for (const [server, waitsFor] of this.dependencies) {
      for (const first of waitsFor)
        this.dependents.set(first, [...(this.dependents.get(first) ?? []), server]);
    }
    const retry = (what: string) => new StoreRetry(what, this.store.health, this.log, { now: this.now });
    this.retries = {
      dispatch: retry("dispatch"),
      commit: retry("outcome commit"),
      leases: retry("lease renewal"),
      events: retry("task events"),
    };
    // The store answers again: what waited for it goes now.
    this.store.health.on("change", (state) => {
      if (!state.ok || this.stopping) return;
      if (this.commits.length > 0) this.flushCommits(true);
      this.schedulePump();
    });
    // Every operation in flight listens to this signal (shutdown aborts them all).
    setMaxListeners(0, this.abort.signal);
    this.on("task.settled", (view) => {
      const waiting = this.waiters.get(view.task.id);
      if (!waiting) return;
      this.waiters.delete(view.task.id);
      for (const w of waiting) w(view);
    });
    this.fleet.on("breaker", ({ state }) => {
      if (state !== "open") this.schedulePump();
    });
  }

  /** Validates and stores the task and one pending operation per server: durable on return. */
  createTask(input: NewTask, opts: { idempotencyKey?: string } = {}): string {
    return this.submitTask(input, opts).id;
  }

  /**
   * `createTask`, saying whether this call created the task or found the one an earlier
   * call with the same idempotency key created. The same key with another task throws
   * IdempotencyConflictError; a store that does not answer, StoreUnavailableError (and
   * nothing was created).
   */
  submitTask(input: NewTask, opts: { idempotencyKey?: string } = {}): { id: string; created: boolean } {
    const key = opts.idempotencyKey ?? null;
    try {
      const existing = key ? this.existingFor(key, input) : undefined;
      if (existing) return { id: existing, created: false };
      const valid = validateNewTask(input, this.now());
      const id = this.insertTask(valid, key);
      return { id, created: true };
    } catch (error) {
      // Two requests with one key raced: the other one won, and its task is the answer.
      const raced = key && /^SQLITE_CONSTRAINT/.test(String((error as { code?: unknown }).code));
      const existing = raced ? this.existingFor(key, input) : undefined;
      if (existing) return { id: existing, created: false };
      throw asStoreError(error);
    }
  }

  /** The task an idempotency key already made, if the request is the same; else a conflict. */
  private existingFor(key: string, input: NewTask): string | undefined {
    const existing = this.store.tasks.getByIdempotencyKey(key);
    if (!existing) return undefined;
    // Rows from before the hash was kept compare as equal.
    if (existing.hash !== null && existing.hash !== requestHash(input)) {
      throw new IdempotencyConflictError(key);
    }
    return existing.id;
  }

  private insertTask(valid: ValidTask, key: string | null): string {
    const id = newTaskId();
    // A server with room and nothing else due takes its operation as it is stored (claimed
    // in the commit that stores the task); the others' are claimed by the usual pass, in
    // priority order behind what they already have. Either way a claimed call starts as
    // soon as the caller has the id.
    let free = this.running && !this.stopping ? this.config.dispatcher.concurrency - this.calling() : 0;
    const lease = { owner: this.owner, expiresAt: this.now() + this.leaseMs };
    const ops = this.fleet.names.map((server) => {
      const waitsFor = this.dependencies.get(server) ?? [];
      const direct =
        free > 0 &&
        waitsFor.length === 0 &&
        !this.mayHaveWork.has(server) &&
        this.fleet.availability(server).ok &&
        this.room(server) > 0;
      if (direct) free -= 1;
      else if (waitsFor.length === 0) this.mayHaveWork.add(server);
      return {
        server,
        priority: this.fleet.config(server).priority,
        waitsFor,
        idempotencyKey: `${id}:${server}:create`,
        ...(direct ? { lease } : {}),
      };
    });
    const plan = this.plan();
    let claimed: Claimed[];
    try {
      claimed = this.store.transaction(() => {
        const direct = this.store.tasks.insertWithOperations(
          id,
          valid,
          key === null ? null : { key, hash: requestHash(valid) },
          ops,
        );
        this.store.events.append("task.created", { taskId: id }, { servers: ops.length });
        return this.withTasks([...direct, ...(plan ? this.claimPlanned(plan) : [])]);
      });
    } catch (error) {
      // Nothing was stored: the servers marked above are looked at again by the next pass.
      this.schedulePump();
      throw error;
    }
    this.log.info({ taskId: id, servers: ops.length }, "task created");
    this.launch(claimed);
    this.schedulePump([]);
    return id;
  }

  getTask(id: string): TaskView | undefined {
    const task = this.store.tasks.get(id);
    return task ? { task, operations: this.store.operations.forTask(id) } : undefined;
  }

  /** Re-drives a task's failed operations. Returns how many were queued. */
  retryFailed(id: string): number {
    const { n, effects } = this.store.transaction(() => {
      const n = this.store.operations.requeueFailed(id);
      return { n, effects: n > 0 ? this.recompute(id) : undefined };
    });
    if (effects) this.afterRecompute(id, effects);
    if (n > 0) this.schedulePump();
    return n;
  }

  /** Resolves when the task has settled, or with its current state after `timeoutMs`. */
  waitForSettled(id: string, timeoutMs: number): Promise<TaskView | undefined> {
    return new Promise((resolve, reject) => {
      // The task row says whether it has settled (its status is kept with its operations'):
      // its operations are read only for the answer.
      const task = this.store.tasks.get(id);
      if (!task || task.settledAt !== null) {
        resolve(task ? this.getTask(id) : undefined);
        return;
      }
      // One listener serves every waiter (thousands of them during a bulk run).
      const waiters = this.waiters.get(id) ?? [];
      const waiter = (v: TaskView | undefined) => {
        clearTimeout(timer);
        resolve(v);
      };
      const timer = setTimeout(() => {
        const left = (this.waiters.get(id) ?? []).filter((w) => w !== waiter);
        if (left.length > 0) this.waiters.set(id, left);
        else this.waiters.delete(id);
        try {
          resolve(this.getTask(id));
        } catch (error) {
          reject(asStoreError(error));
        }
      }, timeoutMs);
      waiters.push(waiter);
      this.waiters.set(id, waiters);
    });
  }

  /** Starts dispatching: operations left by a dead process are taken once their lease expires. */
  start(): void {
    if (this.running) return;
    this.running = true;
    const poll = setInterval(() => {
      this.orphansDue = true;
      this.schedulePump();
    }, this.config.dispatcher.poll_interval * 1000);
    const heartbeat = setInterval(
      () => {
        if (this.inflight.size > 0)
          this.retries.leases.run(() => this.store.operations.renewLeases(this.owner, this.leaseMs));
      },
      Math.max(this.leaseMs / 3, 50),
    );
    poll.unref();
    heartbeat.unref();
    this.timers.push(poll, heartbeat);
    const { gone, rechecked } = this.store.dispatchers.register(
      this.owner,
      processIdentity(),
      (p) => !stillRunning(p),
    );
    if (gone.length > 0) {
      this.log.warn(
        { runs: gone.length, operations: rechecked },
        "an earlier run did not stop cleanly; unfinished operations are looked up before they are created",
      );
    }
    for (const server of this.fleet.names) {
      const typical = percentile(this.store.operations.recentDurations(server, typicalWindow), 0.5);
      if (typical !== undefined) this.typicalMs.set(server, typical);
    }
    this.store.operations.releaseAllWaiting();
    this.schedulePump();
  }

  /**
   * Stops taking work, lets in-flight operations finish until `deadlineMs`, then aborts
   * them; whatever is still running goes back to pending for the next start.
   */
  async stop(deadlineMs = 10_000): Promise<void> {
    this.stopping = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    clearTimeout(this.commitRetryTimer);
    const all = Promise.all([...this.inflight.values()].map((f) => f.done));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise((r) => (timer = setTimeout(r, deadlineMs)))]);
    clearTimeout(timer);
    if (this.inflight.size > 0) {
      this.abort.abort(new Error("shutting down"));
      await Promise.race([all, new Promise((r) => setTimeout(r, 1000))]);
    }
    try {
      this.flushCommits(true);
      if (this.commits.length > 0) throw new Error(`${this.commits.length} outcomes could not be committed`);
      const released = this.store.operations.release(this.owner);
      if (released > 0) this.log.info({ released }, "unfinished operations returned to pending");
      this.store.dispatchers.unregister(this.owner);
    } catch (error) {
      // This run's row stays: the next start looks up every unfinished operation on its
      // server before creating it, so what was not recorded is neither lost nor made twice.
      this.log.error(
        { err: error, code: storeFault(error)?.code },
        "could not record the last outcomes; the next start looks them up on their servers",
      );
    }
    this.running = false;
  }

  /** Schedules a dispatch pass; `servers` (all by default) may have new due work. */
  private schedulePump(servers: Iterable<ServerName> = this.fleet.names): void {
    for (const s of servers) this.mayHaveWork.add(s);
    if (!this.running || this.stopping || this.pumpQueued) return;
    this.pumpQueued = true;
    setImmediate(() => {
      this.pumpQueued = false;
      // A store that does not answer: logged once, and the poll tries again after a backoff.
      this.retries.dispatch.run(() => this.pump());
    });
  }

  /** A dispatch pass: parks the operations of servers that cannot be called, claims, runs. */
  private pump(): void {
    if (this.stopping) return;
    this.parkUnavailable();
    const plan = this.plan();
    if (!plan) return;
    this.launch(this.store.transaction(() => this.withTasks(this.claimPlanned(plan)), "relaxed"));
  }

  /** Parks the due operations of marked servers that cannot be called now. */
  private parkUnavailable(): void {
    for (const server of this.mayHaveWork) {
      const availability = this.fleet.availability(server);
      if (availability.ok) continue;
      // Parked until the server may be back; the poll (or its breaker closing) marks it again.
      this.mayHaveWork.delete(server);
      const touched = this.store.operations.parkServer(server, availability.reason, availability.retryAt);
      for (const taskId of touched) this.refreshTask(taskId);
    }
  }

  /** How much to claim from which marked servers, within the global and per-server limits. */
  private plan(): { capacity: Map<ServerName, number>; free: number } | undefined {
    if (!this.running || this.stopping) return undefined;
    const free = this.config.dispatcher.concurrency - this.calling();
    if (free <= 0) return undefined;
    const capacity = new Map<ServerName, number>();
    for (const server of this.mayHaveWork) {
      if (!this.fleet.availability(server).ok) continue;
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
    return n;
  }

  /**
   * How many more a server may have claimed: a little ahead of its own concurrency, so the
   * next call waits in the server's queue instead of behind a claim when one finishes.
   */
  private room(server: ServerName): number {
    const busy = this.calling((f) => f.server === server);
    return this.fleet.config(server).concurrency * this.config.dispatcher.prefetch - busy;
  }

  /**
   * Inside the caller's transaction: claims what the plan allows. The claim is the record
   * that a call may reach its server; it shares the caller's commit (relaxed for a pass: it
   * survives a crash of this process, and if a power cut takes it, this run's row in
   * `dispatchers` makes the next start look up every unfinished operation before creating
   * it).
   */
  private claimPlanned({ capacity, free }: { capacity: Map<ServerName, number>; free: number }): Operation[] {
    const orphans = this.orphansDue;
    this.orphansDue = false;
    const claimed = this.store.operations.claim({
      owner: this.owner,
      leaseMs: this.leaseMs,
      capacity,
      limit: free,
      orphans,
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
  private withTasks(claimed: readonly Operation[]): Claimed[] {
    const tasks = new Map<string, Task | undefined>();
    for (const taskId of new Set(claimed.map((o) => o.taskId))) {
      const task = this.store.tasks.get(taskId);
      // A running task stays running when more of its operations are claimed: nothing to
      // derive. Any other (pending, settled with a retry claimed, rolled back) is recomputed.
      const unchanged = task?.status === "running" && !task.rollbackReason && task.settledAt === null;
      tasks.set(taskId, unchanged ? task : this.recompute(taskId, false, task).task);
    }
    return claimed.flatMap((op) => {
      const task = tasks.get(op.taskId);
      return task ? [{ op, task }] : [];
    });
  }

  /**
   * Runs claimed operations (their claim committed), counted in flight at once and started
   * on the next microtask, after the caller (createTask) has returned, the longest typical
   * call first. On shutdown, stop() returns them to pending.
   */
  private launch(claimed: readonly Claimed[]): void {
    const typical = (c: Claimed) => this.typicalMs.get(c.op.server as ServerName) ?? 0;
    // Stable: servers of equal (or unknown) call time keep the claim's priority order.
    const order = [...claimed].sort((a, b) => typical(b) - typical(a));
    // The long calls (at least half the longest's typical time) go out first, the quick
    // ones on the next turn of the event loop: started together, the calls' promise chains
    // take turns step by step, and a long call's request would wait for every quick one's
    // preparation.
    const long = order.filter((c) => typical(c) >= typical(order[0]!) / 2).length;
    const rest = new Promise<void>((resolve) => (long < order.length ? setImmediate(resolve) : resolve()));
    order.forEach(({ op, task }, i) => {
      const done = (i < long ? Promise.resolve() : rest)
        .then(() => (this.stopping ? undefined : this.run(op, task)))
        .catch((error: unknown) => {
          // Not expected (run() records its outcomes through the retried commit queue); if it
          // happens, the claim's lease runs out and the operation is looked up and run again.
          this.log.error({ err: error, taskId: op.taskId, server: op.server }, "operation run failed");
        })
        .finally(() => {
          this.callEnded(op);
          this.inflight.delete(op.id);
        });
      this.inflight.set(op.id, { server: op.server as ServerName, taskId: op.taskId, calling: true, done });
    });
  }

  /**
   * The server is done with an operation's call: its slot is free for the next claim. When
   * the outcome's commit follows (`commitFollows`), that commit claims for the slot in its own
   * transaction; the server is not idle meanwhile, as it has the prefetched call queued.
   */
  private callEnded(op: Operation, commitFollows = false): void {
    const entry = this.inflight.get(op.id);
    if (!entry?.calling) return;
    entry.calling = false;
    if (!commitFollows && this.commits.length === 0) this.schedulePump([]);
  }

  private async run(op: Operation, task: Task): Promise<void> {
    const server = op.server as ServerName;
    // Every line about this operation names it (bindings, not a child logger per operation).
    const at = { taskId: op.taskId, server, operationId: op.id };
    this.emit("operation.started", {
      taskId: op.taskId,
      operationId: op.id,
      server,
      attempt: op.attempts,
    });
    const integration = this.fleet.integration(server);
    let recheck = op.recheck;
    const started = performance.now();
    try {
      const outcome = await this.fleet.execute<AttemptOutcome>(
        server,
        async ({ call, signal, attempt }) => {
          // The claim counted the first attempt; a retry is counted (and the lease checked) here.
          // While the store does not answer, the retry goes uncounted rather than failing.
          if (attempt > 1) {
            const counted = this.retries.events.run(() =>
              this.store.operations.startAttempt(op.id, this.owner),
            );
            if (counted === false) throw new LeaseLostError();
          }
          if (op.kind === "compensate") {
            // Undo: look first when an earlier attempt may have done it already.
            if ((recheck || attempt > 1) && (await this.alreadyUndone(op, task, call, signal))) {
              return { remoteId: op.remoteId ?? "", verified: true };
            }
            try {
              await integration.compensate(task, op.remoteId ?? "", call, signal);
            } catch (error) {
              if (mayHaveReachedServer(error)) recheck = true;
              throw error;
            }
            return { remoteId: op.remoteId ?? "" };
          }
          if (recheck || attempt > 1) {
            const found = await integration.verify(task, op.remoteId, call, signal);
            if (found.found) return { remoteId: found.remoteId, verified: true };
          }
          try {
            return await integration.create(task, call, signal);
          } catch (error) {
            if (mayHaveReachedServer(error)) recheck = true;
            throw error;
          }
        },
        this.abort.signal,
      );
      const ms = performance.now() - started;
      const skipped = "skipped" in outcome;
      const remoteId = skipped ? null : outcome.remoteId;
      this.callEnded(op, true);
      const typical = this.typicalMs.get(server);
      this.typicalMs.set(server, typical === undefined ? ms : typical + (ms - typical) / 8);
      // Outcomes that arrive together share one commit with the task statuses they change.
      const { value, effects } = await this.commit(op.taskId, server, () => {
        const ok = this.store.operations.finish(op.id, this.owner, {
          status: skipped ? "skipped" : "done",
          remoteId,
          note: skipped ? outcome.skipped : undefined,
          durationMs: ms,
        });
        if (ok) {
          this.store.events.append(
            "operation.done",
            { taskId: op.taskId, operationId: op.id },
            {
              server,
              ms: Math.round(ms),
              remoteId,
              ...(skipped ? { skipped: outcome.skipped } : {}),
              ...(outcome.verified ? { verified: true } : {}),
            },
          );
        }
        return { ok, create: ok && op.kind === "create" };
      });
      if (value.ok) {
        this.log.info(
          { ...at, ms: Math.round(ms), remoteId, verified: outcome.verified ?? false },
          skipped ? "operation skipped" : "operation done",
        );
        this.emit("operation.done", { taskId: op.taskId, operationId: op.id, server, ms, remoteId });
      }
      if (effects) this.afterRecompute(op.taskId, effects);
      return;
    } catch (error) {
      const ms = performance.now() - started;
      if (error instanceof LeaseLostError) {
        this.log.warn(at, "lease lost; leaving the operation to its new owner");
        return;
      }
      const message = describeError(error);
      const advice = classify(error);
      // Not called (its circuit is open, its server down), or a transient failure that opened
      // the circuit: wait for the server.
      const waitForServer =
        advice.retry === "later" || (advice.retry === "now" && this.fleet.breakerState(server) === "open");
      const shuttingDown = this.abort.signal.aborted;
      if (shuttingDown) {
        this.log.info(at, "operation interrupted by shutdown");
        return; // stop() returns it to pending
      }
      if (waitForServer) {
        const availability = this.fleet.availability(server);
        const retryAt = availability.ok ? this.now() + 1000 : availability.retryAt;
        const reason = availability.ok ? message : availability.reason;
        const { value, effects } = await this.commit(op.taskId, server, () => {
          const ok = this.store.operations.park(op.id, this.owner, {
            reason,
            until: retryAt,
            durationMs: ms,
            recheck,
          });
          if (ok) {
            this.store.events.append(
              "operation.waiting",
              { taskId: op.taskId, operationId: op.id },
              { server, reason },
            );
          }
          return { ok, create: false };
        });
        this.log.warn({ ...at, reason }, "operation waits for its server");
        if (value.ok) {
          this.emit("operation.waiting", { taskId: op.taskId, operationId: op.id, server, error: reason });
        }
        if (effects) this.afterRecompute(op.taskId, effects);
        return;
      }
      const retryable = advice.retry === "now";
      const { value, effects } = await this.commit(op.taskId, server, () => {
        const ok = this.store.operations.fail(op.id, this.owner, {
          error: message,
          retryable,
          durationMs: ms,
          recheck,
          recoverAt: retryable ? this.now() + this.config.recovery.delay * 1000 : undefined,
        });
        if (!ok) return { ok, create: false };
        this.store.events.append(
          "operation.failed",
          { taskId: op.taskId, operationId: op.id },
          { server, error: message, retryable },
        );
        // A required server's "no" rolls the task back, in the same commit.
        return { ok, create: false, rolledBack: retryable ? undefined : this.rollbackRows(op.taskId) };
      });
      this.log.warn({ ...at, err: error, retryable }, "operation failed");
      if (value.ok) {
        this.emit("operation.failed", {
          taskId: op.taskId,
          operationId: op.id,
          server,
          ms,
          error: message,
          retryable,
        });
      }
      if (value.rolledBack) this.afterRollback(op.taskId, value.rolledBack);
      if (effects) this.afterRecompute(op.taskId, effects);
    }
  }

  /**
   * Rolls the task back when one of its required servers has failed for good (a tool's
   * "no", or given up after `recovery.give_up_after`). Returns whether it rolled it back
   * now (false when there was nothing to do or it already had been).
   */
  rollbackIfRequiredFailed(taskId: string): boolean {
    const reason = this.store.transaction(() => this.rollbackRows(taskId));
    if (reason === undefined) return false;
    this.afterRollback(taskId, reason);
    this.refreshTask(taskId);
    return true;
  }

  /**
   * Inside the caller's transaction: when a required server's create failed for good, marks
   * the task rolled back, skips its unfinished creates and adds a compensation for each
   * create that succeeded. Returns the reason when it rolled the task back now.
   */
  private rollbackRows(taskId: string): string | undefined {
    const failed = this.store.operations
      .forTask(taskId)
      .find(
        (o) =>
          o.kind === "create" &&
          o.status === "failed" &&
          !o.retryable &&
          this.fleet.config(o.server as ServerName).required,
      );
    if (!failed) return undefined;
    const reason = `${failed.server} failed for good: ${failed.lastError}`;
    if (!this.store.tasks.markRolledBack(taskId, reason)) return undefined;
    const n = this.store.operations.rollback(taskId);
    this.store.events.append("task.rolled_back", { taskId }, { reason, compensations: n });
    return reason;
  }

  /** Once a rollback committed: say so, and run its compensations. */
  private afterRollback(taskId: string, reason: string): void {
    this.log.warn({ taskId, reason }, "task rolled back");
    this.emit("task.rolled_back", { taskId, reason });
    this.schedulePump();
  }

  /** Whether an earlier attempt already undid this record. */
  private async alreadyUndone(
    op: Operation,
    task: Task,
    call: CallTool,
    signal: AbortSignal,
  ): Promise<boolean> {
    const integration = this.fleet.integration(op.server as ServerName);
    if (integration.isUndone) return integration.isUndone(task, op.remoteId ?? "", call, signal);
    const found = await integration.verify(task, op.remoteId, call, signal);
    return !found.found;
  }

  /**
   * Group commit: outcomes queued together go to SQLite in one transaction, with the status
   * of each task they touch. An outcome that may settle its task or release a waiting create
   * is written on the next turn of the event loop; one that can do neither waits (see
   * `commitDelay`) for company, so a task's ten outcomes take a few commits, not ten.
   * Each caller gets its own write's result; the last caller of each task also gets that
   * task's effects, so its listeners hear of every operation before they hear the task
   * settled.
   *
   * The commit is relaxed (no fsync): if a power cut takes it, the operations are still
   * claimed (running, lease expiring) and the next claim looks on the server before
   * creating again, so nothing is lost or made twice.
   */
  private commit<T>(
    taskId: string,
    server: ServerName,
    write: () => T,
  ): Promise<{ value: T; effects?: TaskEffects }> {
    return new Promise((resolve, reject) => {
      this.commits.push({
        taskId,
        write,
        resolve: resolve as (result: { value: unknown; effects?: TaskEffects }) => void,
        reject,
      });
      // At once when it may settle its task, or release a create that waits for this server
      // (and for nothing else of the task still being called) and could be called right
      // away. Otherwise, and whenever work queues behind full servers (a few ms more then go
      // unnoticed), it waits a little for others to share the commit.
      const calling = (servers: readonly ServerName[] = this.fleet.names) =>
        this.calling((f) => f.taskId === taskId && servers.includes(f.server));
      const releases = (d: ServerName) =>
        !calling(this.dependencies.get(d)) && this.fleet.availability(d).ok && this.room(d) > 0;
      // Each fact is looked at only when the ones before leave the answer open (a hot path).
      const backlogged = this.backlogged();
      const taskCallsInFlight = !backlogged && calling() > 0;
      const delay = commitDelay({
        backlogged,
        taskCallsInFlight,
        releasesCreate: taskCallsInFlight && (this.dependents.get(server) ?? []).some(releases),
      });
      if (delay === 0) this.commitImmediate ??= setImmediate(() => this.flushCommits());
      else if (!this.commitImmediate) {
        const due = performance.now() + delay;
        if (!this.commitTimer || this.commitTimer.due > due) {
          clearTimeout(this.commitTimer?.timer);
          this.commitTimer = { timer: setTimeout(() => this.flushCommits(), delay), due };
        }
      }
    });
  }

  /**
   * Writes the queued outcomes. When the store does not answer they stay queued, in order,
   * and are tried again after a backoff, or as soon as the store answers (`force`).
   */
  private flushCommits(force = false): void {
    clearTimeout(this.commitTimer?.timer);
    clearImmediate(this.commitImmediate);
    this.commitTimer = undefined;
    this.commitImmediate = undefined;
    if (!force && !this.retries.commit.due) return; // the retry timer flushes them
    clearTimeout(this.commitRetryTimer);
    const batch = this.commits.splice(0);
    if (batch.length === 0) return;
    try {
      const { values, effects, claimed } = this.store.transaction(() => {
        const values = batch.map((c) => c.write());
        // A create that finished after its task was rolled back is undone as well.
        const created = new Set(
          batch.filter((_, i) => (values[i] as { create?: boolean }).create).map((c) => c.taskId),
        );
        const effects = new Map<string, TaskEffects>();
        for (const c of batch) {
          if (!effects.has(c.taskId)) effects.set(c.taskId, this.recompute(c.taskId, created.has(c.taskId)));
        }
        // What these outcomes released, and what waits for the slots their calls freed, is
        // claimed in the same commit.
        for (const e of effects.values()) {
          for (const server of e.released) this.mayHaveWork.add(server);
          e.released = [];
        }
        const plan = this.plan();
        return { values, effects, claimed: plan ? this.withTasks(this.claimPlanned(plan)) : [] };
      }, "relaxed");
      this.retries.commit.succeeded();
      this.launch(claimed);
      // Whatever the limits left is taken by the next pass.
      this.schedulePump([]);
      const last = new Map(batch.map((c, i) => [c.taskId, i]));
      batch.forEach((c, i) =>
        c.resolve({
          value: values[i],
          ...(last.get(c.taskId) === i ? { effects: effects.get(c.taskId)! } : {}),
        }),
      );
    } catch (error) {
      if (storeFault(error)) {
        // Kept, ahead of whatever came since; the calls were made, only their record waits.
        this.commits.unshift(...batch);
        const delay = this.retries.commit.failed(error);
        if (!this.stopping) this.commitRetryTimer = setTimeout(() => this.flushCommits(), delay);
        return;
      }
      for (const c of batch) c.reject(error);
      // Its claims rolled back with it: look at every server again.
      this.schedulePump();
    }
  }

  /** Pulls due work now (recovery and sync call this after they requeue operations). */
  wake(): void {
    this.schedulePump();
  }

  /** Recomputes a task's status from its operations; emits task.settled on a change. */
  refreshTask(taskId: string): void {
    this.afterRecompute(
      taskId,
      this.store.transaction(() => this.recompute(taskId)),
    );
  }

  /**
   * Inside the caller's transaction: undoes creates that finished after the task was rolled
   * back (`created`: one just did), releases the task's operations whose wait is over and
   * stores its status as derived from its operations.
   */
  private recompute(
    taskId: string,
    created = false,
    task = this.store.tasks.get(taskId),
  ): TaskEffects & { task?: Task } {
    if (!task) return { released: [], settled: false };
    const undo = created && task.rollbackReason ? this.store.operations.rollback(taskId) : 0;
    const operations = this.store.operations.statesOf(taskId);
    const released = waitIsOver(operations)
      ? (this.store.operations.releaseWaiting(taskId) as ServerName[])
      : [];
    // Compensations are due at once, on the servers that had the record.
    if (undo > 0)
      released.push(...operations.filter((o) => o.kind === "compensate").map((o) => o.server as ServerName));
    const derived = deriveTaskStatus(operations, task.rollbackReason);
    if (
      derived.status === task.status &&
      derived.reason === task.statusReason &&
      derived.settled === (task.settledAt !== null)
    ) {
      return { released, settled: false, task };
    }
    const at = this.store.tasks.setStatus(taskId, derived.status, derived.reason, derived.settled);
    if (derived.settled) {
      this.store.events.append(
        "task.settled",
        { taskId },
        { status: derived.status, reason: derived.reason },
      );
    }
    return {
      released,
      settled: derived.settled,
      task: {
        ...task,
        status: derived.status,
        statusReason: derived.reason,
        updatedAt: at,
        settledAt: derived.settled ? at : null,
      },
    };
  }

  private afterRecompute(taskId: string, effects: TaskEffects): void {
    if (effects.released.length > 0) this.schedulePump(effects.released);
    if (!effects.settled) return;
    let view: TaskView | undefined;
    try {
      view = this.getTask(taskId);
      this.retries.events.succeeded();
    } catch (error) {
      // The task settled and that is stored; only the event is lost (waiters read it themselves).
      this.retries.events.failed(error);
    }
    if (!view) return;
    this.log.info({ taskId, status: view.task.status, reason: view.task.statusReason }, "task settled");
    this.emit("task.settled", view);
  }
}

/**
 * What an idempotency key's request is compared by: the task as validated (apart from the
 * deadline being in the future, which a retry may no longer be), so "Buy milk " and
 * "Buy milk" are one request and another title is another.
 */
function requestHash(input: NewTask | ValidTask): string {
  const valid = validateNewTask(input, 0);
  return createHash("sha256")
    .update(JSON.stringify([valid.title, valid.description, valid.priority, valid.deadline, valid.tags]))
    .digest("hex");
}

/** Whether one of these operations of a task is blocked on others that are no longer active. */
function waitIsOver(operations: readonly OperationState[]): boolean {
  return operations.some(
    (o) =>
      o.status === "pending" &&
      o.nextAttemptAt === blockedUntil &&
      o.waitsFor.every((server) =>
        operations.every((p) => p.server !== server || p.kind !== o.kind || !isActive(p)),
      ),
  );
}
