import { isTaskEvent } from "../../domain/alert.js";
import { toAlert, type AlertRow } from "../rows.js";
import type { StoreQueries } from "../store.js";
import { type Queryable, statementsOn } from "./sql.js";

/**
 * The alerts table, the alert chat's outbox: one open row per kind and server, claimed by one
 * deliverer at a time.
 */
export function createAlertStore(q: Queryable, now: () => number): StoreQueries["alerts"] {
  const { rows, changes } = statementsOn(q);
  return {
    async raise(kind, server, details = {}) {
      const t = now();
      // One open row per kind and server (a unique index): a repeat folds into it.
      const [row] = await rows<AlertRow>(
        `INSERT INTO alerts (kind, server, task_id, status, first_seen, last_seen, details)
         VALUES ($1, $2, NULL, 'open', $3, $3, $4)
         ON CONFLICT (kind, server) WHERE status = 'open' AND task_id IS NULL
         DO UPDATE SET count = alerts.count + 1, last_seen = excluded.last_seen, details = excluded.details
         RETURNING *`,
        [kind, server, t, JSON.stringify(details)],
      );
      return toAlert(row!);
    },
    async notice(kind, server, taskId, details) {
      const t = now();
      const [row] = await rows<AlertRow>(
        // A task event is delivered as far as the alert chat goes.
        `INSERT INTO alerts (kind, server, task_id, status, first_seen, last_seen, details, closed_at,
           delivered_at, delivered_count)
         VALUES ($1, $2, $3, 'closed', $4, $4, $5, $4, $6, $7) RETURNING *`,
        [
          kind,
          server,
          taskId,
          t,
          JSON.stringify(details),
          isTaskEvent(kind) ? t : null,
          isTaskEvent(kind) ? 1 : 0,
        ],
      );
      return toAlert(row!);
    },
    async resolve(server) {
      const closed = await rows<AlertRow>(
        "UPDATE alerts SET status = 'closed', closed_at = $2 WHERE server = $1 AND status = 'open' RETURNING *",
        [server, now()],
      );
      return closed.map(toAlert).sort((a, b) => a.id - b.id);
    },
    async open() {
      return (await rows<AlertRow>("SELECT * FROM alerts WHERE status = 'open' ORDER BY id")).map(toAlert);
    },
    async recent(limit) {
      return (await rows<AlertRow>("SELECT * FROM alerts ORDER BY id DESC LIMIT $1", [limit])).map(toAlert);
    },
    async get(id) {
      const [row] = await rows<AlertRow>("SELECT * FROM alerts WHERE id = $1", [id]);
      return row ? toAlert(row) : undefined;
    },
    async claimUndelivered(owner, limit, leaseMs) {
      const t = now();
      const claimed = await rows<AlertRow>(
        `UPDATE alerts SET claim_owner = $1, claim_expires_at = $2
         WHERE id IN (SELECT id FROM alerts
                      WHERE delivered_count < count AND (claim_expires_at IS NULL OR claim_expires_at < $3)
                      ORDER BY id LIMIT $4 FOR UPDATE SKIP LOCKED)
         RETURNING *`,
        [owner, t + leaseMs, t, limit],
      );
      return claimed.map(toAlert).sort((a, b) => a.id - b.id);
    },
    async markDelivered(id, owner, count) {
      return (
        (await changes(
          `UPDATE alerts SET delivered_at = $1, delivered_count = $2, claim_owner = NULL, claim_expires_at = NULL
           WHERE id = $3 AND claim_owner = $4`,
          [now(), count, id, owner],
        )) === 1
      );
    },
    async releaseClaim(id, owner) {
      await q.query(
        "UPDATE alerts SET claim_owner = NULL, claim_expires_at = NULL WHERE id = $1 AND claim_owner = $2",
        [id, owner],
      );
    },
    async acknowledge(id, by) {
      await q.query(
        `UPDATE alerts SET acked_by = $1, acked_by_id = $2, acked_at = $3
         WHERE id = $4 AND status = 'open' AND acked_at IS NULL`,
        [by.name, by.userId, now(), id],
      );
      const [row] = await rows<AlertRow>("SELECT * FROM alerts WHERE id = $1", [id]);
      return row ? toAlert(row) : undefined;
    },
  };
}
