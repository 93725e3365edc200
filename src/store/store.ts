import type { Alert, AlertKind } from "../domain/alert.js";
import type {
  ChangeKind,
  LifecycleState,
  Operation,
  OperationStatus,
  Task,
  TaskFields,
  TaskStatus,
  TaskView,
  ValidTask,
} from "../domain/task.js";
import type { StoreHealth } from "./store-health.js";
import type { ServerHealth } from "../monitoring/health-monitor.js";

/**
 * The store, as the orchestrator, monitoring and the bot see it: every call returns a
 * promise, so an implementation may talk to a database server (PostgreSQL) or answer at once
 * (SQLite, `./sqlite/`). A call outside `transaction` is a transaction of its own; the calls
 * on the `tx` a transaction hands out commit (or roll back) together.
 */
export interface Store extends StoreQueries {
  /** Which engine, and where (credentials masked): for the banner, logs and health. */
  readonly description: string;
  /** A task with its operations, as every reader shows it. */
  taskView(id: string): Promise<TaskView | undefined>;
  /**
   * Runs `fn` in one write transaction, with `tx` for its calls; the calls inside must go
   * through `tx`, and `fn` must await nothing but them (a transaction holds the write lock).
   * `fn` may run more than once: a transaction PostgreSQL rolls back for a deadlock or a
   * serialization failure runs again, so what `fn` keeps in memory it keeps per run.
   * "full" (the default) is durable when this resolves. "relaxed" may skip the sync to disk:
   * it survives a crash of this process, and a power cut may lose it. Only for writes that
   * are found again after such a loss (an outcome the next claim re-verifies).
   */
  transaction<T>(fn: (tx: StoreQueries) => Promise<T>, durability?: "full" | "relaxed"): Promise<T>;
  /** Transactions begun through `transaction`, by durability. */
  readonly commits: { full: number; relaxed: number };
  /**
   * Statements sent to the database server by the store's work pool, so far (the bench's
   * round trips per task). SQLite runs in the process: always 0.
   */
  readonly roundTrips: number;
  /**
   * Whether the database answers: every transaction reports to it, and so does every loop
   * that meets a store error. A store fault leaves `transaction` as StoreUnavailableError.
   */
  readonly health: StoreHealth;
  /**
   * Writes and removes a row of a few pages, synced: true only when the database takes
   * writes (not locked past its timeout, not full, not read-only). Reports to `health`.
   */
  probe(): Promise<boolean>;
  /**
   * Work another process made due (PostgreSQL: LISTEN/NOTIFY), with its server ("" for
   * any: look at everything). Absent on SQLite, where one process makes all of its work.
   * Returns the way to stop listening.
   */
  onDue?(listener: (server: string) => void): () => void;
  /**
   * Locks one instance at a time holds, for the work that must run once in a group of
   * instances (the Telegram poller, alert delivery). Absent on SQLite: one process holds
   * them all.
   */
  locks?: SingletonLocks;
  /** The group of instances sharing this store. Absent on SQLite: one process. */
  cluster?: ClusterStore;
  /**
   * A task whose operations another process moved (PostgreSQL: LISTEN/NOTIFY), so the
   * instance following it in a chat can show it; "" when some were missed (look at all).
   */
  onTaskChanged?(listener: (taskId: string) => void): () => void;
  /**
   * PostgreSQL: folds the count tables' appended rows (one per statement that changed
   * operations, tasks or events) into one row per key; the rows removed. Maintenance runs
   * it every few seconds. Absent on SQLite, whose triggers keep one row per key.
   */
  compactCounts?(): Promise<number>;
  /** PostgreSQL: the schema versions this open applied (none when another process had). */
  readonly migrated?: readonly number[];
  close(): Promise<void>;
}

/** A running instance, as its last heartbeat described it. */
export interface InstanceRow {
  id: string;
  host: string;
  pid: number;
  version: string;
  startedAt: number;
  heartbeatAt: number;
  singletons: string[];
}

/** Rows the instances of a group share: who is there, and the health monitor's picture. */
export interface ClusterStore {
  /** Writes this instance's row, with the heartbeat now. */
  beat(row: Omit<InstanceRow, "heartbeatAt">): Promise<void>;
  /** Removes rows whose heartbeat is older than `before`; their ids. */
  removeStale(before: number): Promise<string[]>;
  /**
   * Ends the database sessions of every other instance whose heartbeat is older than
   * `before` (one that hangs: stopped, frozen, cut off), so its session locks and open
   * transactions are free now, not when its process dies; the ids of those it ended any for.
   */
  endHungSessions(before: number, self: string): Promise<string[]>;
  /** A clean stop: this instance's row goes. */
  leave(id: string): Promise<void>;
  instances(): Promise<InstanceRow[]>;
  /** The health monitor's latest ratings, by the instance that holds it. */
  writeHealth(instance: string, ratings: readonly ServerHealth[]): Promise<void>;
  readHealth(): Promise<Array<{ rating: ServerHealth; instance: string; writtenAt: number }>>;
}

/** Named locks held by this process's session with the database, lost with it. */
export interface SingletonLocks {
  /** Takes the lock if no one holds it; true while this process holds it. */
  tryAcquire(name: string): Promise<boolean>;
  release(name: string): Promise<void>;
  held(): string[];
  /** Called with the names held when the session that held them ended. */
  onLost(listener: (names: string[]) => void): () => void;
  close(): Promise<void>;
}

/** The tables, each a small set of use-case calls. */
export interface StoreQueries {
  tasks: TaskStore;
  operations: OperationStore;
  events: EventStore;
  alerts: AlertStore;
  alertRoutes: AlertRouteStore;
  bot: BotStateStore;
  dispatchers: DispatcherStore;
  reminders: ReminderStore;
}

export interface NewOperationRow {
  server: string;
  priority: number;
  /** Servers whose create of this task must settle first. */
  waitsFor: readonly string[];
  idempotencyKey: string;
  /** Stored already claimed by this dispatcher (its first attempt under way). */
  lease?: { owner: string; expiresAt: number } | undefined;
}

/** Who a task belongs to: the chat it was made in and the user who made it. */
export interface TaskOwner {
  chatId: string;
  userId: number | null;
  /** Minutes before the deadline to remind the owner ([] never; absent: the configured default). */
  remind?: readonly number[] | undefined;
}

/** A task as a change leaves it, and the record of that change. */
export interface TaskChangeRow {
  kind: ChangeKind;
  /** The task's fields after the change (all of them). */
  task: TaskFields;
  state: LifecycleState;
  completedAt: number | null;
  deletedAt: number | null;
  /** What the change set, as recorded: for an update, only the fields it changed. */
  changed: Partial<TaskFields>;
  /** "chat", "api", "cli", or the server a change was noticed on. */
  source: string;
  key: { key: string; hash: string } | null;
}

/** One change of a task, as its history keeps it. */
export interface TaskChange {
  taskId: string;
  version: number;
  kind: ChangeKind;
  changed: Partial<TaskFields>;
  source: string;
  at: number;
}

/** Which tasks a list shows; every part is optional and they combine. */
export interface TaskFilter {
  state?: LifecycleState | undefined;
  /** Only tasks with a deadline before this ISO time (overdue: now). */
  deadlineBefore?: string | undefined;
  /** Only tasks with a deadline at or after this ISO time. */
  deadlineFrom?: string | undefined;
  tag?: string | undefined;
  priority?: number | undefined;
  limit: number;
  offset?: number | undefined;
}

/** A change's operation on one server. */
export interface NewChangeRow {
  server: string;
  priority: number;
  idempotencyKey: string;
  /** The task's record there, when its create has finished. */
  remoteId: string | null;
}

export interface TaskStore {
  /**
   * The task and its operations, together, in one statement where the engine allows (one
   * round trip, and on the store itself its own synced commit). The task as stored and the
   * operations stored claimed are returned; with any, the task is stored running. `key`: the
   * idempotency key and its request's hash.
   */
  insertWithOperations(
    id: string,
    task: ValidTask,
    key: { key: string; hash: string } | null,
    ops: readonly NewOperationRow[],
    owner?: TaskOwner,
  ): Promise<{ task: Task; claimed: Operation[] }>;
  /**
   * Writes a change: the task as it leaves it, one version more, and the change's record.
   * Only while the task is at `version`; false (nothing written) when another change came first.
   */
  applyChange(id: string, version: number, change: TaskChangeRow): Promise<boolean>;
  /** The change an idempotency key made, with its request's hash. */
  changeByIdempotencyKey(
    key: string,
  ): Promise<{ taskId: string; version: number; hash: string | null } | undefined>;
  /** A task's changes, oldest first. */
  changes(taskId: string): Promise<TaskChange[]>;
  /** Tasks by the filter, newest first. */
  list(filter: TaskFilter): Promise<Task[]>;
  get(id: string): Promise<Task | undefined>;
  /** The tasks of these ids that exist, in one statement. */
  getMany(ids: readonly string[]): Promise<Task[]>;
  /**
   * Inside a transaction: holds the task until the commit, so transactions that recompute
   * one task's status from its operations take turns and each sees the others' outcomes
   * (PostgreSQL; SQLite's write transactions take turns already). Returns the task as it
   * is once held: the lock and the read are one statement.
   */
  lock(id: string): Promise<Task | undefined>;
  /** The task an idempotency key made, and the hash of its request (null for older rows). */
  getByIdempotencyKey(key: string): Promise<{ id: string; hash: string | null } | undefined>;
  /** Returns the time it stored as the update (and, when settled, the settle) time. */
  setStatus(id: string, status: TaskStatus, reason: string | null, settled: boolean): Promise<number>;
  /** Records why the task is rolled back; false when it already was. */
  markRolledBack(id: string, reason: string): Promise<boolean>;
  recent(limit: number, offset?: number): Promise<Task[]>;
  /** How many tasks there are, or match `filter` (as `list` reads it). */
  count(filter?: Omit<TaskFilter, "limit" | "offset">): Promise<number>;
  countByStatus(): Promise<Partial<Record<TaskStatus, number>>>;
}

/** An operation as far as its task's status and its waits are concerned. */
export type OperationState = Pick<
  Operation,
  "server" | "kind" | "status" | "waiting" | "attempts" | "nextAttemptAt" | "waitsFor"
>;

export interface ClaimRequest {
  owner: string;
  leaseMs: number;
  /** Free slots per server; a server absent from the map is not claimed from. */
  capacity: ReadonlyMap<string, number>;
  /** Free global slots. */
  limit: number;
  /**
   * Servers that take one call at a time, whoever calls (they rewrite one file per call):
   * their operations are claimed only while no other running dispatcher holds a live lease
   * on one, so a group of instances sharing the server still calls it one at a time.
   */
  serial?: ReadonlySet<string>;
  /**
   * Per server, how long a call its holder started before the lease ran out may still be
   * at work on the server (its call timeout): a lease counts as live for `serial`, and its
   * operation is not taken as an orphan, until this long past its expiry. Default 0.
   */
  overrunMs?: ReadonlyMap<string, number>;
  /**
   * Also take running operations whose lease expired (their owner died); default true.
   * A lease only expires with time, so a dispatcher looks for them on its poll, not on every pass.
   */
  orphans?: boolean;
}

/**
 * Who holds a claimed operation: the owner, and the fencing token, the operation's attempt
 * count when this holder claimed (or counted) it. Every claim and every counted attempt
 * changes the token, so a write of an earlier holder, or of this one before it lost and
 * took the claim again, matches no row and is refused.
 */
export interface ClaimRef {
  owner: string;
  token: number;
}

export interface Outcome {
  status: Extract<OperationStatus, "done" | "skipped">;
  remoteId: string | null;
  note?: string | undefined;
  durationMs: number;
}

export interface Failure {
  error: string;
  retryable: boolean;
  durationMs: number;
  /** The failed attempt may have reached the server. */
  recheck: boolean;
  /** For a retryable failure: when recovery may re-drive it. */
  recoverAt?: number | undefined;
}

/** The due time of an operation that waits for other creates of its task (see releaseWaiting). */
export const blockedUntil = 8_640_000_000_000_000;

export interface OperationStore {
  /** Claims due operations with a lease; two dispatchers never get the same one. */
  claim(req: ClaimRequest): Promise<Operation[]>;
  forTask(taskId: string): Promise<Operation[]>;
  /** The fields a task's status and its waits are derived from, read in one go. */
  statesOf(taskId: string): Promise<OperationState[]>;
  /**
   * Renews this owner's leases that have not run out (one that ran out stays out: another
   * dispatcher may have called its server since) to at least `leaseMs` from now; the ids
   * renewed. No renewal shortens a lease.
   */
  renewLeases(owner: string, leaseMs: number): Promise<number[]>;
  /**
   * The fence before a call: renews the lease of this claim to at least `leaseMs` from now
   * if it is still the holder's and has not run out; false otherwise (the call must not go out).
   */
  renewClaim(id: number, claim: ClaimRef, leaseMs: number): Promise<boolean>;
  /**
   * A change's operations, one per server: each blocked (see releaseWaiting) until every
   * earlier operation of its task on its server has settled, so a change never runs before
   * the create, nor before an earlier change, there. Pending operations of the task of the
   * `supersedes` kinds are skipped first (a newer change carries the task as it now is);
   * returns how many.
   */
  addChanges(
    taskId: string,
    kind: ChangeKind,
    ops: readonly NewChangeRow[],
    supersedes: readonly ChangeKind[],
  ): Promise<number>;
  /**
   * Lets a task's blocked operations run once what they wait for has settled (a change's:
   * every earlier operation of its task on its server); their servers.
   */
  releaseWaiting(taskId: string): Promise<string[]>;
  /** The same for every task, at start: a crash may have fallen between an outcome and its release. */
  releaseAllWaiting(): Promise<number>;
  /**
   * Counts a retry (the claim counts the first attempt) and renews the lease, as
   * `renewClaim` does; the claim's token is then one more. False when the lease is lost.
   */
  startAttempt(id: number, claim: ClaimRef, leaseMs: number): Promise<boolean>;
  /** The outcome of a claim; false (nothing written) when the claim is no longer this one. */
  finish(id: number, claim: ClaimRef, outcome: Outcome): Promise<boolean>;
  fail(id: number, claim: ClaimRef, failure: Failure): Promise<boolean>;
  /** Back to pending, waiting for its server, until `until`. */
  park(
    id: number,
    claim: ClaimRef,
    p: { reason: string; until: number; durationMs: number; recheck: boolean },
  ): Promise<boolean>;
  /**
   * Marks a server's due operations as waiting for it (not marked already with this
   * reason), due again at `until`; with `until` null they stay due (another instance
   * sharing the store may reach the server). Returns the tasks touched.
   */
  parkServer(server: string, reason: string, until: number | null): Promise<string[]>;
  /** Returns this owner's running operations to pending (graceful shutdown). */
  release(owner: string): Promise<number>;
  /** Failed operations of a task back to pending; they look before creating again. */
  requeueFailed(taskId: string): Promise<number>;
  /**
   * Failed-but-retryable operations of these servers, due for recovery, back to pending, and
   * those parked waiting for them due now (they answer again); their tasks. One statement.
   */
  recover(servers: readonly string[]): Promise<string[]>;
  /** Operations older than `cutoff` that still wait or wait to be recovered: failed for good. */
  giveUp(cutoff: number, reason: string): Promise<string[]>;
  /**
   * Rolls a task back: its unfinished creates are skipped, and every create that
   * succeeded gets a compensation (once; calling again adds only the missing ones).
   */
  rollback(taskId: string): Promise<number>;
  /** The most recently finished done creates of a server, for read-back. */
  recentDone(server: string, limit: number): Promise<Operation[]>;
  /** A done operation whose record vanished from its server: create it again. */
  requeueForRepair(id: number): Promise<boolean>;
  recentDurations(server: string, limit: number): Promise<number[]>;
  /** Operations finished per bucket since `since`, oldest bucket first. */
  finishedPerBucket(since: number, bucketMs: number, buckets: number): Promise<number[]>;
  queueSize(): Promise<number>;
  countByServerStatus(): Promise<Array<{ server: string; status: OperationStatus; n: number }>>;
}

export interface StoredEvent {
  id: number;
  taskId: string | null;
  operationId: number | null;
  type: string;
  data: Record<string, unknown>;
  at: number;
}

export interface EventStore {
  count(type: string): Promise<number>;
  append(
    type: string,
    refs: { taskId?: string | undefined; operationId?: number | undefined },
    data?: Record<string, unknown>,
  ): Promise<void>;
  forTask(taskId: string): Promise<StoredEvent[]>;
}

/** The alert outbox. */
export interface AlertStore {
  /**
   * Records a condition: a repeat of an open alert of the same kind and server updates
   * that row (count, last seen) instead of adding one. Returns the row.
   */
  raise(kind: AlertKind, server: string, details?: Record<string, unknown>): Promise<Alert>;
  /** A one-off notice (recovered, rolled back): born closed, still to be delivered. */
  notice(
    kind: AlertKind,
    server: string,
    taskId: string | null,
    details: Record<string, unknown>,
  ): Promise<Alert>;
  /** Closes a server's open alerts; returns those it closed. */
  resolve(server: string): Promise<Alert[]>;
  open(): Promise<Alert[]>;
  recent(limit: number): Promise<Alert[]>;
  get(id: number): Promise<Alert | undefined>;
  /** Claims alerts not yet delivered at their current count, for one deliverer at a time. */
  claimUndelivered(owner: string, limit: number, leaseMs: number): Promise<Alert[]>;
  /** Marks an alert delivered at `count` (the count the delivered message showed). */
  markDelivered(id: number, owner: string, count: number): Promise<boolean>;
  /** Gives a claim back after a failed delivery, so it is tried again. */
  releaseClaim(id: number, owner: string): Promise<void>;
  /**
   * Records that `by` is on it: only an open alert, and only the first acknowledgement
   * counts. Returns the alert as it now is (undefined when there is no such alert).
   */
  acknowledge(id: number, by: { name: string; userId: number }): Promise<Alert | undefined>;
}

/** Where one alert stands on one route. */
export interface RouteDelivery {
  route: string;
  deliveredCount: number;
  deliveredAt: number | null;
  attempts: number;
  nextAttemptAt: number | null;
  lastError: string | null;
  /** The count the route refused for good (0: none). */
  failedCount: number;
}

/** Where one route stands as a whole, for /health, the API and the status page. */
export interface RouteState {
  route: string;
  /** Since when it takes alerts. */
  since: number;
  /** Alerts it has not taken yet and will be tried again. */
  retrying: number;
  /** The soonest of those tries. */
  nextAttemptAt: number | null;
  /** Alerts it refused for good (at their current count). */
  refused: number;
  /** What it said last when it did not take one: of a retry under way, else of the latest refusal. */
  lastError: string | null;
}

/** Each alert route's own outbox: what it was given, what it refused, when it tries again. */
export interface AlertRouteStore {
  /** Registers a route (once); returns since when it takes alerts. */
  start(route: string, now: number): Promise<number>;
  /**
   * Claims, for `route`, alerts seen since `since` whose current count it has neither
   * accepted nor refused, whose next attempt is due, and that nobody else holds.
   */
  claim(
    route: string,
    owner: string,
    since: number,
    limit: number,
    leaseMs: number,
    now: number,
  ): Promise<Array<{ alert: Alert; attempts: number }>>;
  /** The route accepted the alert at `count`. */
  delivered(alertId: number, route: string, owner: string, count: number, now: number): Promise<void>;
  /** Not this time: another attempt at `nextAt`. */
  retryAt(alertId: number, route: string, owner: string, error: string, nextAt: number): Promise<void>;
  /** Refused for good at `count` (until the alert changes). */
  refused(alertId: number, route: string, owner: string, count: number, error: string): Promise<void>;
  /** An alert's state on every route that has seen it. */
  forAlert(alertId: number): Promise<RouteDelivery[]>;
  /** Every route that ever started, where it stands, by name. */
  summary(): Promise<RouteState[]>;
}

/** Conversation state, mutes and users' settings: the little the bot keeps between restarts. */
export interface BotStateStore {
  conversations: {
    read(key: string): Promise<unknown>;
    write(key: string, state: unknown): Promise<void>;
    delete(key: string): Promise<void>;
  };
  mutes: {
    /** Mutes alerts of a server ('*' for all) until a time. */
    mute(server: string, until: number): Promise<void>;
    unmute(server?: string): Promise<void>;
    active(): Promise<Array<{ server: string; until: number }>>;
    isMuted(server: string): Promise<boolean>;
  };
  timezones: {
    /** The zone a user chose, if any. */
    get(userId: number): Promise<string | undefined>;
    set(userId: number, zone: string): Promise<void>;
  };
  alertMessages: {
    set(alertId: number, chatId: string, messageId: number): Promise<void>;
    get(alertId: number): Promise<{ chatId: string; messageId: number } | undefined>;
    /**
     * The message of the latest open alert of another server than `server`, first seen at
     * or after `since`, that has one.
     */
    openGroup(since: number, server: string): Promise<{ chatId: string; messageId: number } | undefined>;
    /** The alerts shown in one message, oldest first. */
    sharing(chatId: string, messageId: number): Promise<Alert[]>;
  };
}

export interface DispatcherStore {
  /**
   * Registers a starting dispatcher. Runs whose process is gone (`isGone`) did not stop
   * cleanly: their rows are removed, their claims go back to pending at once (nothing of
   * theirs runs), and every unfinished operation is marked to be looked up before it is
   * created. Returns those runs' owners and how many were marked.
   */
  register(
    owner: string,
    process: string,
    isGone: (process: string) => boolean,
  ): Promise<{ gone: string[]; rechecked: number }>;
  /** A clean stop: nothing this run claimed is left unrecorded. */
  unregister(owner: string): Promise<void>;
}

/** A task whose reminders are not planned for its current version. */
export interface ReminderPlan {
  taskId: string;
  version: number;
  state: LifecycleState;
  deadline: string | null;
  chatId: string | null;
  /** Minutes before the deadline; null: the configured default. */
  remind: number[] | null;
}

/** A reminder claimed to be sent, with what its message says. */
export interface DueReminder {
  id: number;
  taskId: string;
  kind: "before" | "snooze";
  /** How long before the deadline (kind before). */
  offsetMs: number;
  fireAt: number;
  title: string;
  deadline: string | null;
  chatId: string;
  userId: number | null;
}

/** A reminder still to fire, as /reminders lists it. */
export interface UpcomingReminder {
  id: number;
  taskId: string;
  kind: "before" | "snooze";
  fireAt: number;
  title: string;
  deadline: string | null;
}

/**
 * Reminders: rows planned from each task's deadline, claimed by one instance (a lease, as
 * operations are), fired once. A task is planned again whenever its version moves on, so a
 * moved deadline moves its reminders and a done or deleted task keeps none.
 */
export interface ReminderStore {
  /** Tasks whose reminders were not planned for their current version, oldest first. */
  toPlan(limit: number): Promise<ReminderPlan[]>;
  /**
   * Replaces the task's pending reminders before the deadline with `before` (its snoozes
   * too when `keepSnoozes` is false) and marks it planned for `version`; false, with
   * nothing written, when the task is no longer at `version`.
   */
  replan(
    taskId: string,
    version: number,
    before: ReadonlyArray<{ offsetMs: number; fireAt: number }>,
    keepSnoozes: boolean,
  ): Promise<boolean>;
  /** Reminders of open tasks due at `at` (and those whose claim ran out by then), claimed for `owner`. */
  claim(owner: string, at: number, limit: number, leaseMs: number): Promise<DueReminder[]>;
  /** Records a claimed reminder as sent; false when the claim was lost. */
  sent(id: number, owner: string, late: boolean): Promise<boolean>;
  /** Gives a claimed reminder back, due again at `at`. */
  retry(id: number, owner: string, at: number): Promise<void>;
  /** A new reminder of the same task at `at`; undefined when this one was snoozed already. */
  snooze(id: number, at: number): Promise<number | undefined>;
  /** The task a reminder is of. */
  taskOf(id: number): Promise<string | undefined>;
  /** What will fire for the open tasks of a chat, soonest first. */
  upcoming(chatId: string, limit: number): Promise<UpcomingReminder[]>;
}
