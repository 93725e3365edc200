import type { StoreQueries } from "../store.js";
import { atomic, type Queryable } from "./sql.js";

/**
 * The dispatchers table: the runs that claim work, so a start can tell a run that died from one that
 * stopped cleanly.
 */
export function createDispatcherStore(q: Queryable, now: () => number): StoreQueries["dispatchers"] {
  return {
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
  };
}
