import type { OperationStatus } from "../../domain/task.js";
import { toOperation, type OperationRow } from "../rows.js";
import { blockedUntil, type ClaimRef, type Outcome, type StoreQueries } from "../store.js";
import { atomic, type Queryable, statementsOn } from "./sql.js";

/** The advisory lock class of a serial server's claim turn ("tg"; singletons use 0x7466). */
const serialLockClass = 0x7467;

// The fence, on $1 (id), $2 (owner), $3 (token): this claim still holds the operation.
const holds = "id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'running'";

// What a blocked operation waits for has settled, or is parked; for a change, every earlier
// operation of its task on its server has settled: as in the SQLite store.
const nothingOpen = `NOT EXISTS (
     SELECT 1 FROM operations p WHERE p.task_id = operations.task_id AND p.kind = operations.kind
       AND position(',' || p.server || ',' IN ',' || operations.waits_for || ',') > 0
       AND (p.status = 'running' OR (p.status = 'pending' AND p.waiting IS NULL)))
   AND (operations.kind IN ('create', 'compensate') OR NOT EXISTS (
     SELECT 1 FROM operations e WHERE e.task_id = operations.task_id AND e.server = operations.server
       AND e.id < operations.id AND e.status IN ('pending', 'running')))`;

/**
 * The operations table: claims with leases (`FOR UPDATE SKIP LOCKED`, so two dispatchers never wait
 * for, nor get, the same operation), the fence every outcome write carries, the queue and its counts.
 */
export function createOperationStore(q: Queryable, now: () => number): StoreQueries["operations"] {
  const { rows, changes } = statementsOn(q);
  return {
    async claim(req) {
      return atomic(q, async (c) => {
        const t = now();
        // A lease counts as live until this long past its expiry (see ClaimRequest.overrunMs).
        const liveAfter = (server: string) => t - (req.overrunMs?.get(server) ?? 0);
        const servers = [...req.capacity.entries()].filter(([, free]) => free > 0);
        // A serial server's claimers take turns: its lock, held to the commit, taken in name
        // order so two claimers never wait for each other; then, in a statement of its own (it
        // must see what the last holder of the lock committed), the ones another live
        // dispatcher is calling, which are passed by.
        const serial = servers.map(([s]) => s).filter((s) => req.serial?.has(s));
        let busy = new Set<string>();
        if (serial.length > 0) {
          await c.query(
            `SELECT count(pg_advisory_xact_lock($1, hashtext(s)))
             FROM (SELECT s FROM unnest($2::text[]) AS s ORDER BY s) AS ordered`,
            [serialLockClass, serial],
          );
          const calling = await c.query<{ server: string }>(
            `SELECT DISTINCT o.server FROM operations o JOIN dispatchers d ON d.owner = o.lease_owner
             JOIN unnest($1::text[], $2::bigint[]) AS s(server, live_after) ON s.server = o.server
             WHERE o.status = 'running' AND o.lease_owner <> $3 AND o.lease_expires_at >= s.live_after`,
            [serial, serial.map(liveAfter), req.owner],
          );
          busy = new Set(calling.rows.map((r) => r.server));
        }
        const open = servers.filter(([s]) => !busy.has(s));
        if (open.length === 0 || req.limit <= 0) return [];
        // One statement for every server: per server, running ones whose lease ran out longer
        // ago than a call started in time could still be at work (on the poll), then due ones,
        // locked with SKIP LOCKED until this transaction ends (another dispatcher passes them
        // by); across servers, priority 1 first, then the oldest.
        const { rows: taken } = await c.query<OperationRow>(
          `WITH cap AS (
             SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[]) AS c(server, n, orphaned_before)),
           orphan AS (
             SELECT x.* FROM cap CROSS JOIN LATERAL (
               SELECT id, server, priority, created_at FROM operations
               WHERE $4::boolean AND server = cap.server AND status = 'running'
                 AND lease_expires_at < cap.orphaned_before
               ORDER BY lease_expires_at LIMIT cap.n FOR UPDATE SKIP LOCKED) AS x),
           due AS (
             SELECT x.* FROM cap CROSS JOIN LATERAL (
               SELECT id, server, priority, created_at FROM operations
               WHERE server = cap.server AND status = 'pending' AND next_attempt_at <= $5
               ORDER BY next_attempt_at, id
               LIMIT greatest(cap.n - (SELECT count(*) FROM orphan WHERE orphan.server = cap.server), 0)
               FOR UPDATE SKIP LOCKED) AS x),
           picked AS (
             SELECT id FROM (SELECT * FROM orphan UNION ALL SELECT * FROM due) AS candidates
             ORDER BY priority, created_at, id LIMIT $6)
           UPDATE operations
           SET recheck = CASE WHEN status = 'running' THEN 1 ELSE recheck END,
               attempts = attempts + 1,
               status = 'running', lease_owner = $7, lease_expires_at = $8, waiting = NULL,
               started_at = coalesce(started_at, $5), updated_at = $5
           WHERE id IN (SELECT id FROM picked) AND ((status = 'pending' AND next_attempt_at <= $5)
                              OR (status = 'running' AND lease_expires_at < $5))
           RETURNING *`,
          [
            open.map(([s]) => s),
            open.map(([, free]) => Math.min(free, req.limit)),
            open.map(([s]) => liveAfter(s)),
            req.orphans !== false,
            t,
            req.limit,
            req.owner,
            t + req.leaseMs,
          ],
        );
        return taken
          .map(toOperation)
          .sort((a, b) => a.priority - b.priority || a.createdAt - b.createdAt || a.id - b.id);
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
    async addChanges(taskId, kind, ops, supersedes) {
      return atomic(q, async (c) => {
        const t = now();
        const skipped =
          supersedes.length > 0
            ? ((
                await c.query(
                  `UPDATE operations SET status = 'skipped', waiting = NULL, last_error = $3, finished_at = $4,
                     updated_at = $4
                   WHERE task_id = $1 AND status = 'pending' AND kind = ANY($2::text[])`,
                  [taskId, supersedes, `superseded by a later ${kind}`, t],
                )
              ).rowCount ?? 0)
            : 0;
        // One statement for every server's operation.
        await c.query(
          `INSERT INTO operations (task_id, server, kind, status, priority, idempotency_key, remote_id,
             next_attempt_at, created_at, updated_at)
           SELECT $1, u.server, $2, 'pending', u.priority, u.key, u.remote_id, $3, $4, $4
           FROM unnest($5::text[], $6::int[], $7::text[], $8::text[]) AS u(server, priority, key, remote_id)`,
          [
            taskId,
            kind,
            blockedUntil,
            t,
            ops.map((o) => o.server),
            ops.map((o) => o.priority),
            ops.map((o) => o.idempotencyKey),
            ops.map((o) => o.remoteId),
          ],
        );
        return skipped;
      });
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
      return (await finishAll(q, now(), [finishValues(id, claim, outcome)])).has(id);
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
    async recover(servers) {
      if (servers.length === 0) return [];
      // The failed ones, and those parked for their server (breaker, restart backoff) past
      // now, due now that it answers: two sets of rows apart, in one statement.
      const touched = await rows<{ task_id: string }>(
        `WITH recovered AS (
           UPDATE operations SET status = 'pending', recheck = 1, waiting = NULL, next_attempt_at = $2,
             updated_at = $2
           WHERE server = ANY($1::text[]) AND status = 'failed' AND retryable = 1 AND next_attempt_at <= $2
           RETURNING task_id),
         unparked AS (
           UPDATE operations SET waiting = NULL, next_attempt_at = $2, updated_at = $2
           WHERE server = ANY($1::text[]) AND status = 'pending' AND waiting IS NOT NULL AND next_attempt_at > $2
           RETURNING task_id)
         SELECT DISTINCT task_id FROM (SELECT task_id FROM recovered UNION ALL SELECT task_id FROM unparked) AS t`,
        [servers, now()],
      );
      return touched.map((r) => r.task_id);
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
             updated_at = $1 WHERE task_id = $2 AND kind <> 'compensate' AND status = 'pending'`,
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
             AND t.status <> 'rolled_back' AND t.state <> 'deleted'
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
      // Per bucket: its whole minutes from finished_counts (kept by triggers, postgres
      // migration 0009), the parts of a minute at its edges counted from the index; a bucket
      // with no whole minute in it, counted from the index alone.
      const counts = await rows<{ n: number }>(
        `SELECT (CASE WHEN m1 > m0 THEN
             coalesce((SELECT sum(n) FROM finished_counts WHERE minute >= m0 AND minute < m1), 0)
             + (SELECT count(*) FROM operations WHERE finished_at >= lo AND finished_at < m0 * 60000)
             + (SELECT count(*) FROM operations WHERE finished_at >= m1 * 60000 AND finished_at < hi)
           ELSE (SELECT count(*) FROM operations WHERE finished_at >= lo AND finished_at < hi) END)::int AS n
         FROM (SELECT i, lo, hi, (lo + 59999) / 60000 AS m0, hi / 60000 AS m1
               FROM (SELECT i, $1::bigint + i * $2::bigint AS lo, $1::bigint + (i + 1) * $2::bigint AS hi
                     FROM generate_series(0, $3::int - 1) AS i) r) b
         ORDER BY i`,
        [since, bucketMs, buckets],
      );
      return counts.map((r) => r.n);
    },
    // Counts from operation_counts, whose rows triggers append as operations change and
    // compact_counts() folds (postgres migration 0009): a few rows however many are stored.
    async queueSize() {
      return (
        await rows<{ n: number }>(
          "SELECT coalesce(sum(n), 0)::int AS n FROM operation_counts WHERE status IN ('pending', 'running')",
        )
      )[0]!.n;
    },
    async countByServerStatus() {
      return rows<{ server: string; status: OperationStatus; n: number }>(
        "SELECT server, status, sum(n)::int AS n FROM operation_counts GROUP BY server, status HAVING sum(n) <> 0",
      );
    },
  };
}

/**
 * The operations table on a transaction's client: outcomes recorded in the same turn (a group
 * commit writes its batch at once) go as one statement, each fenced by its own claim, and
 * each caller learns whether its claim still held.
 */
export function transactionOperations(q: Queryable, now: () => number): StoreQueries["operations"] {
  const table = createOperationStore(q, now);
  type Kept = {
    values: FinishValues;
    settle: { resolve: (ok: boolean) => void; reject: (error: unknown) => void };
  };
  let kept: Kept[] = [];
  const send = async () => {
    const batch = kept;
    kept = [];
    try {
      const held = await finishAll(
        q,
        now(),
        batch.map((b) => b.values),
      );
      for (const b of batch) b.settle.resolve(held.has(b.values[0]));
    } catch (error) {
      for (const b of batch) b.settle.reject(error);
    }
  };
  return {
    ...table,
    finish(id, claim, outcome) {
      return new Promise<boolean>((resolve, reject) => {
        kept.push({ values: finishValues(id, claim, outcome), settle: { resolve, reject } });
        // The others of this turn join it.
        if (kept.length === 1) queueMicrotask(() => void send());
      });
    },
  };
}

type FinishValues = [number, string, number, string, string | null, string | null, number];

/** One outcome's row, as `finishAll` takes it. */
function finishValues(id: number, claim: ClaimRef, outcome: Outcome): FinishValues {
  return [
    id,
    claim.owner,
    claim.token,
    outcome.status,
    outcome.remoteId,
    outcome.note ?? null,
    Math.round(outcome.durationMs),
  ];
}

/**
 * Outcomes in one statement, each fenced by its own claim (`holds`, row by row): the ids
 * whose claim still held.
 */
async function finishAll(q: Queryable, at: number, batch: readonly FinishValues[]): Promise<Set<number>> {
  const column = <K extends number>(k: K) => batch.map((b) => b[k]);
  const { rows } = await q.query<{ id: number }>(
    `UPDATE operations o SET status = u.status, remote_id = coalesce(u.remote_id, o.remote_id),
       last_error = u.note, retryable = 0, waiting = NULL, recheck = 0, lease_owner = NULL,
       lease_expires_at = NULL, duration_ms = u.ms, total_ms = o.total_ms + u.ms,
       finished_at = $1, updated_at = $1
     FROM unnest($2::bigint[], $3::text[], $4::int[], $5::text[], $6::text[], $7::text[], $8::int[])
       AS u(id, owner, token, status, remote_id, note, ms)
     WHERE o.id = u.id AND o.lease_owner = u.owner AND o.attempts = u.token AND o.status = 'running'
     RETURNING o.id`,
    [at, column(0), column(1), column(2), column(3), column(4), column(5), column(6)],
  );
  return new Set(rows.map((r) => r.id));
}
