import type { Fleet } from "../fleet/fleet.js";
import type { Logger } from "../log.js";
import type { Orchestrator } from "../orchestrator/orchestrator.js";
import type { AlertStore } from "../store/alerts.js";
import type { HealthMonitor } from "./health-monitor.js";

/**
 * Turns what the fleet, the health monitor and the orchestrator report into rows of the
 * alert outbox: a repeat updates the open row; a server back to ONLINE closes its alerts
 * and adds one recovery notice.
 */
export function wireAlerts(deps: {
  fleet: Fleet;
  health: HealthMonitor;
  orchestrator: Orchestrator;
  alerts: AlertStore;
  log: Logger;
}): void {
  const { fleet, health, orchestrator, alerts, log } = deps;
  const safely = (what: string, fn: () => void) => {
    try {
      fn();
    } catch (error) {
      log.error({ err: error }, `could not record alert: ${what}`);
    }
  };
  fleet.on("breaker", ({ server, state, error }) => {
    if (state === "open") safely("breaker_open", () => alerts.raise("breaker_open", server, { error }));
  });
  fleet.on("crash-loop", ({ server, restarts, windowMs, until }) =>
    safely("crash_loop", () => alerts.raise("crash_loop", server, { restarts, windowMs, until })),
  );
  health.on("status", ({ server, status, previous, reason }) =>
    safely(status, () => {
      if (status === "DEGRADED") alerts.raise("degraded", server, { reason });
      else if (status === "ERROR") alerts.raise("error", server, { reason, error: fleet.lastError(server) });
      else if (previous !== undefined) {
        const closed = alerts.resolve(server);
        if (closed.length > 0) {
          alerts.notice("recovered", server, null, {
            closed: closed.map((a) => a.kind),
            since: Math.min(...closed.map((a) => a.firstSeen)),
          });
        }
      }
    }),
  );
  orchestrator.on("task.rolled_back", ({ taskId, reason }) =>
    safely("rolled_back", () => alerts.notice("rolled_back", "", taskId, { reason })),
  );
}
