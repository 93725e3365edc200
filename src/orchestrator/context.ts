import type { EventEmitter } from "node:events";
import type { Config, ServerName } from "../config/schema.js";
import type { ChangeKind, Operation, Task, TaskFields, TaskView } from "../domain/task.js";
import type { Fleet } from "../fleet/fleet.js";
import type { Logger } from "../log.js";
import type { StoreRetry } from "../store/store-health.js";
import type { Store } from "../store/store.js";
import type { CommitQueue } from "./commit-queue.js";
import type { Dispatcher } from "./dispatcher.js";
import type { Leases } from "./leases.js";
import type { OperationRunner } from "./operation-runner.js";
import type { TaskStatus } from "./task-status.js";

export interface OperationEvent {
  taskId: string;
  operationId: number;
  server: string;
  /** create, compensate, or the change it carries (update, complete, reopen, delete). */
  kind?: string;
  /** Done without a call: the server has no such thing, or a later change superseded it. */
  skipped?: boolean;
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
  /** A change was accepted (stored): its operations are on their way. */
  "task.changed": [
    {
      taskId: string;
      kind: ChangeKind;
      version: number;
      source: string;
      /** The fields an update changed. */
      fields: Array<keyof TaskFields>;
    },
  ];
  /** Two servers changed one field of the task since the last sync: `kept` won, `lost` did not. */
  "task.conflict": [
    {
      taskId: string;
      field: keyof TaskFields;
      kept: { server: string; value: TaskFields[keyof TaskFields] };
      lost: Array<{ server: string; value: TaskFields[keyof TaskFields] }>;
    },
  ];
  /** Every change of the task has run on every server (or waits for its server). */
  "task.changes_settled": [TaskView];
  "task.rolled_back": [{ taskId: string; reason: string }];
}

/** A claimed operation and its task as read in the claim's transaction. */
export interface Claimed {
  op: Operation;
  task: Task;
}

/** What a task's recomputed status asks for once its transaction committed. */
export interface TaskEffects {
  /** Servers whose operations waited on others and became due. */
  released: ServerName[];
  /** The task settled in this transaction. */
  settled: boolean;
  /** The task has changes and none of them is still under way. */
  changesSettled?: boolean;
}

/** What the orchestrator's parts share: its surroundings, fixed for its life. */
export interface OrchestratorContext {
  store: Store;
  fleet: Fleet;
  config: Config;
  log: Logger;
  now: () => number;
  /** Lease owner name of this dispatcher. */
  owner: string;
  leaseMs: number;
  /** For each server, the servers whose create of the same task it waits for. */
  dependencies: ReadonlyMap<ServerName, ServerName[]>;
  /** For each server some other create waits for, the servers of those creates. */
  dependents: ReadonlyMap<ServerName, ServerName[]>;
  /** The orchestrator itself: progress messages, waiters, alerts and metrics listen. */
  events: EventEmitter<OrchestratorEvents>;
  /** Aborted on shutdown: every call in flight listens to it. */
  shutdown: AbortController;
  /** A store that does not answer, as one mechanism meets it: logged once, backed off. */
  retry(what: string): StoreRetry;
}

/** The orchestrator's parts; each reaches the others through this, wired once at construction. */
export interface Parts {
  status: TaskStatus;
  commits: CommitQueue;
  dispatcher: Dispatcher;
  leases: Leases;
  runner: OperationRunner;
}
