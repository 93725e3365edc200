import type { Operation, Task, TaskStatus, ValidTask } from "../../domain/task.js";
import type { Db } from "./open-database.js";
import {
  blockedUntil,
  type NewOperationRow,
  type TaskChange,
  type TaskChangeRow,
  type TaskFilter,
  type TaskOwner,
} from "../store.js";
import { taskFilterSql, toOperation, toTask, type OperationRow, type TaskRow } from "../rows.js";

export function createTaskStore(db: Db, now: () => number) {
  const insertTask = db.prepare<[Record<string, unknown>]>(
    `INSERT INTO tasks (id, title, description, priority, deadline, tags, status, idempotency_key, idempotency_hash,
       chat_id, user_id, remind, created_at, updated_at)
     VALUES (@id, @title, @description, @priority, @deadline, @tags, @status, @key, @hash, @chatId, @userId, @remind, @now, @now)`,
  );
  const applyChange = db.prepare<[Record<string, unknown>]>(
    `UPDATE tasks SET title = @title, description = @description, priority = @priority, deadline = @deadline,
       tags = @tags, state = @state, completed_at = @completedAt, deleted_at = @deletedAt,
       version = version + 1, updated_at = @now
     WHERE id = @id AND version = @version`,
  );
  const recordChange = db.prepare<[Record<string, unknown>]>(
    `INSERT INTO task_changes (task_id, version, kind, fields, source, idempotency_key, idempotency_hash, at)
     VALUES (@id, @version + 1, @kind, @changed, @source, @key, @hash, @now)`,
  );
  const changeByKey = db.prepare<
    [string],
    { task_id: string; version: number; idempotency_hash: string | null }
  >("SELECT task_id, version, idempotency_hash FROM task_changes WHERE idempotency_key = ?");
  const changesOf = db.prepare<
    [string],
    { task_id: string; version: number; kind: TaskChange["kind"]; fields: string; source: string; at: number }
  >("SELECT task_id, version, kind, fields, source, at FROM task_changes WHERE task_id = ? ORDER BY version");
  // The row it writes is known in full (see claimedRow): no read back.
  const insertClaimedOp = db.prepare<[Record<string, unknown>]>(
    `INSERT INTO operations (task_id, server, kind, status, waits_for, priority, idempotency_key, attempts,
       lease_owner, lease_expires_at, next_attempt_at, created_at, started_at, updated_at)
     VALUES (@taskId, @server, 'create', 'running', NULL, @priority, @key, 1, @owner, @expires, @now, @now, @now, @now)`,
  );
  const insertOp = db.prepare<[Record<string, unknown>]>(
    `INSERT INTO operations (task_id, server, kind, status, waits_for, priority, idempotency_key, next_attempt_at, created_at, updated_at)
     VALUES (@taskId, @server, 'create', 'pending', @waitsFor, @priority, @key, @due, @now, @now)`,
  );
  const byId = db.prepare<[string], TaskRow>("SELECT * FROM tasks WHERE id = ?");
  const byKey = db.prepare<[string], { id: string; idempotency_hash: string | null }>(
    "SELECT id, idempotency_hash FROM tasks WHERE idempotency_key = ?",
  );
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
    "SELECT status, n FROM task_counts WHERE n <> 0",
  );

  /**
   * The task and its operations, in one transaction: durable on return. Operations stored
   * claimed are returned; with any, the task is stored running.
   */
  const insertWithOperations = db.transaction(
    (
      id: string,
      task: ValidTask,
      key: { key: string; hash: string } | null,
      ops: readonly NewOperationRow[],
      owner: TaskOwner | undefined,
    ): { task: Task; claimed: Operation[] } => {
      const t = now();
      const claimed: Operation[] = [];
      // Only an operation that waits for nothing can be stored claimed.
      const leased = (op: NewOperationRow) => (op.waitsFor.length === 0 ? op.lease : undefined);
      insertTask.run({
        status: ops.some(leased) ? "running" : "pending",
        id,
        title: task.title,
        description: task.description,
        priority: task.priority,
        deadline: task.deadline,
        tags: JSON.stringify(task.tags),
        key: key?.key ?? null,
        hash: key?.hash ?? null,
        chatId: owner?.chatId ?? null,
        userId: owner?.userId ?? null,
        remind: owner?.remind ? JSON.stringify(owner.remind) : null,
        now: t,
      });
      for (const op of ops) {
        const lease = leased(op);
        if (lease) {
          const values = {
            taskId: id,
            server: op.server,
            priority: op.priority,
            key: op.idempotencyKey,
            owner: lease.owner,
            expires: lease.expiresAt,
            now: t,
          };
          const { lastInsertRowid } = insertClaimedOp.run(values);
          claimed.push(toOperation(claimedRow(Number(lastInsertRowid), values)));
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
      return { task: toTask(byId.get(id)!), claimed };
    },
  );

  /** The task as the change leaves it, and its record, only while the task is at `version`. */
  const applyChangeTx = db.transaction((id: string, version: number, change: TaskChangeRow): boolean => {
    const t = now();
    const written = applyChange.run({
      id,
      version,
      ...change.task,
      tags: JSON.stringify(change.task.tags),
      state: change.state,
      completedAt: change.completedAt,
      deletedAt: change.deletedAt,
      now: t,
    }).changes;
    if (written !== 1) return false;
    recordChange.run({
      id,
      version,
      kind: change.kind,
      changed: JSON.stringify(change.changed),
      source: change.source,
      key: change.key?.key ?? null,
      hash: change.key?.hash ?? null,
      now: t,
    });
    return true;
  });

  function get(id: string): Task | undefined {
    const row = byId.get(id);
    return row ? toTask(row) : undefined;
  }

  return {
    /** `key`: the idempotency key and a hash of the request it came with. */
    insertWithOperations(
      id: string,
      task: ValidTask,
      key: { key: string; hash: string } | null,
      ops: readonly NewOperationRow[],
      owner?: TaskOwner,
    ): { task: Task; claimed: Operation[] } {
      return insertWithOperations.immediate(id, task, key, ops, owner);
    },
    applyChange(id: string, version: number, change: TaskChangeRow): boolean {
      return applyChangeTx.immediate(id, version, change);
    },
    changeByIdempotencyKey(key: string) {
      const row = changeByKey.get(key);
      return row ? { taskId: row.task_id, version: row.version, hash: row.idempotency_hash } : undefined;
    },
    changes(taskId: string): TaskChange[] {
      return changesOf.all(taskId).map((r) => ({
        taskId: r.task_id,
        version: r.version,
        kind: r.kind,
        changed: JSON.parse(r.fields) as TaskChange["changed"],
        source: r.source,
        at: r.at,
      }));
    },
    list(filter: TaskFilter): Task[] {
      const { where, params } = taskFilterSql(filter, () => "?");
      return db
        .prepare<unknown[], TaskRow>(
          `SELECT * FROM tasks ${where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?`,
        )
        .all(...params, filter.limit, filter.offset ?? 0)
        .map(toTask);
    },
    get,
    getMany(ids: readonly string[]): Task[] {
      return ids.flatMap((id) => get(id) ?? []);
    },
    /** Write transactions take turns already (BEGIN IMMEDIATE): only the read. */
    lock: get,
    /** The task an idempotency key made, and the hash of its request (null for older rows). */
    getByIdempotencyKey(key: string): { id: string; hash: string | null } | undefined {
      const row = byKey.get(key);
      return row ? { id: row.id, hash: row.idempotency_hash } : undefined;
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
    count(filter?: Omit<TaskFilter, "limit" | "offset">): number {
      if (!filter) return count.get()!.n;
      const { where, params } = taskFilterSql({ ...filter, limit: 0 }, () => "?");
      return db.prepare<unknown[], { n: number }>(`SELECT count(*) AS n FROM tasks ${where}`).get(...params)!
        .n;
    },
    countByStatus(): Partial<Record<TaskStatus, number>> {
      return Object.fromEntries(countByStatus.all().map((r) => [r.status, r.n]));
    },
  };
}

/** The row insertClaimedOp writes: its values, the table's defaults for the rest. */
function claimedRow(
  id: number,
  v: {
    taskId: string;
    server: string;
    priority: number;
    key: string;
    owner: string;
    expires: number;
    now: number;
  },
): OperationRow {
  return {
    id,
    task_id: v.taskId,
    server: v.server,
    kind: "create",
    status: "running",
    waits_for: null,
    priority: v.priority,
    attempts: 1,
    idempotency_key: v.key,
    remote_id: null,
    last_error: null,
    retryable: 0,
    waiting: null,
    recheck: 0,
    next_attempt_at: v.now,
    lease_owner: v.owner,
    lease_expires_at: v.expires,
    duration_ms: null,
    total_ms: 0,
    created_at: v.now,
    started_at: v.now,
    finished_at: null,
  };
}
