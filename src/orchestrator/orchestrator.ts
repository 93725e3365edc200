import { createHash, randomBytes } from "node:crypto";
import { EventEmitter, setMaxListeners } from "node:events";
import type { Config, ServerName } from "../config/schema.js";
import {
  newTaskId,
  validateNewTask,
  type ChangeKind,
  type NewTask,
  type Task,
  type TaskFields,
  type TaskView,
  type ValidTask,
} from "../domain/task.js";
import {
  ChangeRefusedError,
  IdempotencyConflictError,
  TaskNotFoundError,
  VersionMismatchError,
} from "../errors.js";
import type { TaskEventKind } from "../domain/alert.js";
import type { Fleet } from "../fleet/fleet.js";
import { dependencies } from "../integrations/integration.js";
import type { Logger } from "../log.js";
import { asStoreError, StoreRetry, storeFault } from "../store/store-health.js";
import type { NewChangeRow, Store, StoreQueries, TaskChangeRow, TaskOwner } from "../store/store.js";
import { CommitQueue } from "./commit-queue.js";
import type { OrchestratorContext, OrchestratorEvents, Parts } from "./context.js";
import { Dispatcher } from "./dispatcher.js";
import { Leases } from "./leases.js";
import { OperationRunner } from "./operation-runner.js";
import { isActive } from "./status.js";
import { TaskStatus } from "./task-status.js";

export type { OperationEvent, OrchestratorEvents } from "./context.js";

/** A change of a task, as the chat, the API and the CLI ask for it. */
export type TaskChangeInput =
  | {
      kind: "update";
      fields: Partial<Pick<NewTask, "title" | "description" | "priority" | "deadline" | "tags">>;
    }
  | { kind: "complete" }
  | { kind: "reopen" }
  | { kind: "delete" };

export interface ChangeOptions {
  /** The same key again answers with the change it made, and makes none. */
  idempotencyKey?: string | undefined;
  /** Only if the task is still at this version (HTTP If-Match). */
  ifVersion?: number | undefined;
  /** Who asks: "chat", "api", "cli", or the server a change was noticed on. */
  source?: string | undefined;
}

export interface ChangeResult {
  task: Task;
  /** false: the task already was so (done and reopen are states), or the key's change was found. */
  changed: boolean;
  /** The key's earlier change answered. */
  replayed: boolean;
  /** Servers the change goes to. */
  servers: string[];
  /** The fields an update changed (none for another kind, or no change). */
  fields: Array<keyof TaskFields>;
}

/** Which pending operations of a task a new change makes pointless (it carries the task as it is). */
const supersedes: Record<ChangeKind, ChangeKind[]> = {
  update: ["update"],
  complete: ["complete", "reopen"],
  reopen: ["complete", "reopen"],
  delete: ["update", "complete", "reopen"],
};

/** The event a webhook route may ask for, per change kind (an edit has none). */
const taskEventOf: Partial<Record<ChangeKind, TaskEventKind>> = {
  complete: "task_done",
  reopen: "task_reopened",
  delete: "task_deleted",
};

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
  async createTask(
    input: NewTask,
    opts: { idempotencyKey?: string; owner?: TaskOwner | undefined } = {},
  ): Promise<string> {
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
    opts: { idempotencyKey?: string; owner?: TaskOwner | undefined } = {},
  ): Promise<{ id: string; created: boolean }> {
    const key = opts.idempotencyKey ?? null;
    try {
      const existing = key ? await this.existingFor(key, input) : undefined;
      if (existing) return { id: existing, created: false };
      const valid = validateNewTask(input, this.ctx.now());
      const id = await this.insertTask(valid, key, opts.owner);
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
   * The task and its operations in one synced commit (one statement on PostgreSQL), with the
   * claims of the servers that have room: their calls start as soon as the caller has the id.
   */
  private async insertTask(valid: ValidTask, key: string | null, owner?: TaskOwner): Promise<string> {
    const { log, store } = this.ctx;
    const { dispatcher } = this.parts;
    const id = newTaskId();
    const servers = this.ctx.fleet.names.length;
    try {
      await dispatcher.storeNew(id, (ops) =>
        store.tasks.insertWithOperations(
          id,
          valid,
          key === null ? null : { key, hash: requestHash(valid) },
          ops,
          owner,
        ),
      );
    } catch (error) {
      // Nothing was stored: the servers marked above are looked at again by the next pass.
      dispatcher.schedulePump();
      throw error;
    }
    log.info({ taskId: id, servers }, "task created");
    dispatcher.schedulePump([]);
    return id;
  }

  /**
   * Changes a task (update, complete, reopen, delete): the task as the change leaves it, one
   * version more, and one operation per server that holds the task, in one synced commit,
   * before any server is called. Each runs on its server after every earlier operation of
   * the task there. Throws TaskNotFoundError, ChangeRefusedError (deleted, rolled back),
   * VersionMismatchError (`ifVersion`), ValidationError (an update's field),
   * IdempotencyConflictError (the key was used for another change).
   */
  async changeTask(id: string, input: TaskChangeInput, opts: ChangeOptions = {}): Promise<ChangeResult> {
    const { dispatcher } = this.parts;
    const key = opts.idempotencyKey ?? null;
    const hash = changeHash(id, input);
    let result: ChangeResult | undefined;
    try {
      await dispatcher.claiming(async (tx, claims) => {
        result = await this.storeChange(tx, id, input, opts, key === null ? null : { key, hash });
        if (result.servers.length > 0) await claims.claimFreed();
      }, "full");
    } catch (error) {
      if (key !== null && uniqueViolation(error)) {
        // Two requests with one key raced: the other one's change is the answer.
        const replay = await this.replayChange(this.ctx.store, key, hash);
        if (replay) return replay;
      }
      throw asStoreError(error);
    }
    const done = result!;
    if (done.changed && !done.replayed) {
      const source = opts.source ?? "api";
      this.ctx.log.info(
        { taskId: id, kind: input.kind, version: done.task.version, servers: done.servers.length, source },
        "task changed",
      );
      this.emit("task.changed", {
        taskId: id,
        kind: input.kind,
        version: done.task.version,
        source,
        fields: done.fields,
      });
      dispatcher.schedulePump();
    }
    return done;
  }

  /** Inside the change's transaction: checks it, and stores the task and its operations. */
  private async storeChange(
    tx: StoreQueries,
    id: string,
    input: TaskChangeInput,
    opts: ChangeOptions,
    key: { key: string; hash: string } | null,
  ): Promise<ChangeResult> {
    if (key) {
      const replay = await this.replayChange(tx, key.key, key.hash);
      if (replay) return replay;
    }
    const task = await tx.tasks.lock(id);
    if (!task) throw new TaskNotFoundError(id);
    if (task.state === "deleted") throw new ChangeRefusedError(id, "deleted");
    if (task.rollbackReason || task.status === "rolled_back") throw new ChangeRefusedError(id, "rolled_back");
    if (opts.ifVersion !== undefined && opts.ifVersion !== task.version) {
      throw new VersionMismatchError(id, opts.ifVersion, task.version);
    }
    const now = this.ctx.now();
    // A deadline a person set on a server is taken as it is there, past or not; one asked
    // for here must be in the future.
    const next = nextState(task, input, now, opts.source?.startsWith("sync:") ? 0 : now);
    if (!next) return { task, changed: false, replayed: false, servers: [], fields: [] };
    if (!(await tx.tasks.applyChange(id, task.version, { ...next, source: opts.source ?? "api", key }))) {
      // The task is locked for this transaction: only a bug gets here.
      throw new VersionMismatchError(id, task.version, task.version + 1);
    }
    const version = task.version + 1;
    const fleet = this.ctx.fleet;
    // Every server that has the record, or will have it: its create is done or under way.
    const ops: NewChangeRow[] = (await tx.operations.forTask(id))
      .filter(
        (o) =>
          o.kind === "create" &&
          (o.status === "done" || o.status === "pending" || o.status === "running") &&
          fleet.names.includes(o.server as ServerName),
      )
      .map((o) => ({
        server: o.server,
        priority: fleet.config(o.server as ServerName).priority,
        idempotencyKey: `${id}:${o.server}:${input.kind}:v${version}`,
        remoteId: o.status === "done" ? o.remoteId : null,
      }));
    const superseded = await tx.operations.addChanges(id, input.kind, ops, supersedes[input.kind]);
    if (ops.length > 0) await tx.operations.releaseWaiting(id);
    await tx.events.append(
      "task.changed",
      { taskId: id },
      { kind: input.kind, version, servers: ops.length, superseded, changed: next.changed },
    );
    const event = taskEventOf[input.kind];
    if (event && this.routesTake(event)) {
      // In the change's transaction: a route is told of a change exactly when it is made.
      await tx.alerts.notice(event, "", id, {
        title: next.task.title,
        version,
        source: opts.source ?? "api",
      });
    }
    return {
      task: {
        ...task,
        ...next.task,
        state: next.state,
        completedAt: next.completedAt,
        deletedAt: next.deletedAt,
        version,
        updatedAt: now,
      },
      changed: true,
      replayed: false,
      servers: ops.map((o) => o.server),
      fields: Object.keys(next.changed) as Array<keyof TaskFields>,
    };
  }

  /** Whether some enabled alert route asks for this task event by name. */
  private routesTake(kind: TaskEventKind): boolean {
    return this.ctx.config.alerts.routes.some((r) => r.enabled && r.kinds?.includes(kind));
  }

  /** The change an idempotency key already made, if the request is the same; else a conflict. */
  private async replayChange(
    q: Pick<StoreQueries, "tasks">,
    key: string,
    hash: string,
  ): Promise<ChangeResult | undefined> {
    const earlier = await q.tasks.changeByIdempotencyKey(key);
    if (!earlier) return undefined;
    if (earlier.hash !== null && earlier.hash !== hash) throw new IdempotencyConflictError(key);
    const task = await q.tasks.get(earlier.taskId);
    if (!task) throw new TaskNotFoundError(earlier.taskId);
    return { task, changed: false, replayed: true, servers: [], fields: [] };
  }

  /**
   * Resolves when every change of the task has run on every server that holds it (or waits
   * for its server), or with the task as it is after `timeoutMs`.
   */
  async waitForChanges(id: string, timeoutMs: number): Promise<TaskView | undefined> {
    const settled = (view: TaskView | undefined) =>
      !view || !view.operations.some((o) => o.kind !== "create" && o.kind !== "compensate" && isActive(o));
    return new Promise((resolve, reject) => {
      let finished = false;
      const finish = (view: TaskView | undefined) => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        this.off("task.changes_settled", listener);
        stopFollowing?.();
        resolve(view);
      };
      const look = () =>
        this.getTask(id).then(
          (view) => {
            if (settled(view)) finish(view);
          },
          (error: unknown) => {
            if (!finished) reject(asStoreError(error));
          },
        );
      const listener = (view: TaskView) => {
        if (view.task.id === id) finish(view);
      };
      this.on("task.changes_settled", listener);
      // Another instance may run the change: its moves are announced through the store.
      const stopFollowing = this.ctx.store.onTaskChanged?.((taskId) => {
        if (taskId === id || taskId === "") void look();
      });
      const timer = setTimeout(() => {
        finished = true;
        this.off("task.changes_settled", listener);
        stopFollowing?.();
        this.getTask(id).then(resolve, (error: unknown) => reject(asStoreError(error)));
      }, timeoutMs);
      void look();
    });
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

/**
 * The task as a change leaves it, and what the change records; undefined when it changes
 * nothing (done and reopen are states, not toggles; an update to the same values).
 */
function nextState(
  task: Task,
  input: TaskChangeInput,
  now: number,
  future: number,
): Omit<TaskChangeRow, "source" | "key"> | undefined {
  const fields: TaskFields = {
    title: task.title,
    description: task.description,
    priority: task.priority,
    deadline: task.deadline,
    tags: task.tags,
  };
  const base = {
    kind: input.kind,
    task: fields,
    state: task.state,
    completedAt: task.completedAt,
    deletedAt: task.deletedAt,
    changed: {},
  };
  switch (input.kind) {
    case "complete":
      return task.state === "done" ? undefined : { ...base, state: "done", completedAt: now };
    case "reopen":
      return task.state === "open" ? undefined : { ...base, state: "open", completedAt: null };
    case "delete":
      return { ...base, state: "deleted", deletedAt: now };
    case "update": {
      const given = input.fields;
      // A deadline that is not changed may be past already; a new one must be in the future.
      const deadlineChanged = "deadline" in given && normalDeadline(given.deadline) !== task.deadline;
      const valid = validateNewTask(
        {
          title: given.title ?? task.title,
          description: given.description ?? task.description,
          priority: given.priority ?? task.priority,
          deadline: deadlineChanged ? given.deadline : task.deadline,
          tags: given.tags ?? task.tags,
        },
        deadlineChanged ? future : 0,
      );
      const changed: Partial<TaskFields> = {};
      if (valid.title !== task.title) changed.title = valid.title;
      if (valid.description !== task.description) changed.description = valid.description;
      if (valid.priority !== task.priority) changed.priority = valid.priority;
      if (valid.deadline !== task.deadline) changed.deadline = valid.deadline;
      if (JSON.stringify(valid.tags) !== JSON.stringify(task.tags)) changed.tags = valid.tags;
      if (Object.keys(changed).length === 0) return undefined;
      return { ...base, task: valid, changed };
    }
  }
}

/** A deadline as the store keeps it (ISO in UTC), for comparing with the stored one. */
function normalDeadline(deadline: string | Date | null | undefined): string | null {
  if (deadline === null || deadline === undefined || deadline === "") return null;
  const date = deadline instanceof Date ? deadline : new Date(deadline);
  return Number.isNaN(date.getTime()) ? String(deadline) : date.toISOString();
}

/** What a change's idempotency key is compared by: the task and the change asked for. */
function changeHash(id: string, input: TaskChangeInput): string {
  return createHash("sha256")
    .update(JSON.stringify([id, input.kind, input.kind === "update" ? input.fields : null]))
    .digest("hex");
}

/** A unique index refused the row (SQLite's SQLITE_CONSTRAINT_UNIQUE, PostgreSQL's 23505). */
function uniqueViolation(error: unknown): boolean {
  const code = String((error as { code?: unknown } | undefined)?.code);
  return code.startsWith("SQLITE_CONSTRAINT") || code === "23505";
}
