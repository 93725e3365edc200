import { createHash, randomBytes } from "node:crypto";
import { EventEmitter, setMaxListeners } from "node:events";
import type { Config, ServerName } from "../config/schema.js";
import { newTaskId, validateNewTask, type NewTask, type TaskView, type ValidTask } from "../domain/task.js";
import { IdempotencyConflictError } from "../errors.js";
import type { Fleet } from "../fleet/fleet.js";
import { dependencies } from "../integrations/integration.js";
import type { Logger } from "../log.js";
import { asStoreError, StoreRetry, storeFault } from "../store/store-health.js";
import type { Store } from "../store/store.js";
import { CommitQueue } from "./commit-queue.js";
import type { OrchestratorContext, OrchestratorEvents, Parts } from "./context.js";
import { Dispatcher } from "./dispatcher.js";
import { Leases } from "./leases.js";
import { OperationRunner } from "./operation-runner.js";
import { TaskStatus } from "./task-status.js";

export type { OperationEvent, OrchestratorEvents } from "./context.js";

export interface OrchestratorOptions {
  store: Store;
  fleet: Fleet;
  config: Config;
  log: Logger;
  /** Lease owner name; unique per process by default. */
  owner?: string;
  now?: () => number;
}

/**
 * The core's front: makes a task durable and answers for it (create, get, retry, wait,
 * roll back), over four parts: the Dispatcher (claim with leases, launch), the
 * OperationRunner (run one operation, look before running again, record its outcome), the
 * CommitQueue (group commit) and TaskStatus (a task's status kept with its operations).
 * Its events say what happens to tasks and operations.
 */
export class Orchestrator extends EventEmitter<OrchestratorEvents> {
  readonly owner: string;
  private readonly ctx: OrchestratorContext;
  private readonly parts: Parts;
  private readonly waiters = new Map<string, Array<(view: TaskView | undefined) => void>>();

  constructor(options: OrchestratorOptions) {
    super();
    const { store, fleet } = options;
    const log = options.log.child({ component: "orchestrator" });
    const now = options.now ?? Date.now;
    this.owner = options.owner ?? `${process.pid}-${randomBytes(4).toString("hex")}`;
    const waitsFor = dependencies(
      fleet.names.map((name) => ({ name, required: fleet.config(name).required })),
      new Map(fleet.names.map((name) => [name, fleet.integration(name)])),
    );
    const dependents = new Map<ServerName, ServerName[]>();
    for (const [server, firsts] of waitsFor) {
      for (const first of firsts) dependents.set(first, [...(dependents.get(first) ?? []), server]);
    }
    this.ctx = {
      store,
      fleet,
      config: options.config,
      log,
      now,
      owner: this.owner,
      leaseMs: options.config.dispatcher.lease_seconds * 1000,
      dependencies: waitsFor,
      dependents,
      events: this,
      shutdown: new AbortController(),
      retry: (what) => new StoreRetry(what, store.health, log, { now }),
    };
    // Every operation in flight listens to this signal (shutdown aborts them all).
    setMaxListeners(0, this.ctx.shutdown.signal);
    const parts = {} as Parts;
    parts.status = new TaskStatus(this.ctx, parts);
    parts.commits = new CommitQueue(this.ctx, parts);
    parts.leases = new Leases(this.ctx);
    parts.dispatcher = new Dispatcher(this.ctx, parts);
    parts.runner = new OperationRunner(this.ctx, parts);
    this.parts = parts;
    // The store answers again: what waited for it goes now.
    store.health.on("change", (state) => {
      if (!state.ok || parts.dispatcher.stopping) return;
      if (parts.commits.pending > 0) parts.commits.flush(true);
      parts.dispatcher.schedulePump();
    });
    this.on("task.settled", (view) => {
      const waiting = this.waiters.get(view.task.id);
      if (!waiting) return;
      this.waiters.delete(view.task.id);
      for (const w of waiting) w(view);
    });
  }

  /** Validates and stores the task and one pending operation per server: durable on return. */
  async createTask(input: NewTask, opts: { idempotencyKey?: string } = {}): Promise<string> {
    return (await this.submitTask(input, opts)).id;
  }

  /**
   * `createTask`, saying whether this call created the task or found the one an earlier
   * call with the same idempotency key created. The same key with another task throws
   * IdempotencyConflictError; a store that does not answer, StoreUnavailableError (and
   * nothing was created).
   */
  async submitTask(
    input: NewTask,
    opts: { idempotencyKey?: string } = {},
  ): Promise<{ id: string; created: boolean }> {
    const key = opts.idempotencyKey ?? null;
    try {
      const existing = key ? await this.existingFor(key, input) : undefined;
      if (existing) return { id: existing, created: false };
      const valid = validateNewTask(input, this.ctx.now());
      const id = await this.insertTask(valid, key);
      return { id, created: true };
    } catch (error) {
      // Two requests with one key raced: the other one won, and its task is the answer.
      const raced = key && uniqueViolation(error);
      const existing = raced ? await this.existingFor(key, input) : undefined;
      if (existing) return { id: existing, created: false };
      throw asStoreError(error);
    }
  }

  /** The task an idempotency key already made, if the request is the same; else a conflict. */
  private async existingFor(key: string, input: NewTask): Promise<string | undefined> {
    const existing = await this.ctx.store.tasks.getByIdempotencyKey(key);
    if (!existing) return undefined;
    // Rows from before the hash was kept compare as equal.
    if (existing.hash !== null && existing.hash !== requestHash(input)) {
      throw new IdempotencyConflictError(key);
    }
    return existing.id;
  }

  /**
   * The task and its operations in one synced commit, with the claims of the servers that
   * have room: their calls start as soon as the caller has the id.
   */
  private async insertTask(valid: ValidTask, key: string | null): Promise<string> {
    const { log } = this.ctx;
    const { dispatcher } = this.parts;
    const id = newTaskId();
    const servers = this.ctx.fleet.names.length;
    try {
      await dispatcher.claiming(async (tx, claims) => {
        const ops = claims.newOperations(id);
        const direct = await tx.tasks.insertWithOperations(
          id,
          valid,
          key === null ? null : { key, hash: requestHash(valid) },
          ops,
        );
        await tx.events.append("task.created", { taskId: id }, { servers: ops.length });
        await claims.claimFreed(direct);
      }, "full");
    } catch (error) {
      // Nothing was stored: the servers marked above are looked at again by the next pass.
      dispatcher.schedulePump();
      throw error;
    }
    log.info({ taskId: id, servers }, "task created");
    dispatcher.schedulePump([]);
    return id;
  }

  getTask(id: string): Promise<TaskView | undefined> {
    return this.ctx.store.taskView(id);
  }

  /** Re-drives a task's failed operations. Returns how many were queued. */
  async retryFailed(id: string): Promise<number> {
    const { status, dispatcher } = this.parts;
    const { n, effects } = await this.ctx.store.transaction(async (tx) => {
      const n = await tx.operations.requeueFailed(id);
      return { n, effects: n > 0 ? await status.recompute(tx, id) : undefined };
    });
    if (effects) await status.committed(id, effects);
    if (n > 0) dispatcher.schedulePump();
    return n;
  }

  /** Resolves when the task has settled, or with its current state after `timeoutMs`. */
  async waitForSettled(id: string, timeoutMs: number): Promise<TaskView | undefined> {
    // The task row says whether it has settled (its status is kept with its operations'):
    // its operations are read only for the answer.
    const task = await this.ctx.store.tasks.get(id);
    if (!task) return undefined;
    if (task.settledAt !== null) return this.getTask(id);
    return new Promise((resolve, reject) => {
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
        this.getTask(id).then(resolve, (error: unknown) => reject(asStoreError(error)));
      }, timeoutMs);
      waiters.push(waiter);
      this.waiters.set(id, waiters);
    });
  }

  /** Starts dispatching: operations left by a dead process are taken once their lease expires. */
  start(): Promise<void> {
    return this.parts.dispatcher.start();
  }

  /**
   * Stops taking work, lets in-flight operations finish until `deadlineMs`, then aborts
   * them; whatever is still running goes back to pending for the next start.
   */
  async stop(deadlineMs = 10_000): Promise<void> {
    const { store, log, owner } = this.ctx;
    const { commits, dispatcher } = this.parts;
    commits.stop();
    await dispatcher.drain(deadlineMs);
    try {
      await commits.idle();
      commits.flush(true);
      await commits.idle();
      if (commits.pending > 0) throw new Error(`${commits.pending} outcomes could not be committed`);
      const released = await store.operations.release(owner);
      if (released > 0) log.info({ released }, "unfinished operations returned to pending");
      await store.dispatchers.unregister(owner);
    } catch (error) {
      // This run's row stays: the next start looks up every unfinished operation on its
      // server before creating it, so what was not recorded is neither lost nor made twice.
      log.error(
        { err: error, code: storeFault(error)?.code },
        "could not record the last outcomes; the next start looks them up on their servers",
      );
    }
  }

  /** Pulls due work now (recovery and sync call this after they requeue operations). */
  wake(): void {
    this.parts.dispatcher.schedulePump();
  }

  /** Recomputes a task's status from its operations; emits task.settled on a change. */
  refreshTask(taskId: string): Promise<void> {
    return this.parts.status.refresh(taskId);
  }

  /**
   * Rolls the task back when one of its required servers has failed for good (a tool's
   * "no", or given up after `recovery.give_up_after`). Returns whether it rolled it back
   * now (false when there was nothing to do or it already had been).
   */
  async rollbackIfRequiredFailed(taskId: string): Promise<boolean> {
    const { status } = this.parts;
    const reason = await this.ctx.store.transaction((tx) => status.rollback(tx, taskId));
    if (reason === undefined) return false;
    status.rolledBack(taskId, reason);
    await status.refresh(taskId);
    return true;
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

/** A unique index refused the row (SQLite's SQLITE_CONSTRAINT_UNIQUE, PostgreSQL's 23505). */
function uniqueViolation(error: unknown): boolean {
  const code = String((error as { code?: unknown } | undefined)?.code);
  return code.startsWith("SQLITE_CONSTRAINT") || code === "23505";
}
