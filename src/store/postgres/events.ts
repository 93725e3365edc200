import { toEvent, type EventRow } from "../rows.js";
import type { StoreQueries } from "../store.js";
import { type Queryable, statementsOn } from "./sql.js";

/** The events table: what happened to a task and its operations, in order. */
export function createEventStore(q: Queryable, now: () => number): StoreQueries["events"] {
  const { rows } = statementsOn(q);
  return {
    async count(type) {
      return (await rows<{ n: number }>("SELECT count(*)::int AS n FROM events WHERE type = $1", [type]))[0]!
        .n;
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
  };
}
