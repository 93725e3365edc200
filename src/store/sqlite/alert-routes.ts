import type { Alert } from "../../domain/alert.js";
import {
  routeStateSql,
  toAlert,
  toRouteDelivery,
  toRouteState,
  type AlertRow,
  type RouteDeliveryRow,
  type RouteStateRow,
} from "../rows.js";
import type { RouteDelivery, RouteState } from "../store.js";
import type { Db } from "./open-database.js";

export function createAlertRouteStore(db: Db) {
  const register = db.prepare<[string, number]>(
    "INSERT INTO alert_routes (route, since) VALUES (?, ?) ON CONFLICT (route) DO NOTHING",
  );
  const summary = db.prepare<[], RouteStateRow>(routeStateSql);
  const sinceOf = db.prepare<[string], { since: number }>("SELECT since FROM alert_routes WHERE route = ?");
  const due = db.prepare<
    [string, number, number, number, number],
    AlertRow & { route_attempts: number | null }
  >(
    `SELECT a.*, d.attempts AS route_attempts FROM alerts a
     LEFT JOIN alert_deliveries d ON d.alert_id = a.id AND d.route = ?
     WHERE a.last_seen >= ?
       AND a.count > coalesce(d.delivered_count, 0)
       AND a.count > coalesce(d.failed_count, 0)
       AND coalesce(d.next_attempt_at, 0) <= ?
       AND coalesce(d.claim_expires_at, 0) < ?
     ORDER BY a.id LIMIT ?`,
  );
  const claimOne = db.prepare<[number, string, string, number, number]>(
    `INSERT INTO alert_deliveries (alert_id, route, claim_owner, claim_expires_at) VALUES (?, ?, ?, ?)
     ON CONFLICT (alert_id, route) DO UPDATE
       SET claim_owner = excluded.claim_owner, claim_expires_at = excluded.claim_expires_at
       WHERE coalesce(alert_deliveries.claim_expires_at, 0) < ?`,
  );
  const delivered = db.prepare<[number, number, number, string, string]>(
    `UPDATE alert_deliveries SET delivered_count = ?, delivered_at = ?, attempts = 0, next_attempt_at = NULL,
       last_error = NULL, claim_owner = NULL, claim_expires_at = NULL
     WHERE alert_id = ? AND route = ? AND claim_owner = ?`,
  );
  const retry = db.prepare<[string, number, number, string, string]>(
    `UPDATE alert_deliveries SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?,
       claim_owner = NULL, claim_expires_at = NULL
     WHERE alert_id = ? AND route = ? AND claim_owner = ?`,
  );
  const refused = db.prepare<[number, string, number, string, string]>(
    `UPDATE alert_deliveries SET failed_count = ?, last_error = ?, attempts = attempts + 1, next_attempt_at = NULL,
       claim_owner = NULL, claim_expires_at = NULL
     WHERE alert_id = ? AND route = ? AND claim_owner = ?`,
  );
  const forAlert = db.prepare<[number], RouteDeliveryRow>(
    "SELECT * FROM alert_deliveries WHERE alert_id = ? ORDER BY route",
  );
  return {
    start(route: string, now: number): number {
      register.run(route, now);
      return sinceOf.get(route)!.since;
    },
    claim(
      route: string,
      owner: string,
      since: number,
      limit: number,
      leaseMs: number,
      now: number,
    ): Array<{ alert: Alert; attempts: number }> {
      return db
        .transaction(() =>
          due
            .all(route, since, now, now, limit)
            .filter((row) => claimOne.run(row.id, route, owner, now + leaseMs, now).changes === 1)
            .map((row) => ({ alert: toAlert(row), attempts: row.route_attempts ?? 0 })),
        )
        .immediate();
    },
    delivered(alertId: number, route: string, owner: string, count: number, now: number): void {
      delivered.run(count, now, alertId, route, owner);
    },
    retryAt(alertId: number, route: string, owner: string, error: string, nextAt: number): void {
      retry.run(error.slice(0, 500), nextAt, alertId, route, owner);
    },
    refused(alertId: number, route: string, owner: string, count: number, error: string): void {
      refused.run(count, error.slice(0, 500), alertId, route, owner);
    },
    forAlert(alertId: number): RouteDelivery[] {
      return forAlert.all(alertId).map(toRouteDelivery);
    },
    summary(): RouteState[] {
      return summary.all().map(toRouteState);
    },
  };
}
