import type { Operation, TaskStatus } from "../../domain/task.js";
import { toOperation, toTask, type OperationRow, type TaskRow } from "../rows.js";
import { blockedUntil, type StoreQueries } from "../store.js";
import { atomic, type Queryable, statementsOn } from "./sql.js";

/** The tasks table: a task with its operations in one commit, its status, its idempotency key. */
export function createTaskStore(q: Queryable, now: () => number): StoreQueries["tasks"] {
  const { rows, changes } = statementsOn(q);
  return {
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
  };
}
