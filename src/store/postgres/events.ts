import { toEvent, type EventRow } from "../rows.js";
import type { StoreQueries } from "../store.js";
import { type Queryable, statementsOn } from "./sql.js";

/** The events table inside one transaction, and what it still has to write at the commit. */
export type TransactionEvents = StoreQueries["events"] & { flush(): Promise<void> };

/** The events table: what happened to a task and its operations, in order. */
export function createEventStore(q: Queryable, now: () => number): StoreQueries["events"] {
  const { rows } = statementsOn(q);
  return {
    async count(type) {
      // Kept by triggers as events are written (postgres migration 0009).
      return (
        await rows<{ n: number }>("SELECT coalesce(sum(n), 0)::int AS n FROM event_counts WHERE type = $1", [
          type,
        ])
      )[0]!.n;
    },
    async append(type, refs, data = {}) {
      await write(q, [eventValues(type, refs, data, now())]);
    },
    async forTask(taskId) {
      return (await rows<EventRow>("SELECT * FROM events WHERE task_id = $1 ORDER BY id", [taskId])).map(
        toEvent,
      );
    },
  };
}

/**
 * The events table on a transaction's client: an appended event is kept until the commit
 * (`flush`, or a read of the table before it), and all of them go as one statement, not one
 * round trip each. Nothing of the transaction reads them in between.
 */
export function transactionEvents(q: Queryable, now: () => number): TransactionEvents {
  const table = createEventStore(q, now);
  let kept: EventValues[] = [];
  const flush = async () => {
    if (kept.length === 0) return;
    const values = kept;
    kept = [];
    await write(q, values);
  };
  return {
    async count(type) {
      await flush();
      return table.count(type);
    },
    async append(type, refs, data = {}) {
      kept.push(eventValues(type, refs, data, now()));
    },
    async forTask(taskId) {
      await flush();
      return table.forTask(taskId);
    },
    flush,
  };
}

type EventValues = [string | null, number | null, string, string, number];

/** One event's row, as `write` takes it. */
function eventValues(
  type: string,
  refs: { taskId?: string | null | undefined; operationId?: number | null | undefined },
  data: Record<string, unknown>,
  at: number,
): EventValues {
  return [refs.taskId ?? null, refs.operationId ?? null, type, JSON.stringify(data), at];
}

/** Event rows in one statement, in order. */
async function write(q: Queryable, values: readonly EventValues[]): Promise<void> {
  const column = <K extends number>(k: K) => values.map((v) => v[k]);
  await q.query(
    `INSERT INTO events (task_id, operation_id, type, data, at)
     SELECT task_id, operation_id, type, data, at FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[], $5::bigint[]) WITH ORDINALITY
       AS e(task_id, operation_id, type, data, at, n) ORDER BY n`,
    [column(0), column(1), column(2), column(3), column(4)],
  );
}
