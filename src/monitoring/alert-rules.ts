import type { Fleet } from "../fleet/fleet.js";
import type { Logger } from "../log.js";
import type { Orchestrator } from "../orchestrator/orchestrator.js";
import type { AlertStore } from "../store/store.js";
import { oneAtATime } from "../one-at-a-time.js";
import { StoreRetry, storeFault, type StoreHealth } from "../store/store-health.js";
import type { HealthMonitor } from "./health-monitor.js";

const maxPending = 1000;

/**
 * Turns what the fleet, the health monitor and the orchestrator report into rows of the
 * alert outbox: a repeat updates the open row; a server back to ONLINE closes its alerts
 * and adds one recovery notice. While the store does not answer, they wait in order in
 * memory (up to `maxPending`) and are recorded once it does.
 */
export function wireAlerts(deps: {
  fleet: Fleet;
  health: HealthMonitor;
  orchestrator: Orchestrator;
  alerts: AlertStore;
  storeHealth: StoreHealth;
  log: Logger;
  /** Said in each server alert when several instances may see problems (a shared store). */
  instance?: string | undefined;
}): void {
  const { fleet, health, orchestrator, alerts, log } = deps;
  const seenBy = deps.instance ? { instance: deps.instance } : {};
  const retry = new StoreRetry("alert recording", deps.storeHealth, log);
  const pending: Array<{ what: string; fn: () => Promise<unknown> }> = [];
  let timer: NodeJS.Timeout | undefined;
  /** Records what waits, in order, one at a time. */
  const drain = oneAtATime(async () => {
    clearTimeout(timer);
    timer = undefined;
    while (pending.length > 0) {
      const next = pending[0]!;
      try {
        await next.fn();
        retry.succeeded();
      } catch (error) {
        if (storeFault(error)) {
          timer = setTimeout(() => void drain(), retry.failed(error));
          timer.unref();
          return;
        }
        log.error({ err: error }, `could not record alert: ${next.what}`);
      }
      pending.shift();
    }
  });
  const safely = (what: string, fn: () => Promise<unknown>) => {
    if (pending.length >= maxPending) pending.shift();
    pending.push({ what, fn });
    // A run under way may be past its last look at `pending`: look again once it ends.
    if (!timer) void drain().then(() => (pending.length > 0 && !timer ? drain() : undefined));
  };
  deps.storeHealth.on("change", (state) => {
    if (state.ok) void drain();
  });
  fleet.on("breaker", ({ server, state, error }) => {
    if (state === "open")
      safely("breaker_open", () => alerts.raise("breaker_open", server, { error, ...seenBy }));
  });
  fleet.on("crash-loop", ({ server, restarts, windowMs, until }) =>
    safely("crash_loop", () => alerts.raise("crash_loop", server, { restarts, windowMs, until, ...seenBy })),
  );
  health.on("status", ({ server, status, previous, reason }) =>
    safely(status, async () => {
      if (status === "DEGRADED") await alerts.raise("degraded", server, { reason, ...seenBy });
      else if (status === "ERROR")
        await alerts.raise("error", server, { reason, error: fleet.lastError(server), ...seenBy });
      else if (previous !== undefined) await recover(alerts, server);
    }),
  );
  orchestrator.on("task.rolled_back", ({ taskId, reason }) =>
    safely("rolled_back", () => alerts.notice("rolled_back", "", taskId, { reason })),
  );
}

/** A server is back: its open alerts close, and one recovery notice says which and since when. */
export async function recover(alerts: AlertStore, server: string): Promise<void> {
  const closed = await alerts.resolve(server);
  if (closed.length === 0) return;
  await alerts.notice("recovered", server, null, {
    closed: closed.map((a) => a.kind),
    // So delivery finds the message that showed them (a grouped one is edited instead).
    ids: closed.map((a) => a.id),
    since: Math.min(...closed.map((a) => a.firstSeen)),
  });
}
