import type { ChangeKind, Operation, OperationStatus } from "../../domain/task.js";
import {
  blockedUntil,
  type ClaimRef,
  type ClaimRequest,
  type Failure,
  type NewChangeRow,
  type OperationState,
  type Outcome,
} from "../store.js";
import type { Db } from "./open-database.js";
import { toOperation, type OperationRow } from "../rows.js";

const minute = 60_000;

export function createOperationStore(db: Db, now: () => number) {
  // Each status index is partial: a query names its status with `status = '...'`, so
  // SQLite can use it.
  // Due for one server, oldest due first, straight off the index of pending operations:
  // the cost is the batch size, not the backlog. An operation that waits for others of its
  // task sits at `blockedUntil` until they settle (see releaseWaiting). Candidates are read
  // with what orders them only; the claim returns the full rows.
  type Candidate = Pick<OperationRow, "id" | "priority" | "created_at">;
  const dueForServer = db.prepare<[Record<string, unknown>], Candidate>(
    `SELECT id, priority, created_at FROM operations
     WHERE server = @server AND status = 'pending' AND next_attempt_at <= @now
     ORDER BY next_attempt_at, id LIMIT @limit`,
  );
  // Running with a lease that ran out (its owner died, hangs or lost the database) longer
  // ago than a call it started in time could still be at work on the server.
  const orphanedForServer = db.prepare<[Record<string, unknown>], Candidate>(
    `SELECT id, priority, created_at FROM operations
     WHERE status = 'running' AND lease_expires_at < @now - @overrun AND server = @server
     ORDER BY lease_expires_at LIMIT @limit`,
  );
  // What it waits for has settled, or is parked (its server is down): a parked dependency
  // does not hold the others back.
  // A change waits for every earlier operation of its task on its server, parked or not:
  // it never runs there before the create, nor before an earlier change.
  const nothingOpen = `NOT EXISTS (
       SELECT 1 FROM operations p INDEXED BY operations_by_task WHERE p.task_id = operations.task_id AND p.kind = operations.kind
         AND instr(',' || operations.waits_for || ',', ',' || p.server || ',') > 0
         AND (p.status = 'running' OR (p.status = 'pending' AND p.waiting IS NULL)))
     AND (operations.kind IN ('create', 'compensate') OR NOT EXISTS (
       SELECT 1 FROM operations e INDEXED BY operations_by_task WHERE e.task_id = operations.task_id
         AND e.server = operations.server AND e.id < operations.id AND e.status IN ('pending', 'running')))`;
  const supersede = db.prepare<[Record<string, unknown>]>(
    `UPDATE operations INDEXED BY operations_by_task
     SET status = 'skipped', waiting = NULL, last_error = @note, finished_at = @now, updated_at = @now
     WHERE task_id = @taskId AND status = 'pending' AND instr(@kinds, ',' || kind || ',') > 0`,
  );
  const insertChange = db.prepare<[Record<string, unknown>]>(
    `INSERT INTO operations (task_id, server, kind, status, priority, idempotency_key, remote_id,
       next_attempt_at, created_at, updated_at)
     VALUES (@taskId, @server, @kind, 'pending', @priority, @key, @remoteId, @blocked, @now, @now)`,
  );
  const releaseTask = db.prepare<[Record<string, unknown>], { server: string }>(
    `UPDATE operations INDEXED BY operations_by_task SET next_attempt_at = @now, updated_at = @now
     WHERE task_id = @taskId AND status = 'pending' AND next_attempt_at = @blocked AND ${nothingOpen}
     RETURNING server`,
  );
  const releaseAll = db.prepare<[Record<string, unknown>]>(
    `UPDATE operations SET next_attempt_at = @now, updated_at = @now
     WHERE status = 'pending' AND next_attempt_at = @blocked AND ${nothingOpen}`,
  );
  const claimOne = db.prepare<[Record<string, unknown>], OperationRow>(
    `UPDATE operations
     SET recheck = CASE WHEN status = 'running' THEN 1 ELSE recheck END,
         attempts = attempts + 1,
         status = 'running', lease_owner = @owner, lease_expires_at = @expires, waiting = NULL,
         started_at = coalesce(started_at, @now), updated_at = @now
     WHERE id = @id AND ((status = 'pending' AND next_attempt_at <= @now)
                      OR (status = 'running' AND lease_expires_at < @now))
     RETURNING *`,
  );
  const forTask = db.prepare<[string], OperationRow>(
    "SELECT * FROM operations WHERE task_id = ? ORDER BY priority, id",
  );
  const statesOf = db
    .prepare<
      [string],
      [string, Operation["kind"], Operation["status"], string | null, number, number, string | null]
    >(
      "SELECT server, kind, status, waiting, attempts, next_attempt_at, waits_for FROM operations WHERE task_id = ?",
    )
    .raw();
  // A lease that ran out is not renewed: another dispatcher may have called its server since.
  const renew = db.prepare<[Record<string, unknown>], { id: number }>(
    `UPDATE operations SET lease_expires_at = max(lease_expires_at, @expires), updated_at = @now
     WHERE lease_owner = @owner AND status = 'running' AND lease_expires_at >= @now RETURNING id`,
  );
  // The fence: this claim (owner and token) still holds a lease that has not run out. A
  // renewal never shortens a lease (a holder may rely on a longer one it was given).
  const holds = "id = @id AND lease_owner = @owner AND attempts = @token AND status = 'running'";
  const renewClaim = db.prepare<[Record<string, unknown>]>(
    `UPDATE operations SET lease_expires_at = max(lease_expires_at, @expires), updated_at = @now
     WHERE ${holds} AND lease_expires_at >= @now`,
  );
  const startAttempt = db.prepare<[Record<string, unknown>]>(
    `UPDATE operations SET attempts = attempts + 1, lease_expires_at = max(lease_expires_at, @expires),
       updated_at = @now
     WHERE ${holds} AND lease_expires_at >= @now`,
  );
  const finish = db.prepare<[Record<string, unknown>]>(
    `UPDATE operations SET status = @status, remote_id = coalesce(@remoteId, remote_id),
       last_error = @note, retryable = 0, waiting = NULL, recheck = 0, lease_owner = NULL,
       lease_expires_at = NULL, duration_ms = @ms, total_ms = total_ms + @ms,
       finished_at = @now, updated_at = @now
     WHERE ${holds}`,
  );
  const fail = db.prepare<[Record<string, unknown>]>(
    `UPDATE operations SET status = 'failed', last_error = @error, retryable = @retryable,
       recheck = max(recheck, @recheck), next_attempt_at = coalesce(@recoverAt, next_attempt_at),
       lease_owner = NULL, lease_expires_at = NULL,
       duration_ms = @ms, total_ms = total_ms + @ms, finished_at = @now, updated_at = @now
     WHERE ${holds}`,
  );
  const park = db.prepare<[Record<string, unknown>]>(
    `UPDATE operations SET status = 'pending', waiting = @reason, last_error = @reason,
       recheck = max(recheck, @recheck), next_attempt_at = @until, lease_owner = NULL,
       lease_expires_at = NULL, total_ms = total_ms + @ms, updated_at = @now
     WHERE ${holds}`,
  );
  const notParked = "(waiting IS NULL OR waiting <> @reason OR @until IS NOT NULL)";
  const dueTaskIds = db.prepare<[Record<string, unknown>], { task_id: string }>(
    `SELECT DISTINCT task_id FROM operations
     WHERE server = @server AND status = 'pending' AND next_attempt_at <= @now AND ${notParked}`,
  );
  const parkWaiting = db.prepare<[Record<string, unknown>]>(
    `UPDATE operations SET waiting = @reason, last_error = @reason, next_attempt_at = coalesce(@until, next_attempt_at),
       updated_at = @now
     WHERE server = @server AND status = 'pending' AND next_attempt_at <= @now AND ${notParked}`,
  );
  const release = db.prepare<[number, string]>(
    `UPDATE operations SET status = 'pending', recheck = 1, lease_owner = NULL, lease_expires_at = NULL,
       updated_at = ? WHERE lease_owner = ? AND status = 'running'`,
  );
  const requeueFailed = db.prepare<[number, number, string]>(
    `UPDATE operations SET status = 'pending', recheck = 1, waiting = NULL, next_attempt_at = ?, updated_at = ?
     WHERE task_id = ? AND status = 'failed'`,
  );
  const recoverable = db.prepare<[string, number], { id: number; task_id: string }>(
    `SELECT id, task_id FROM operations WHERE server = ? AND status = 'failed' AND retryable = 1
       AND next_attempt_at <= ? ORDER BY priority, created_at`,
  );
  const recoverOne = db.prepare<[number, number, number]>(
    `UPDATE operations SET status = 'pending', recheck = 1, waiting = NULL, next_attempt_at = ?, updated_at = ?
     WHERE id = ? AND status = 'failed' AND retryable = 1`,
  );
  // Parked for their server (breaker, restart backoff) past now: due now that it answers.
  const parkedForServer = db.prepare<[string, number], { id: number; task_id: string }>(
    `SELECT id, task_id FROM operations WHERE server = ? AND status = 'pending' AND waiting IS NOT NULL
       AND next_attempt_at > ? ORDER BY priority, created_at`,
  );
  const unparkOne = db.prepare<[number, number, number]>(
    `UPDATE operations SET waiting = NULL, next_attempt_at = ?, updated_at = ?
     WHERE id = ? AND status = 'pending' AND waiting IS NOT NULL`,
  );
  const staleFailed = db.prepare<[number], { id: number; task_id: string }>(
    "SELECT id, task_id FROM operations WHERE status = 'failed' AND retryable = 1 AND created_at < ?",
  );
  const staleWaiting = db.prepare<[number], { id: number; task_id: string }>(
    "SELECT id, task_id FROM operations WHERE status = 'pending' AND waiting IS NOT NULL AND created_at < ?",
  );
  const giveUpOne = db.prepare<[string, number, number, number]>(
    `UPDATE operations SET status = 'failed', retryable = 0, waiting = NULL,
       last_error = ? || coalesce(last_error, 'no answer'), finished_at = coalesce(finished_at, ?), updated_at = ?
     WHERE id = ?`,
  );
  // Its creates and changes that have not run yet.
  const skipOpenCreates = db.prepare<[number, string]>(
    `UPDATE operations SET status = 'skipped', waiting = NULL, retryable = 0, last_error = 'task rolled back', updated_at = ?
     WHERE task_id = ? AND kind <> 'compensate' AND status = 'pending'`,
  );
  const stopRecovery = db.prepare<[number, string]>(
    "UPDATE operations SET retryable = 0, updated_at = ? WHERE task_id = ? AND kind = 'create' AND status = 'failed'",
  );
  const addCompensations = db.prepare<[Record<string, unknown>]>(
    `INSERT OR IGNORE INTO operations (task_id, server, kind, status, priority, idempotency_key,
       remote_id, next_attempt_at, created_at, updated_at)
     SELECT task_id, server, 'compensate', 'pending', priority, task_id || ':' || server || ':compensate',
       remote_id, @now, @now, @now
     FROM operations WHERE task_id = @taskId AND kind = 'create' AND status = 'done' AND remote_id IS NOT NULL`,
  );
  const recentDone = db.prepare<[string, number], OperationRow>(
    `SELECT o.* FROM operations o JOIN tasks t ON t.id = o.task_id
     WHERE o.server = ? AND o.kind = 'create' AND o.status = 'done' AND o.remote_id IS NOT NULL
       AND t.status <> 'rolled_back' AND t.state <> 'deleted'
     ORDER BY o.finished_at DESC LIMIT ?`,
  );
  const repair = db.prepare<[number, number, number]>(
    `UPDATE operations SET status = 'pending', recheck = 0, waiting = NULL, next_attempt_at = ?, updated_at = ?
     WHERE id = ? AND status = 'done'`,
  );
  const recentDurations = db.prepare<[string, number], { duration_ms: number }>(
    `SELECT duration_ms FROM operations WHERE server = ? AND status = 'done' AND duration_ms IS NOT NULL
     ORDER BY finished_at DESC LIMIT ?`,
  );
  // Counts from operation_counts, which triggers keep as rows change (migration 0016):
  // a few rows read however many operations are stored.
  const queueSize = db.prepare<[], { n: number }>(
    "SELECT coalesce(sum(n), 0) AS n FROM operation_counts WHERE status IN ('pending', 'running')",
  );
  const finishedBetween = db.prepare<[number, number], { n: number }>(
    "SELECT count(*) AS n FROM operations WHERE finished_at >= ? AND finished_at < ?",
  );
  const finishedMinutes = db.prepare<[number, number], { n: number }>(
    "SELECT coalesce(sum(n), 0) AS n FROM finished_counts WHERE minute >= ? AND minute < ?",
  );
  const countByServerStatus = db.prepare<[], { server: string; status: OperationStatus; n: number }>(
    "SELECT server, status, n FROM operation_counts WHERE n <> 0",
  );

  // A serial server another live dispatcher is calling, or may still be (BEGIN IMMEDIATE:
  // claimers take turns).
  const othersCalling = db.prepare<
    { server: string; owner: string; now: number; overrun: number },
    { one: number }
  >(
    `SELECT 1 AS one FROM operations o JOIN dispatchers d ON d.owner = o.lease_owner
     WHERE o.server = @server AND o.status = 'running' AND o.lease_owner <> @owner
       AND o.lease_expires_at >= @now - @overrun LIMIT 1`,
  );
  const claim = db.transaction((req: ClaimRequest): Operation[] => {
    const t = now();
    const candidates: Candidate[] = [];
    for (const [server, free] of req.capacity) {
      if (free <= 0) continue;
      const overrun = req.overrunMs?.get(server) ?? 0;
      if (req.serial?.has(server) && othersCalling.get({ server, owner: req.owner, now: t, overrun }))
        continue;
      const limit = Math.min(free, req.limit);
      const orphans = req.orphans === false ? [] : orphanedForServer.all({ server, now: t, limit, overrun });
      candidates.push(...orphans, ...dueForServer.all({ server, now: t, limit: limit - orphans.length }));
    }
    // Across servers: priority 1 first, then the oldest.
    candidates.sort((a, b) => a.priority - b.priority || a.created_at - b.created_at || a.id - b.id);
    const claimed: Operation[] = [];
    for (const row of candidates) {
      if (claimed.length >= req.limit) break;
      const taken = claimOne.get({ id: row.id, owner: req.owner, expires: t + req.leaseMs, now: t });
      if (taken) claimed.push(toOperation(taken));
    }
    return claimed;
  });

  return {
    /** Claims due operations with a lease; two dispatchers never get the same one. */
    claim(req: ClaimRequest): Operation[] {
      return claim.immediate(req);
    },
    forTask(taskId: string): Operation[] {
      return forTask.all(taskId).map(toOperation);
    },
    /** The fields a task's status and its waits are derived from, read in one go. */
    statesOf(taskId: string): OperationState[] {
      return statesOf
        .all(taskId)
        .map(([server, kind, status, waiting, attempts, nextAttemptAt, waitsFor]) => ({
          server,
          kind,
          status,
          waiting,
          attempts,
          nextAttemptAt,
          waitsFor: waitsFor ? waitsFor.split(",") : [],
        }));
    },
    renewLeases(owner: string, leaseMs: number): number[] {
      const t = now();
      return renew.all({ owner, expires: t + leaseMs, now: t }).map((r) => r.id);
    },
    renewClaim(id: number, claim: ClaimRef, leaseMs: number): boolean {
      const t = now();
      return renewClaim.run({ id, ...claim, expires: t + leaseMs, now: t }).changes === 1;
    },
    /** Lets a task's blocked operations run once what they wait for has settled; their servers. */
    addChanges(
      taskId: string,
      kind: ChangeKind,
      ops: readonly NewChangeRow[],
      supersedes: readonly ChangeKind[],
    ): number {
      return db
        .transaction(() => {
          const t = now();
          const skipped =
            supersedes.length > 0
              ? supersede.run({
                  taskId,
                  kinds: `,${supersedes.join(",")},`,
                  note: `superseded by a later ${kind}`,
                  now: t,
                }).changes
              : 0;
          for (const op of ops) {
            insertChange.run({
              taskId,
              server: op.server,
              kind,
              priority: op.priority,
              key: op.idempotencyKey,
              remoteId: op.remoteId,
              blocked: blockedUntil,
              now: t,
            });
          }
          return skipped;
        })
        .immediate();
    },
    releaseWaiting(taskId: string): string[] {
      return releaseTask.all({ taskId, now: now(), blocked: blockedUntil }).map((r) => r.server);
    },
    /** The same for every task, at start: a crash may have fallen between an outcome and its release. */
    releaseAllWaiting(): number {
      return releaseAll.run({ now: now(), blocked: blockedUntil }).changes;
    },
    startAttempt(id: number, claim: ClaimRef, leaseMs: number): boolean {
      const t = now();
      return startAttempt.run({ id, ...claim, expires: t + leaseMs, now: t }).changes === 1;
    },
    finish(id: number, claim: ClaimRef, outcome: Outcome): boolean {
      return (
        finish.run({
          id,
          ...claim,
          status: outcome.status,
          remoteId: outcome.remoteId,
          note: outcome.note ?? null,
          ms: Math.round(outcome.durationMs),
          now: now(),
        }).changes === 1
      );
    },
    fail(id: number, claim: ClaimRef, failure: Failure): boolean {
      return (
        fail.run({
          id,
          ...claim,
          error: failure.error,
          retryable: failure.retryable ? 1 : 0,
          recheck: failure.recheck ? 1 : 0,
          recoverAt: failure.recoverAt ?? null,
          ms: Math.round(failure.durationMs),
          now: now(),
        }).changes === 1
      );
    },
    /** Back to pending, waiting for its server, until `until`. */
    park(
      id: number,
      claim: ClaimRef,
      p: { reason: string; until: number; durationMs: number; recheck: boolean },
    ): boolean {
      return (
        park.run({
          id,
          ...claim,
          reason: p.reason,
          until: p.until,
          recheck: p.recheck ? 1 : 0,
          ms: Math.round(p.durationMs),
          now: now(),
        }).changes === 1
      );
    },
    parkServer(server: string, reason: string, until: number | null): string[] {
      return db
        .transaction(() => {
          const t = now();
          const ids = dueTaskIds.all({ server, reason, until, now: t }).map((r) => r.task_id);
          if (ids.length > 0) parkWaiting.run({ server, reason, until, now: t });
          return ids;
        })
        .immediate();
    },
    /** Returns this owner's running operations to pending (graceful shutdown). */
    release(owner: string): number {
      return release.run(now(), owner).changes;
    },
    /** Failed operations of a task back to pending; they look before creating again. */
    requeueFailed(taskId: string): number {
      const t = now();
      return requeueFailed.run(t, t, taskId).changes;
    },
    /** Failed-but-retryable operations of these servers, due for recovery, back to pending. */
    recover(servers: readonly string[]): string[] {
      return db
        .transaction(() => {
          const t = now();
          const touched = new Set<string>();
          for (const server of servers) {
            const rows = recoverable.all(server, t);
            for (const r of rows) recoverOne.run(t, t, r.id);
            const parked = parkedForServer.all(server, t);
            for (const r of parked) unparkOne.run(t, t, r.id);
            for (const r of [...rows, ...parked]) touched.add(r.task_id);
          }
          return [...touched];
        })
        .immediate();
    },
    /** Operations older than `cutoff` that still wait or wait to be recovered: failed for good. */
    giveUp(cutoff: number, reason: string): string[] {
      return db
        .transaction(() => {
          const t = now();
          const rows = [...staleFailed.all(cutoff), ...staleWaiting.all(cutoff)];
          for (const r of rows) giveUpOne.run(reason, t, t, r.id);
          return [...new Set(rows.map((r) => r.task_id))];
        })
        .immediate();
    },
    /**
     * Rolls a task back: its unfinished creates are skipped, and every create that
     * succeeded gets a compensation (once; calling again adds only the missing ones).
     */
    rollback(taskId: string): number {
      return db
        .transaction(() => {
          const t = now();
          skipOpenCreates.run(t, taskId);
          stopRecovery.run(t, taskId);
          return addCompensations.run({ taskId, now: t }).changes;
        })
        .immediate();
    },
    /** The most recently finished done creates of a server, for read-back. */
    recentDone(server: string, limit: number): Operation[] {
      return recentDone.all(server, limit).map(toOperation);
    },
    /** A done operation whose record vanished from its server: create it again. */
    requeueForRepair(id: number): boolean {
      const t = now();
      return repair.run(t, t, id).changes === 1;
    },
    recentDurations(server: string, limit: number): number[] {
      return recentDurations.all(server, limit).map((r) => r.duration_ms);
    },
    /** Operations finished per bucket since `since`, oldest bucket first. */
    finishedPerBucket(since: number, bucketMs: number, buckets: number): number[] {
      // Per bucket: its whole minutes from finished_counts (kept by triggers, migration
      // 0016), the parts of a minute at its edges counted from the index; a bucket with no
      // whole minute in it, counted from the index alone.
      return Array.from({ length: buckets }, (_, b) => {
        const from = since + b * bucketMs;
        const to = from + bucketMs;
        const [m0, m1] = [Math.ceil(from / minute), Math.floor(to / minute)];
        if (m1 <= m0) return finishedBetween.get(from, to)!.n;
        return (
          finishedMinutes.get(m0, m1)!.n +
          finishedBetween.get(from, m0 * minute)!.n +
          finishedBetween.get(m1 * minute, to)!.n
        );
      });
    },
    queueSize(): number {
      return queueSize.get()!.n;
    },
    countByServerStatus() {
      return countByServerStatus.all();
    },
  };
}
