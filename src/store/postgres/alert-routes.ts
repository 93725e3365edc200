import {
  routeStateSql,
  toAlert,
  toRouteDelivery,
  toRouteState,
  type RouteDeliveryRow,
  type RouteStateRow,
  type AlertRow,
} from "../rows.js";
import type { StoreQueries } from "../store.js";
import { type Queryable, statementsOn } from "./sql.js";

/** Each alert route's own outbox: where it started and what it delivered of each alert. */
export function createAlertRouteStore(q: Queryable): StoreQueries["alertRoutes"] {
  const { rows } = statementsOn(q);
  return {
    async start(route, at) {
      await q.query(
        "INSERT INTO alert_routes (route, since) VALUES ($1, $2) ON CONFLICT (route) DO NOTHING",
        [route, at],
      );
      const [row] = await rows<{ since: string }>("SELECT since FROM alert_routes WHERE route = $1", [route]);
      return Number(row!.since);
    },
    async claim(route, owner, since, limit, leaseMs, at) {
      // Claimed by an upsert that takes a row only while nobody holds it.
      const claimed = await rows<{ alert_id: number }>(
        `WITH due AS (
           SELECT a.id FROM alerts a
           LEFT JOIN alert_deliveries d ON d.alert_id = a.id AND d.route = $1
           WHERE a.last_seen >= $2
             AND a.count > coalesce(d.delivered_count, 0)
             AND a.count > coalesce(d.failed_count, 0)
             AND coalesce(d.next_attempt_at, 0) <= $3
             AND coalesce(d.claim_expires_at, 0) < $3
           ORDER BY a.id LIMIT $4)
         INSERT INTO alert_deliveries (alert_id, route, claim_owner, claim_expires_at)
         SELECT id, $1, $5, $6 FROM due
         ON CONFLICT (alert_id, route) DO UPDATE
           SET claim_owner = excluded.claim_owner, claim_expires_at = excluded.claim_expires_at
           WHERE coalesce(alert_deliveries.claim_expires_at, 0) < $3
         RETURNING alert_id`,
        [route, since, at, limit, owner, at + leaseMs],
      );
      if (claimed.length === 0) return [];
      const found = await rows<AlertRow & { route_attempts: number }>(
        `SELECT a.*, d.attempts AS route_attempts FROM alerts a
         JOIN alert_deliveries d ON d.alert_id = a.id AND d.route = $1
         WHERE a.id = ANY($2::bigint[]) ORDER BY a.id`,
        [route, claimed.map((c) => c.alert_id)],
      );
      return found.map((row) => ({ alert: toAlert(row), attempts: row.route_attempts }));
    },
    async delivered(alertId, route, owner, count, at) {
      await q.query(
        `UPDATE alert_deliveries SET delivered_count = $1, delivered_at = $2, attempts = 0, next_attempt_at = NULL,
           last_error = NULL, claim_owner = NULL, claim_expires_at = NULL
         WHERE alert_id = $3 AND route = $4 AND claim_owner = $5`,
        [count, at, alertId, route, owner],
      );
    },
    async retryAt(alertId, route, owner, error, nextAt) {
      await q.query(
        `UPDATE alert_deliveries SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2,
           claim_owner = NULL, claim_expires_at = NULL
         WHERE alert_id = $3 AND route = $4 AND claim_owner = $5`,
        [error.slice(0, 500), nextAt, alertId, route, owner],
      );
    },
    async refused(alertId, route, owner, count, error) {
      await q.query(
        `UPDATE alert_deliveries SET failed_count = $1, last_error = $2, attempts = attempts + 1,
           next_attempt_at = NULL, claim_owner = NULL, claim_expires_at = NULL
         WHERE alert_id = $3 AND route = $4 AND claim_owner = $5`,
        [count, error.slice(0, 500), alertId, route, owner],
      );
    },
    async forAlert(alertId) {
      return (
        await rows<RouteDeliveryRow>("SELECT * FROM alert_deliveries WHERE alert_id = $1 ORDER BY route", [
          alertId,
        ])
      ).map(toRouteDelivery);
    },
    async summary() {
      return (await rows<RouteStateRow>(routeStateSql)).map(toRouteState);
    },
  };
}
