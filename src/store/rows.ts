import type { Alert, AlertKind } from "../domain/alert.js";
import type { Operation, Task } from "../domain/task.js";
import type {
  DueReminder,
  ReminderPlan,
  RouteDelivery,
  StoredEvent,
  RouteState,
  TaskFilter,
  UpcomingReminder,
} from "./store.js";

export interface TaskRow {
  id: string;
  title: string;
  description: string;
  priority: number;
  deadline: string | null;
  tags: string;
  status: Task["status"];
  status_reason: string | null;
  idempotency_key: string | null;
  created_at: number;
  updated_at: number;
  settled_at: number | null;
  rollback_reason: string | null;
  state: Task["state"];
  version: number;
  completed_at: number | null;
  deleted_at: number | null;
  chat_id: string | null;
  user_id: number | null;
}

export interface OperationRow {
  id: number;
  task_id: string;
  server: string;
  kind: Operation["kind"];
  status: Operation["status"];
  waits_for: string | null;
  priority: number;
  attempts: number;
  idempotency_key: string;
  remote_id: string | null;
  last_error: string | null;
  retryable: number;
  waiting: string | null;
  recheck: number;
  next_attempt_at: number;
  lease_owner: string | null;
  lease_expires_at: number | null;
  duration_ms: number | null;
  total_ms: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
}

export function toTask(row: TaskRow): Task {
  return {
    id: row.id,
    title: row.title,
    description: row.description,
    priority: row.priority,
    deadline: row.deadline,
    tags: JSON.parse(row.tags) as string[],
    status: row.status,
    statusReason: row.status_reason,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    settledAt: row.settled_at,
    rollbackReason: row.rollback_reason,
    state: row.state,
    version: row.version,
    completedAt: row.completed_at,
    deletedAt: row.deleted_at,
    chatId: row.chat_id,
    userId: row.user_id,
  };
}

export function toOperation(row: OperationRow): Operation {
  return {
    id: row.id,
    taskId: row.task_id,
    server: row.server,
    kind: row.kind,
    status: row.status,
    waitsFor: row.waits_for ? row.waits_for.split(",") : [],
    priority: row.priority,
    attempts: row.attempts,
    idempotencyKey: row.idempotency_key,
    remoteId: row.remote_id,
    lastError: row.last_error,
    retryable: row.retryable === 1,
    waiting: row.waiting,
    recheck: row.recheck === 1,
    nextAttemptAt: row.next_attempt_at,
    leaseOwner: row.lease_owner,
    leaseExpiresAt: row.lease_expires_at,
    durationMs: row.duration_ms,
    totalMs: row.total_ms,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

export interface AlertRow {
  id: number;
  kind: AlertKind;
  server: string;
  task_id: string | null;
  status: "open" | "closed";
  first_seen: number;
  last_seen: number;
  count: number;
  details: string;
  closed_at: number | null;
  delivered_at: number | null;
  delivered_count: number;
  acked_by: string | null;
  acked_by_id: number | null;
  acked_at: number | null;
}

export function toAlert(r: AlertRow): Alert {
  return {
    id: r.id,
    kind: r.kind,
    server: r.server,
    taskId: r.task_id,
    status: r.status,
    firstSeen: r.first_seen,
    lastSeen: r.last_seen,
    count: r.count,
    details: JSON.parse(r.details) as Record<string, unknown>,
    closedAt: r.closed_at,
    deliveredAt: r.delivered_at,
    deliveredCount: r.delivered_count,
    acknowledged:
      r.acked_at === null || r.acked_at === undefined
        ? null
        : { by: r.acked_by ?? "", userId: Number(r.acked_by_id), at: Number(r.acked_at) },
  };
}

export interface EventRow {
  id: number;
  task_id: string | null;
  operation_id: number | null;
  type: string;
  data: string;
  at: number;
}

export function toEvent(r: EventRow): StoredEvent {
  return {
    id: r.id,
    taskId: r.task_id,
    operationId: r.operation_id,
    type: r.type,
    data: JSON.parse(r.data) as Record<string, unknown>,
    at: r.at,
  };
}

export interface RouteDeliveryRow {
  route: string;
  delivered_count: number;
  delivered_at: number | null;
  attempts: number;
  next_attempt_at: number | null;
  last_error: string | null;
  failed_count: number;
}

export function toRouteDelivery(r: RouteDeliveryRow): RouteDelivery {
  const at = (v: number | null) => (v === null ? null : Number(v));
  return {
    route: r.route,
    deliveredCount: r.delivered_count,
    deliveredAt: at(r.delivered_at),
    attempts: r.attempts,
    nextAttemptAt: at(r.next_attempt_at),
    lastError: r.last_error,
    failedCount: r.failed_count,
  };
}

export interface RouteStateRow {
  route: string;
  since: number | string;
  retrying: number | string;
  next_attempt_at: number | string | null;
  refused: number | string;
  last_error: string | null;
}

export function toRouteState(r: RouteStateRow): RouteState {
  return {
    route: r.route,
    since: Number(r.since),
    retrying: Number(r.retrying),
    nextAttemptAt: r.next_attempt_at === null ? null : Number(r.next_attempt_at),
    refused: Number(r.refused),
    lastError: r.last_error,
  };
}

/** Where each route stands (the same statement on both stores). */
export const routeStateSql = `
  SELECT r.route, r.since,
       (SELECT count(*) FROM alert_deliveries d WHERE d.route = r.route AND d.next_attempt_at IS NOT NULL) AS retrying,
       (SELECT min(d.next_attempt_at) FROM alert_deliveries d WHERE d.route = r.route) AS next_attempt_at,
       (SELECT count(*) FROM alert_deliveries d
        WHERE d.route = r.route AND d.failed_count > 0 AND d.failed_count >= d.delivered_count) AS refused,
       (SELECT d.last_error FROM alert_deliveries d WHERE d.route = r.route AND d.last_error IS NOT NULL
        ORDER BY d.next_attempt_at IS NULL, d.alert_id DESC LIMIT 1) AS last_error
     FROM alert_routes r ORDER BY r.route`;

/**
 * The WHERE clause of a task list, for either engine: `param(n)` names the n-th parameter
 * ("?" for SQLite, "$n" for PostgreSQL).
 */
export function taskFilterSql(
  filter: TaskFilter,
  param: (n: number) => string,
): { where: string; params: unknown[] } {
  const parts: string[] = [];
  const params: unknown[] = [];
  const add = (sql: (p: string) => string, value: unknown) => {
    params.push(value);
    parts.push(sql(param(params.length)));
  };
  if (filter.state) add((p) => `state = ${p}`, filter.state);
  if (filter.deadlineBefore) add((p) => `deadline IS NOT NULL AND deadline < ${p}`, filter.deadlineBefore);
  if (filter.deadlineFrom) add((p) => `deadline IS NOT NULL AND deadline >= ${p}`, filter.deadlineFrom);
  // Tags are stored as a JSON array of strings, each quoted.
  if (filter.tag) {
    add((p) => `tags LIKE ${p} ESCAPE '\\'`, `%${JSON.stringify(filter.tag).replace(/[\\%_]/g, "\\$&")}%`);
  }
  if (filter.priority) add((p) => `priority = ${p}`, filter.priority);
  return { where: parts.length > 0 ? `WHERE ${parts.join(" AND ")}` : "", params };
}

/** A task as reminder planning reads it. */
export interface PlanRow {
  id: string;
  version: number;
  state: ReminderPlan["state"];
  deadline: string | null;
  chat_id: string | null;
  remind: string | null;
}

export function toPlan(r: PlanRow): ReminderPlan {
  return {
    taskId: r.id,
    version: r.version,
    state: r.state,
    deadline: r.deadline,
    chatId: r.chat_id,
    remind: r.remind === null ? null : (JSON.parse(r.remind) as number[]),
  };
}

/** A reminder with its task's title, deadline and owner. */
export interface ReminderRow {
  id: number;
  task_id: string;
  kind: DueReminder["kind"];
  offset_ms: number;
  fire_at: number;
  title: string;
  deadline: string | null;
  chat_id: string;
  user_id: number | null;
}

export function toDue(r: ReminderRow): DueReminder {
  return {
    id: r.id,
    taskId: r.task_id,
    kind: r.kind,
    offsetMs: r.offset_ms,
    fireAt: r.fire_at,
    title: r.title,
    deadline: r.deadline,
    chatId: r.chat_id,
    userId: r.user_id,
  };
}

export function toUpcoming(r: ReminderRow): UpcomingReminder {
  return {
    id: r.id,
    taskId: r.task_id,
    kind: r.kind,
    fireAt: r.fire_at,
    title: r.title,
    deadline: r.deadline,
  };
}
