import type { Operation, Task, TaskStatus, ValidTask } from "../orchestrator/task.js";
import type { Db } from "./open-database.js";
import { blockedUntil } from "./operations.js";
import { toOperation, toTask, type OperationRow, type TaskRow } from "./rows.js";

export interface NewOperationRow {
  server: string;
  priority: number;
  /** Servers whose create of this task must settle first. */
  waitsFor: readonly string[];
  idempotencyKey: string;
  /** Stored already claimed by this dispatcher (its first attempt under way). */
  lease?: { owner: string; expiresAt: number } | undefined;
}

export function createTaskStore(db: Db, now: () => number) {
  const insertTask = db.prepare<[Record<string, unknown>]>(
    `INSERT INTO tasks (id, title, description, priority, deadline, tags, status, idempotency_key, created_at, updated_at)
     VALUES (@id, @title, @description, @priority, @deadline, @tags, 'pending', @key, @now, @now)`,
  );
  const insertClaimedOp = db.prepare<[Record<string, unknown>], OperationRow>(
    `INSERT INTO operations (task_id, server, kind, status, waits_for, priority, idempotency_key, attempts,
       lease_owner, lease_expires_at, next_attempt_at, created_at, started_at, updated_at)
     VALUES (@taskId, @server, 'create', 'running', NULL, @priority, @key, 1, @owner, @expires, @now, @now, @now, @now)
     RETURNING *`,
  );
  const insertOp = db.prepare<[Record<string, unknown>]>(
    `INSERT INTO operations (task_id, server, kind, status, waits_for, priority, idempotency_key, next_attempt_at, created_at, updated_at)
     VALUES (@taskId, @server, 'create', 'pending', @waitsFor, @priority, @key, @due, @now, @now)`,
  );
  const byId = db.prepare<[string], TaskRow>("SELECT * FROM tasks WHERE id = ?");
  const byKey = db.prepare<[string], TaskRow>("SELECT * FROM tasks WHERE idempotency_key = ?");
  const setStatus = db.prepare<[TaskStatus, string | null, number, number | null, string]>(
    `UPDATE tasks SET status = ?, status_reason = ?, updated_at = ?, settled_at = ? WHERE id = ?`,
  );
  const markRolledBack = db.prepare<[string, number, string]>(
    "UPDATE tasks SET rollback_reason = ?, updated_at = ? WHERE id = ? AND rollback_reason IS NULL",
  );
  const recent = db.prepare<[number, number], TaskRow>(
    "SELECT * FROM tasks ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",
  );
  const count = db.prepare<[], { n: number }>("SELECT count(*) AS n FROM tasks");
  const countByStatus = db.prepare<[], { status: TaskStatus; n: number }>(
    "SELECT status, count(*) AS n FROM tasks GROUP BY status",
  );

  /** The task and its operations, in one transaction: durable on return. */
  const insertWithOperations = db.transaction(
    (id: string, task: ValidTask, key: string | null, ops: readonly NewOperationRow[]): Operation[] => {
      const t = now();
      const claimed: Operation[] = [];
      insertTask.run({
        id,
        title: task.title,
        description: task.description,
        priority: task.priority,
        deadline: task.deadline,
        tags: JSON.stringify(task.tags),
        key,
        now: t,
      });
      for (const op of ops) {
        if (op.lease && op.waitsFor.length === 0) {
          const row = insertClaimedOp.get({
            taskId: id,
            server: op.server,
            priority: op.priority,
            key: op.idempotencyKey,
            owner: op.lease.owner,
            expires: op.lease.expiresAt,
            now: t,
          });
          if (row) claimed.push(toOperation(row));
          continue;
        }
        insertOp.run({
          taskId: id,
          server: op.server,
          waitsFor: op.waitsFor.length > 0 ? op.waitsFor.join(",") : null,
          priority: op.priority,
          key: op.idempotencyKey,
          // Blocked until what it waits for settles (see operations.releaseWaiting).
          due: op.waitsFor.length === 0 ? t : blockedUntil,
          now: t,
        });
      }
      return claimed;
    },
  );

  return {
    insertWithOperations(
      id: string,
      task: ValidTask,
      key: string | null,
      ops: readonly NewOperationRow[],
    ): Operation[] {
      return insertWithOperations.immediate(id, task, key, ops);
    },
    get(id: string): Task | undefined {
      const row = byId.get(id);
      return row ? toTask(row) : undefined;
    },
    getByIdempotencyKey(key: string): Task | undefined {
      const row = byKey.get(key);
      return row ? toTask(row) : undefined;
    },
    /** Returns the time it stored as the update (and, when settled, the settle) time. */
    setStatus(id: string, status: TaskStatus, reason: string | null, settled: boolean): number {
      const t = now();
      setStatus.run(status, reason, t, settled ? t : null, id);
      return t;
    },
    /** Records why the task is rolled back; false when it already was. */
    markRolledBack(id: string, reason: string): boolean {
      return markRolledBack.run(reason, now(), id).changes === 1;
    },
    recent(limit: number, offset = 0): Task[] {
      return recent.all(limit, offset).map(toTask);
    },
    count(): number {
      return count.get()!.n;
    },
    countByStatus(): Partial<Record<TaskStatus, number>> {
      return Object.fromEntries(countByStatus.all().map((r) => [r.status, r.n]));
    },
  };
}

export type TaskStore = ReturnType<typeof createTaskStore>;
