import type { TaskStatus } from "../../domain/task.js";
import { taskFilterSql, toOperation, toTask, type OperationRow, type TaskRow } from "../rows.js";
import { blockedUntil, type StoreQueries, type TaskChange } from "../store.js";
import { atomic, type Queryable, statementsOn } from "./sql.js";

/** The tasks table: a task with its operations in one commit, its status, its idempotency key. */
export function createTaskStore(q: Queryable, now: () => number): StoreQueries["tasks"] {
  const { rows, changes } = statementsOn(q);
  return {
    async insertWithOperations(id, task, key, ops, owner) {
      // One statement, so one round trip and its own commit (or the caller's transaction's):
      // the task, its operations (those stored claimed come back) and nothing read back.
      const t = now();
      const leased = (op: (typeof ops)[number]) => (op.waitsFor.length === 0 ? op.lease : undefined);
      const [row] = await rows<{ task: TaskRow; claimed: OperationRow[] }>(
        `WITH t AS (
           INSERT INTO tasks (id, title, description, priority, deadline, tags, status, idempotency_key,
             idempotency_hash, chat_id, user_id, remind, created_at, updated_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $11, $12, $13, $10, $10) RETURNING *),
         o AS (
           INSERT INTO operations (task_id, server, kind, status, waits_for, priority, idempotency_key,
             attempts, lease_owner, lease_expires_at, next_attempt_at, created_at, started_at, updated_at)
           SELECT t.id, u.server, 'create', CASE WHEN u.owner IS NULL THEN 'pending' ELSE 'running' END,
             u.waits_for, u.priority, u.key, CASE WHEN u.owner IS NULL THEN 0 ELSE 1 END, u.owner,
             u.expires, u.due, $10, CASE WHEN u.owner IS NULL THEN NULL ELSE $10 END, $10
           FROM t, unnest($14::text[], $15::text[], $16::int[], $17::text[], $18::text[], $19::bigint[],
             $20::bigint[]) WITH ORDINALITY AS u(server, waits_for, priority, key, owner, expires, due, n)
           ORDER BY u.n
           RETURNING *)
         SELECT row_to_json(t) AS task,
           (SELECT coalesce(json_agg(o ORDER BY o.id), '[]') FROM o WHERE o.status = 'running') AS claimed
         FROM t`,
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
          owner?.chatId ?? null,
          owner?.userId ?? null,
          owner?.remind ? JSON.stringify(owner.remind) : null,
          ops.map((op) => op.server),
          ops.map((op) => (op.waitsFor.length > 0 ? op.waitsFor.join(",") : null)),
          ops.map((op) => op.priority),
          ops.map((op) => op.idempotencyKey),
          ops.map((op) => leased(op)?.owner ?? null),
          ops.map((op) => leased(op)?.expiresAt ?? null),
          // One that waits is blocked until what it waits for settles (operations.releaseWaiting).
          ops.map((op) => (op.waitsFor.length === 0 ? t : blockedUntil)),
        ],
      );
      return { task: toTask(row!.task), claimed: row!.claimed.map(toOperation) };
    },
    async applyChange(id, version, change) {
      return atomic(q, async (c) => {
        const t = now();
        const written = await c.query(
          `UPDATE tasks SET title = $3, description = $4, priority = $5, deadline = $6, tags = $7, state = $8,
             completed_at = $9, deleted_at = $10, version = version + 1, updated_at = $11
           WHERE id = $1 AND version = $2`,
          [
            id,
            version,
            change.task.title,
            change.task.description,
            change.task.priority,
            change.task.deadline,
            JSON.stringify(change.task.tags),
            change.state,
            change.completedAt,
            change.deletedAt,
            t,
          ],
        );
        if (written.rowCount !== 1) return false;
        await c.query(
          `INSERT INTO task_changes (task_id, version, kind, fields, source, idempotency_key, idempotency_hash, at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
          [
            id,
            version + 1,
            change.kind,
            JSON.stringify(change.changed),
            change.source,
            change.key?.key ?? null,
            change.key?.hash ?? null,
            t,
          ],
        );
        return true;
      });
    },
    async changeByIdempotencyKey(key) {
      const [row] = await rows<{ task_id: string; version: number; idempotency_hash: string | null }>(
        "SELECT task_id, version, idempotency_hash FROM task_changes WHERE idempotency_key = $1",
        [key],
      );
      return row ? { taskId: row.task_id, version: row.version, hash: row.idempotency_hash } : undefined;
    },
    async changes(taskId) {
      const found = await rows<{
        task_id: string;
        version: number;
        kind: TaskChange["kind"];
        fields: string;
        source: string;
        at: number;
      }>(
        "SELECT task_id, version, kind, fields, source, at FROM task_changes WHERE task_id = $1 ORDER BY version",
        [taskId],
      );
      return found.map((r) => ({
        taskId: r.task_id,
        version: r.version,
        kind: r.kind,
        changed: JSON.parse(r.fields) as TaskChange["changed"],
        source: r.source,
        at: r.at,
      }));
    },
    async list(filter) {
      const { where, params } = taskFilterSql(filter, (n) => `$${n}`);
      const n = params.length;
      return (
        await rows<TaskRow>(
          `SELECT * FROM tasks ${where} ORDER BY created_at DESC, id DESC LIMIT $${n + 1} OFFSET $${n + 2}`,
          [...params, filter.limit, filter.offset ?? 0],
        )
      ).map(toTask);
    },
    async get(id) {
      const [row] = await rows<TaskRow>("SELECT * FROM tasks WHERE id = $1", [id]);
      return row ? toTask(row) : undefined;
    },
    async getMany(ids) {
      if (ids.length === 0) return [];
      return (await rows<TaskRow>("SELECT * FROM tasks WHERE id = ANY($1::text[])", [ids])).map(toTask);
    },
    async lock(id) {
      // Once the lock is granted, the row as the holder before committed it.
      const [row] = await rows<TaskRow>("SELECT * FROM tasks WHERE id = $1 FOR UPDATE", [id]);
      return row ? toTask(row) : undefined;
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
    async count(filter) {
      const { where, params } = taskFilterSql({ ...filter, limit: 0 }, (n) => `$${n}`);
      return (await rows<{ n: number }>(`SELECT count(*)::int AS n FROM tasks ${where}`, params))[0]!.n;
    },
    async countByStatus() {
      const counts = await rows<{ status: TaskStatus; n: number }>(
        "SELECT status, sum(n)::int AS n FROM task_counts GROUP BY status HAVING sum(n) <> 0",
      );
      return Object.fromEntries(counts.map((r) => [r.status, r.n]));
    },
  };
}
