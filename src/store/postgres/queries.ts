import type pg from "pg";
import type { Operation, OperationStatus, TaskStatus } from "../../domain/task.js";
import {
  routeStateSql,
  toAlert,
  toRouteDelivery,
  toRouteState,
  type RouteDeliveryRow,
  type RouteStateRow,
  toEvent,
  toOperation,
  toTask,
  type AlertRow,
  type EventRow,
  type OperationRow,
  type TaskRow,
} from "../rows.js";
import { blockedUntil, type StoreQueries } from "../store.js";

/** The advisory lock class of a serial server's claim turn ("tg"; singletons use 0x7466). */
const serialLockClass = 0x7467;

/** A pool (each call its own transaction) or one client inside a transaction. */
export type Queryable = pg.Pool | pg.PoolClient;

/** Runs `fn` in one transaction: on a pool, a client of its own; on a client, inside the caller's. */
export async function atomic<T>(q: Queryable, fn: (client: Queryable) => Promise<T>): Promise<T> {
  if (!("totalCount" in q)) return fn(q);
  const client = await q.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    const value = await fn(client);
    await client.query("COMMIT");
    return value;
  } catch (error) {
    await client.query("ROLLBACK").catch((rollbackFailed: Error) => (broken = rollbackFailed));
    throw error;
  } finally {
    // A client whose connection failed is closed, not handed out again.
    client.release(broken);
  }
}

/**
 * The store's calls in SQL for PostgreSQL, on `q`. The same rules as the SQLite statements
 * (`../sqlite/`); claims take rows with `FOR UPDATE SKIP LOCKED`, so two dispatchers never
 * wait for, nor get, the same operation.
 */
export function queriesOn(q: Queryable, now: () => number): StoreQueries {
  const rows = async <T>(sql: string, values: unknown[] = []): Promise<T[]> =>
    (await q.query<T & pg.QueryResultRow>(sql, values)).rows;
  const changes = async (sql: string, values: unknown[] = []): Promise<number> =>
    (await q.query(sql, values)).rowCount ?? 0;
  // The fence, on $1 (id), $2 (owner), $3 (token): this claim still holds the operation.
  const holds = "id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'";
  // What a blocked operation waits for has settled, or is parked: as in the SQLite store.
  const nothingOpen = `NOT EXISTS (
       SELECT 1 FROM operations p WHERE p.task_id = operations.task_id AND p.kind = operations.kind
         AND position(',' || p.server || ',' IN ',' || operations.waits_for || ',') > 0
         AND (p.status = 'running' OR (p.status = 'pending' AND p.waiting IS NULL)))`;

  return {
    tasks: {
      async insertWithOperations(id, task, key, ops) {
        return atomic(q, async (c) => {
          const t = now();
          const leased = (op: (typeof ops)[number]) => (op.waitsFor.length === 0 ? op.lease : undefined);
          await c.query(
            `INSERT INTO tasks (id, title, description, priority, deadline, tags, status, idempotency_key,
               idempotency_hash, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)`,
            [
              id,
              task.title,
              task.description,
              task.priority,
              task.deadline,
              JSON.stringify(task.tags),
              ops.some(leased) ? "running" : "pending",
              key?.key ?? null,
              key?.hash ?? null,
              t,
            ],
          );
          const claimed: Operation[] = [];
          for (const op of ops) {
            const lease = leased(op);
            if (lease) {
              const { rows: inserted } = await c.query<OperationRow>(
                `INSERT INTO operations (task_id, server, kind, status, waits_for, priority, idempotency_key, attempts,
                   lease_owner, lease_expires_at, next_attempt_at, created_at, started_at, updated_at)
                 VALUES ($1, $2, 'create', 'running', NULL, $3, $4, 1, $5, $6, $7, $7, $7, $7) RETURNING *`,
                [id, op.server, op.priority, op.idempotencyKey, lease.owner, lease.expiresAt, t],
              );
              claimed.push(toOperation(inserted[0]!));
              continue;
            }
            await c.query(
              `INSERT INTO operations (task_id, server, kind, status, waits_for, priority, idempotency_key,
                 next_attempt_at, created_at, updated_at)
               VALUES ($1, $2, 'create', 'pending', $3, $4, $5, $6, $7, $7)`,
              [
                id,
                op.server,
                op.waitsFor.length > 0 ? op.waitsFor.join(",") : null,
                op.priority,
                op.idempotencyKey,
                op.waitsFor.length === 0 ? t : blockedUntil,
                t,
              ],
            );
          }
          return claimed;
        });
      },
      async get(id) {
        const [row] = await rows<TaskRow>("SELECT * FROM tasks WHERE id = $1", [id]);
        return row ? toTask(row) : undefined;
      },
      async lock(id) {
        await q.query("SELECT 1 FROM tasks WHERE id = $1 FOR UPDATE", [id]);
      },
      async getByIdempotencyKey(key) {
        const [row] = await rows<{ id: string; idempotency_hash: string | null }>(
          "SELECT id, idempotency_hash FROM tasks WHERE idempotency_key = $1",
          [key],
        );
        return row ? { id: row.id, hash: row.idempotency_hash } : undefined;
      },
      async setStatus(id, status, reason, settled) {
        const t = now();
        await q.query(
          "UPDATE tasks SET status = $1, status_reason = $2, updated_at = $3, settled_at = $4 WHERE id = $5",
          [status, reason, t, settled ? t : null, id],
        );
        return t;
      },
      async markRolledBack(id, reason) {
        return (
          (await changes(
            "UPDATE tasks SET rollback_reason = $1, updated_at = $2 WHERE id = $3 AND rollback_reason IS NULL",
            [reason, now(), id],
          )) === 1
        );
      },
      async recent(limit, offset = 0) {
        return (
          await rows<TaskRow>("SELECT * FROM tasks ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2", [
            limit,
            offset,
          ])
        ).map(toTask);
      },
      async count() {
        return (await rows<{ n: number }>("SELECT count(*)::int AS n FROM tasks"))[0]!.n;
      },
      async countByStatus() {
        const counts = await rows<{ status: TaskStatus; n: number }>(
          "SELECT status, count(*)::int AS n FROM tasks GROUP BY status",
        );
        return Object.fromEntries(counts.map((r) => [r.status, r.n]));
      },
    },

    operations: {
      async claim(req) {
        return atomic(q, async (c) => {
          const t = now();
          type Candidate = { id: number; priority: number; created_at: number };
          const candidates: Candidate[] = [];
          // A serial server's claimers take turns (its lock, held to the commit, in name order
          // so two claimers never wait for each other); one that another live dispatcher is
          // calling is passed by.
          const busy = new Set<string>();
          for (const server of [...req.capacity.keys()].filter((s) => req.serial?.has(s)).sort()) {
            await c.query("SELECT pg_advisory_xact_lock($1, hashtext($2))", [serialLockClass, server]);
            const { rowCount } = await c.query(
              `SELECT 1 FROM operations o JOIN dispatchers d ON d.owner = o.lease_owner
               WHERE o.server = $1 AND o.status = 'running' AND o.lease_owner <> $2
                 AND o.lease_expires_at >= $3 LIMIT 1`,
              [server, req.owner, t - (req.overrunMs?.get(server) ?? 0)],
            );
            if (rowCount) busy.add(server);
          }
          // Per server: running ones whose lease ran out longer ago than a call started in time
          // could still be at work (on the poll), then due ones, locked with SKIP LOCKED until
          // this transaction ends: another dispatcher passes them by.
          for (const [server, free] of req.capacity) {
            if (free <= 0 || busy.has(server)) continue;
            const limit = Math.min(free, req.limit);
            const orphans =
              req.orphans === false
                ? []
                : (
                    await c.query<Candidate>(
                      `SELECT id, priority, created_at FROM operations
                       WHERE status = 'running' AND lease_expires_at < $2 AND server = $1
                       ORDER BY lease_expires_at LIMIT $3 FOR UPDATE SKIP LOCKED`,
                      [server, t - (req.overrunMs?.get(server) ?? 0), limit],
                    )
                  ).rows;
            const due =
              limit - orphans.length <= 0
                ? []
                : (
                    await c.query<Candidate>(
                      `SELECT id, priority, created_at FROM operations
                       WHERE server = $1 AND status = 'pending' AND next_attempt_at <= $2
                       ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED`,
                      [server, t, limit - orphans.length],
                    )
                  ).rows;
            candidates.push(...orphans, ...due);
          }
          // Across servers: priority 1 first, then the oldest.
          candidates.sort((a, b) => a.priority - b.priority || a.created_at - b.created_at || a.id - b.id);
          const ids = candidates.slice(0, req.limit).map((x) => x.id);
          if (ids.length === 0) return [];
          const { rows: taken } = await c.query<OperationRow>(
            `UPDATE operations
             SET recheck = CASE WHEN status = 'running' THEN 1 ELSE recheck END,
                 attempts = attempts + 1,
                 status = 'running', lease_owner = $2, lease_expires_at = $3, waiting = NULL,
                 started_at = coalesce(started_at, $4), updated_at = $4
             WHERE id = ANY($1::bigint[]) AND ((status = 'pending' AND next_attempt_at <= $4)
                                OR (status = 'running' AND lease_expires_at < $4))
             RETURNING *`,
            [ids, req.owner, t + req.leaseMs, t],
          );
          const order = new Map(ids.map((id, i) => [id, i]));
          return taken.map(toOperation).sort((a, b) => order.get(a.id)! - order.get(b.id)!);
        });
      },
      async forTask(taskId) {
        return (
          await rows<OperationRow>("SELECT * FROM operations WHERE task_id = $1 ORDER BY priority, id", [
            taskId,
          ])
        ).map(toOperation);
      },
      async statesOf(taskId) {
        const states = await rows<OperationRow>(
          "SELECT server, kind, status, waiting, attempts, next_attempt_at, waits_for FROM operations WHERE task_id = $1",
          [taskId],
        );
        return states.map((r) => ({
          server: r.server,
          kind: r.kind,
          status: r.status,
          waiting: r.waiting,
          attempts: r.attempts,
          nextAttemptAt: r.next_attempt_at,
          waitsFor: r.waits_for ? r.waits_for.split(",") : [],
        }));
      },
      async renewLeases(owner, leaseMs) {
        const t = now();
        // A lease that ran out is not renewed: another dispatcher may have called its server since.
        const renewed = await rows<{ id: number }>(
          `UPDATE operations SET lease_expires_at = greatest(lease_expires_at, $1), updated_at = $2
           WHERE lease_owner = $3 AND status = 'running' AND lease_expires_at >= $2 RETURNING id`,
          [t + leaseMs, t, owner],
        );
        return renewed.map((r) => r.id);
      },
      async renewClaim(id, claim, leaseMs) {
        const t = now();
        return (
          (await changes(
            `UPDATE operations SET lease_expires_at = greatest(lease_expires_at, $4), updated_at = $5
             WHERE ${holds} AND lease_expires_at >= $5`,
            [id, claim.owner, claim.token, t + leaseMs, t],
          )) === 1
        );
      },
      async releaseWaiting(taskId) {
        const t = now();
        return (
          await rows<{ server: string }>(
            `UPDATE operations SET next_attempt_at = $2, updated_at = $2
             WHERE task_id = $1 AND status = 'pending' AND next_attempt_at = $3 AND ${nothingOpen}
             RETURNING server`,
            [taskId, t, blockedUntil],
          )
        ).map((r) => r.server);
      },
      async releaseAllWaiting() {
        const t = now();
        return changes(
          `UPDATE operations SET next_attempt_at = $1, updated_at = $1
           WHERE status = 'pending' AND next_attempt_at = $2 AND ${nothingOpen}`,
          [t, blockedUntil],
        );
      },
      async startAttempt(id, claim, leaseMs) {
        const t = now();
        return (
          (await changes(
            `UPDATE operations SET attempts = attempts + 1, lease_expires_at = greatest(lease_expires_at, $4),
               updated_at = $5
             WHERE ${holds} AND lease_expires_at >= $5`,
            [id, claim.owner, claim.token, t + leaseMs, t],
          )) === 1
        );
      },
      async finish(id, claim, outcome) {
        const ms = Math.round(outcome.durationMs);
        return (
          (await changes(
            `UPDATE operations SET status = $4, remote_id = coalesce($5, remote_id),
               last_error = $6, retryable = 0, waiting = NULL, recheck = 0, lease_owner = NULL,
               lease_expires_at = NULL, duration_ms = $7::int, total_ms = total_ms + $7::int,
               finished_at = $8, updated_at = $8
             WHERE ${holds}`,
            [id, claim.owner, claim.token, outcome.status, outcome.remoteId, outcome.note ?? null, ms, now()],
          )) === 1
        );
      },
      async fail(id, claim, failure) {
        const ms = Math.round(failure.durationMs);
        return (
          (await changes(
            `UPDATE operations SET status = 'failed', last_error = $4, retryable = $5,
               recheck = greatest(recheck, $6), next_attempt_at = coalesce($7, next_attempt_at),
               lease_owner = NULL, lease_expires_at = NULL,
               duration_ms = $8::int, total_ms = total_ms + $8::int, finished_at = $9, updated_at = $9
             WHERE ${holds}`,
            [
              id,
              claim.owner,
              claim.token,
              failure.error,
              failure.retryable ? 1 : 0,
              failure.recheck ? 1 : 0,
              failure.recoverAt ?? null,
              ms,
              now(),
            ],
          )) === 1
        );
      },
      async park(id, claim, p) {
        return (
          (await changes(
            `UPDATE operations SET status = 'pending', waiting = $4, last_error = $4,
               recheck = greatest(recheck, $5), next_attempt_at = $6, lease_owner = NULL,
               lease_expires_at = NULL, total_ms = total_ms + $7, updated_at = $8
             WHERE ${holds}`,
            [
              id,
              claim.owner,
              claim.token,
              p.reason,
              p.recheck ? 1 : 0,
              p.until,
              Math.round(p.durationMs),
              now(),
            ],
          )) === 1
        );
      },
      async parkServer(server, reason, until) {
        const t = now();
        const parked = await rows<{ task_id: string }>(
          `UPDATE operations SET waiting = $2, last_error = $2, next_attempt_at = coalesce($3, next_attempt_at),
             updated_at = $4
           WHERE server = $1 AND status = 'pending' AND next_attempt_at <= $4
             AND (waiting IS NULL OR waiting <> $2 OR $3::bigint IS NOT NULL)
           RETURNING task_id`,
          [server, reason, until, t],
        );
        return [...new Set(parked.map((r) => r.task_id))];
      },
      async release(owner) {
        return changes(
          `UPDATE operations SET status = 'pending', recheck = 1, lease_owner = NULL, lease_expires_at = NULL,
             updated_at = $1 WHERE lease_owner = $2 AND status = 'running'`,
          [now(), owner],
        );
      },
      async requeueFailed(taskId) {
        const t = now();
        return changes(
          `UPDATE operations SET status = 'pending', recheck = 1, waiting = NULL, next_attempt_at = $1, updated_at = $1
           WHERE task_id = $2 AND status = 'failed'`,
          [t, taskId],
        );
      },
      async recover(server) {
        const t = now();
        const recovered = await rows<{ task_id: string }>(
          `UPDATE operations SET status = 'pending', recheck = 1, waiting = NULL, next_attempt_at = $2, updated_at = $2
           WHERE server = $1 AND status = 'failed' AND retryable = 1 AND next_attempt_at <= $2
           RETURNING task_id`,
          [server, t],
        );
        return [...new Set(recovered.map((r) => r.task_id))];
      },
      async giveUp(cutoff, reason) {
        const t = now();
        const given = await rows<{ task_id: string }>(
          `UPDATE operations SET status = 'failed', retryable = 0, waiting = NULL,
             last_error = $2 || coalesce(last_error, 'no answer'), finished_at = coalesce(finished_at, $3), updated_at = $3
           WHERE created_at < $1 AND ((status = 'failed' AND retryable = 1)
                                      OR (status = 'pending' AND waiting IS NOT NULL))
           RETURNING task_id`,
          [cutoff, reason, t],
        );
        return [...new Set(given.map((r) => r.task_id))];
      },
      async rollback(taskId) {
        return atomic(q, async (c) => {
          const t = now();
          await c.query(
            `UPDATE operations SET status = 'skipped', waiting = NULL, retryable = 0, last_error = 'task rolled back',
               updated_at = $1 WHERE task_id = $2 AND kind = 'create' AND status = 'pending'`,
            [t, taskId],
          );
          await c.query(
            "UPDATE operations SET retryable = 0, updated_at = $1 WHERE task_id = $2 AND kind = 'create' AND status = 'failed'",
            [t, taskId],
          );
          const added = await c.query(
            `INSERT INTO operations (task_id, server, kind, status, priority, idempotency_key,
               remote_id, next_attempt_at, created_at, updated_at)
             SELECT task_id, server, 'compensate', 'pending', priority, task_id || ':' || server || ':compensate',
               remote_id, $2, $2, $2
             FROM operations WHERE task_id = $1 AND kind = 'create' AND status = 'done' AND remote_id IS NOT NULL
             ON CONFLICT (idempotency_key) DO NOTHING`,
            [taskId, t],
          );
          return added.rowCount ?? 0;
        });
      },
      async recentDone(server, limit) {
        return (
          await rows<OperationRow>(
            `SELECT o.* FROM operations o JOIN tasks t ON t.id = o.task_id
             WHERE o.server = $1 AND o.kind = 'create' AND o.status = 'done' AND o.remote_id IS NOT NULL
               AND t.status <> 'rolled_back'
             ORDER BY o.finished_at DESC LIMIT $2`,
            [server, limit],
          )
        ).map(toOperation);
      },
      async requeueForRepair(id) {
        const t = now();
        return (
          (await changes(
            `UPDATE operations SET status = 'pending', recheck = 0, waiting = NULL, next_attempt_at = $1, updated_at = $1
             WHERE id = $2 AND status = 'done'`,
            [t, id],
          )) === 1
        );
      },
      async recentDurations(server, limit) {
        return (
          await rows<{ duration_ms: number }>(
            `SELECT duration_ms FROM operations WHERE server = $1 AND status = 'done' AND duration_ms IS NOT NULL
             ORDER BY finished_at DESC LIMIT $2`,
            [server, limit],
          )
        ).map((r) => r.duration_ms);
      },
      async finishedPerBucket(since, bucketMs, buckets) {
        const counts = await rows<{ b: number; n: number }>(
          `SELECT ((finished_at - $1) / $2)::int AS b, count(*)::int AS n FROM operations
           WHERE finished_at >= $1 AND finished_at < $1 + $2 * $3 GROUP BY 1`,
          [since, bucketMs, buckets],
        );
        const out = Array.from({ length: buckets }, () => 0);
        for (const { b, n } of counts) out[b] = n;
        return out;
      },
      async queueSize() {
        return (
          await rows<{ n: number }>(
            "SELECT count(*)::int AS n FROM operations WHERE status IN ('pending', 'running')",
          )
        )[0]!.n;
      },
      async countByServerStatus() {
        // One branch per status: each counts its own partial index, not the whole table.
        return rows<{ server: string; status: OperationStatus; n: number }>(
          (["pending", "running", "done", "failed", "skipped"] satisfies OperationStatus[])
            .map(
              (status) =>
                `(SELECT server, '${status}' AS status, count(*)::int AS n FROM operations WHERE status = '${status}' GROUP BY server)`,
            )
            .join(" UNION ALL "),
        );
      },
    },

    events: {
      async count(type) {
        return (
          await rows<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE type = $1", [type])
        )[0]!.n;
      },
      async append(type, refs, data = {}) {
        await q.query(
          "INSERT INTO events (task_id, operation_id, type, data, at) VALUES ($1, $2, $3, $4, $5)",
          [refs.taskId ?? null, refs.operationId ?? null, type, JSON.stringify(data), now()],
        );
      },
      async forTask(taskId) {
        return (await rows<EventRow>("SELECT * FROM events WHERE task_id = $1 ORDER BY id", [taskId])).map(
          toEvent,
        );
      },
    },

    alerts: {
      async raise(kind, server, details = {}) {
        const t = now();
        // One open row per kind and server (a unique index): a repeat folds into it.
        const [row] = await rows<AlertRow>(
          `INSERT INTO alerts (kind, server, task_id, status, first_seen, last_seen, details)
           VALUES ($1, $2, NULL, 'open', $3, $3, $4)
           ON CONFLICT (kind, server) WHERE status = 'open' AND task_id IS NULL
           DO UPDATE SET count = alerts.count + 1, last_seen = excluded.last_seen, details = excluded.details
           RETURNING *`,
          [kind, server, t, JSON.stringify(details)],
        );
        return toAlert(row!);
      },
      async notice(kind, server, taskId, details) {
        const t = now();
        const [row] = await rows<AlertRow>(
          `INSERT INTO alerts (kind, server, task_id, status, first_seen, last_seen, details, closed_at)
           VALUES ($1, $2, $3, 'closed', $4, $4, $5, $4) RETURNING *`,
          [kind, server, taskId, t, JSON.stringify(details)],
        );
        return toAlert(row!);
      },
      async resolve(server) {
        const closed = await rows<AlertRow>(
          "UPDATE alerts SET status = 'closed', closed_at = $2 WHERE server = $1 AND status = 'open' RETURNING *",
          [server, now()],
        );
        return closed.map(toAlert).sort((a, b) => a.id - b.id);
      },
      async open() {
        return (await rows<AlertRow>("SELECT * FROM alerts WHERE status = 'open' ORDER BY id")).map(toAlert);
      },
      async recent(limit) {
        return (await rows<AlertRow>("SELECT * FROM alerts ORDER BY id DESC LIMIT $1", [limit])).map(toAlert);
      },
      async get(id) {
        const [row] = await rows<AlertRow>("SELECT * FROM alerts WHERE id = $1", [id]);
        return row ? toAlert(row) : undefined;
      },
      async claimUndelivered(owner, limit, leaseMs) {
        const t = now();
        const claimed = await rows<AlertRow>(
          `UPDATE alerts SET claim_owner = $1, claim_expires_at = $2
           WHERE id IN (SELECT id FROM alerts
                        WHERE delivered_count < count AND (claim_expires_at IS NULL OR claim_expires_at < $3)
                        ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)
           RETURNING *`,
          [owner, t + leaseMs, t, limit],
        );
        return claimed.map(toAlert).sort((a, b) => a.id - b.id);
      },
      async markDelivered(id, owner, count) {
        return (
          (await changes(
            `UPDATE alerts SET delivered_at = $1, delivered_count = $2, claim_owner = NULL, claim_expires_at = NULL
             WHERE id = $3 AND claim_owner = $4`,
            [now(), count, id, owner],
          )) === 1
        );
      },
      async releaseClaim(id, owner) {
        await q.query(
          "UPDATE alerts SET claim_owner = NULL, claim_expires_at = NULL WHERE id = $1 AND claim_owner = $2",
          [id, owner],
        );
      },
      async acknowledge(id, by) {
        await q.query(
          `UPDATE alerts SET acked_by = $1, acked_by_id = $2, acked_at = $3
           WHERE id = $4 AND status = 'open' AND acked_at IS NULL`,
          [by.name, by.userId, now(), id],
        );
        const [row] = await rows<AlertRow>("SELECT * FROM alerts WHERE id = $1", [id]);
        return row ? toAlert(row) : undefined;
      },
    },

    alertRoutes: {
      async start(route, at) {
        await q.query(
          "INSERT INTO alert_routes (route, since) VALUES ($1, $2) ON CONFLICT (route) DO NOTHING",
          [route, at],
        );
        const [row] = await rows<{ since: string }>("SELECT since FROM alert_routes WHERE route = $1", [
          route,
        ]);
        return Number(row!.since);
      },
      async claim(route, owner, since, limit, leaseMs, at) {
        // Claimed by an upsert that takes a row only while nobody holds it.
        const claimed = await rows<{ alert_id: number }>(
          `WITH due AS (
             SELECT a.id FROM alerts a
             LEFT JOIN alert_deliveries d ON d.alert_id = a.id AND d.route = $1
             WHERE a.last_seen >= $2
               AND a.count > coalesce(d.delivered_count, 0)
               AND a.count > coalesce(d.failed_count, 0)
               AND coalesce(d.next_attempt_at, 0) <= $3
               AND coalesce(d.claim_expires_at, 0) < $3
             ORDER BY a.id LIMIT $4)
           INSERT INTO alert_deliveries (alert_id, route, claim_owner, claim_expires_at)
           SELECT id, $1, $5, $6 FROM due
           ON CONFLICT (alert_id, route) DO UPDATE
             SET claim_owner = excluded.claim_owner, claim_expires_at = excluded.claim_expires_at
             WHERE coalesce(alert_deliveries.claim_expires_at, 0) < $3
           RETURNING alert_id`,
          [route, since, at, limit, owner, at + leaseMs],
        );
        if (claimed.length === 0) return [];
        const found = await rows<AlertRow & { route_attempts: number }>(
          `SELECT a.*, d.attempts AS route_attempts FROM alerts a
           JOIN alert_deliveries d ON d.alert_id = a.id AND d.route = $1
           WHERE a.id = ANY($2::bigint[]) ORDER BY a.id`,
          [route, claimed.map((c) => c.alert_id)],
        );
        return found.map((row) => ({ alert: toAlert(row), attempts: row.route_attempts }));
      },
      async delivered(alertId, route, owner, count, at) {
        await q.query(
          `UPDATE alert_deliveries SET delivered_count = $1, delivered_at = $2, attempts = 0, next_attempt_at = NULL,
             last_error = NULL, claim_owner = NULL, claim_expires_at = NULL
           WHERE alert_id = $3 AND route = $4 AND claim_owner = $5`,
          [count, at, alertId, route, owner],
        );
      },
      async retryAt(alertId, route, owner, error, nextAt) {
        await q.query(
          `UPDATE alert_deliveries SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2,
             claim_owner = NULL, claim_expires_at = NULL
           WHERE alert_id = $3 AND route = $4 AND claim_owner = $5`,
          [error.slice(0, 500), nextAt, alertId, route, owner],
        );
      },
      async refused(alertId, route, owner, count, error) {
        await q.query(
          `UPDATE alert_deliveries SET failed_count = $1, last_error = $2, attempts = attempts + 1,
             next_attempt_at = NULL, claim_owner = NULL, claim_expires_at = NULL
           WHERE alert_id = $3 AND route = $4 AND claim_owner = $5`,
          [count, error.slice(0, 500), alertId, route, owner],
        );
      },
      async forAlert(alertId) {
        return (
          await rows<RouteDeliveryRow>("SELECT * FROM alert_deliveries WHERE alert_id = $1 ORDER BY route", [
            alertId,
          ])
        ).map(toRouteDelivery);
      },
      async summary() {
        return (await rows<RouteStateRow>(routeStateSql)).map(toRouteState);
      },
    },

    bot: {
      conversations: {
        async read(key) {
          const [row] = await rows<{ state: string }>("SELECT state FROM conversations WHERE key = $1", [
            key,
          ]);
          return row ? (JSON.parse(row.state) as unknown) : undefined;
        },
        async write(key, state) {
          await q.query(
            `INSERT INTO conversations (key, state, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
            [key, JSON.stringify(state), now()],
          );
        },
        async delete(key) {
          await q.query("DELETE FROM conversations WHERE key = $1", [key]);
        },
      },
      mutes: {
        async mute(server, until) {
          await q.query(
            "INSERT INTO mutes (server, until) VALUES ($1, $2) ON CONFLICT (server) DO UPDATE SET until = excluded.until",
            [server, until],
          );
        },
        async unmute(server) {
          if (server) await q.query("DELETE FROM mutes WHERE server = $1", [server]);
          else await q.query("DELETE FROM mutes");
        },
        async active() {
          return rows<{ server: string; until: number }>(
            "SELECT server, until FROM mutes WHERE until > $1 ORDER BY server",
            [now()],
          );
        },
        async isMuted(server) {
          const found = await rows<{ n: number }>(
            "SELECT count(*)::int AS n FROM mutes WHERE until > $1 AND (server = '*' OR server = $2)",
            [now(), server],
          );
          return found[0]!.n > 0;
        },
      },
      timezones: {
        async get(userId) {
          const [row] = await rows<{ timezone: string | null }>(
            "SELECT timezone FROM user_settings WHERE user_id = $1",
            [userId],
          );
          return row?.timezone ?? undefined;
        },
        async set(userId, zone) {
          await q.query(
            `INSERT INTO user_settings (user_id, timezone, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (user_id) DO UPDATE SET timezone = excluded.timezone, updated_at = excluded.updated_at`,
            [userId, zone, now()],
          );
        },
      },
      alertMessages: {
        async set(alertId, chatId, messageId) {
          await q.query("UPDATE alerts SET chat_id = $1, message_id = $2 WHERE id = $3", [
            chatId,
            messageId,
            alertId,
          ]);
        },
        async get(alertId) {
          const [row] = await rows<{ chat_id: string | null; message_id: number | null }>(
            "SELECT chat_id, message_id FROM alerts WHERE id = $1",
            [alertId],
          );
          return row?.chat_id && row.message_id
            ? { chatId: row.chat_id, messageId: row.message_id }
            : undefined;
        },
        async openGroup(since, server) {
          const [row] = await rows<{ chat_id: string; message_id: number }>(
            `SELECT chat_id, message_id FROM alerts
             WHERE status = 'open' AND message_id IS NOT NULL AND first_seen >= $1 AND server <> $2
             ORDER BY id DESC LIMIT 1`,
            [since, server],
          );
          return row ? { chatId: row.chat_id, messageId: Number(row.message_id) } : undefined;
        },
        async sharing(chatId, messageId) {
          return (
            await rows<AlertRow>("SELECT * FROM alerts WHERE chat_id = $1 AND message_id = $2 ORDER BY id", [
              chatId,
              messageId,
            ])
          ).map(toAlert);
        },
      },
    },

    dispatchers: {
      async register(owner, process, isGone) {
        return atomic(q, async (c) => {
          const { rows: all } = await c.query<{ owner: string; process: string }>(
            "SELECT owner, process FROM dispatchers FOR UPDATE",
          );
          const gone = all.filter((r) => r.owner !== owner && isGone(r.process));
          let rechecked = 0;
          if (gone.length > 0) {
            const owners = gone.map((r) => r.owner);
            await c.query("DELETE FROM dispatchers WHERE owner = ANY($1::text[])", [owners]);
            const marked = await c.query(
              `UPDATE operations SET recheck = 1, updated_at = $1
               WHERE status IN ('pending', 'running') AND recheck = 0`,
              [now()],
            );
            rechecked = marked.rowCount ?? 0;
            // Nothing of a dead run's runs any more: its claims need not wait for their leases.
            await c.query(
              `UPDATE operations SET status = 'pending', recheck = 1, lease_owner = NULL, lease_expires_at = NULL,
                 updated_at = $2 WHERE status = 'running' AND lease_owner = ANY($1::text[])`,
              [owners, now()],
            );
          }
          await c.query(
            `INSERT INTO dispatchers (owner, process, started_at) VALUES ($1, $2, $3)
             ON CONFLICT (owner) DO UPDATE SET process = excluded.process, started_at = excluded.started_at`,
            [owner, process, now()],
          );
          return { gone: gone.map((r) => r.owner), rechecked };
        });
      },
      async unregister(owner) {
        await q.query("DELETE FROM dispatchers WHERE owner = $1", [owner]);
      },
    },
  };
}
