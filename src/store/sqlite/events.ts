import type { StoredEvent } from "../store.js";
import { toEvent, type EventRow } from "../rows.js";
import type { Db } from "./open-database.js";

export function createEventStore(db: Db, now: () => number) {
  const insert = db.prepare<[string | null, number | null, string, string, number]>(
    "INSERT INTO events (task_id, operation_id, type, data, at) VALUES (?, ?, ?, ?, ?)",
  );
  const forTask = db.prepare<[string], EventRow>("SELECT * FROM events WHERE task_id = ? ORDER BY id");
  // Kept by triggers as events are written (migration 0016).
  const countType = db.prepare<[string], { n: number }>(
    "SELECT coalesce(sum(n), 0) AS n FROM event_counts WHERE type = ?",
  );
  return {
    count(type: string): number {
      return countType.get(type)!.n;
    },
    append(
      type: string,
      refs: { taskId?: string | undefined; operationId?: number | undefined },
      data: Record<string, unknown> = {},
    ): void {
      insert.run(refs.taskId ?? null, refs.operationId ?? null, type, JSON.stringify(data), now());
    },
    forTask(taskId: string): StoredEvent[] {
      return forTask.all(taskId).map(toEvent);
    },
  };
}
