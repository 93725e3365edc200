import type { ServerName } from "../config/schema.js";
import type { Fleet } from "../fleet/fleet.js";
import type { TransportKind } from "../fleet/transport.js";
import type { TaskStatus } from "../domain/task.js";
import type { Store } from "../store/store.js";
import type { HealthMonitor, ServerHealth } from "./health-monitor.js";
import { percentile, type HealthStatus } from "./health-rules.js";

export interface Stats {
  server_health: Record<string, HealthStatus>;
  total_operations: number;
  operations: Record<string, Record<string, number>>;
  error_rates: Record<string, number>;
  latency_ms: Record<string, { p50: number | null; p95: number | null }>;
  queue_size: number;
  tasks_by_status: Partial<Record<TaskStatus, number>>;
  restarts: Record<string, number>;
  /** How each server is reached, and a hosted one's URL without credentials. */
  transports: Record<string, { transport: TransportKind; url?: string }>;
  drift_repairs: number;
  uptime_s: number;
}

/**
 * Operations finished in the last hour, in twelve five-minute bars, oldest first. The bars
 * start and end on whole minutes (the last one at the end of the current minute), so the
 * store sums its per-minute counts and reads no operation.
 */
export function lastHourActivity(store: Store, now = Date.now()): Promise<number[]> {
  const minute = 60_000;
  const since = Math.ceil((now - 60 * minute) / minute) * minute;
  return store.operations.finishedPerBucket(since, 5 * minute, 12);
}

/** The numbers behind /stats, shaped after the original system's, plus latency and queue. */
export async function collectStats(deps: {
  store: Store;
  fleet: Fleet;
  health: Pick<HealthMonitor, "snapshot">;
  startedAt: number;
  now?: number;
}): Promise<Stats> {
  const { store, fleet, health } = deps;
  const operations: Stats["operations"] = {};
  let total = 0;
  for (const row of await store.operations.countByServerStatus()) {
    (operations[row.server] ??= {})[row.status] = row.n;
    total += row.n;
  }
  const statuses = Object.fromEntries(health.snapshot().map((h) => [h.server, h.status]));
  const errorRates: Stats["error_rates"] = {};
  const latency: Stats["latency_ms"] = {};
  const restarts: Stats["restarts"] = {};
  const transports: Stats["transports"] = {};
  // Read together: a store with a pool of connections answers them side by side.
  const recent = await Promise.all(
    fleet.names.map((server) => store.operations.recentDurations(server, 1000)),
  );
  for (const [i, server] of fleet.names.entries()) {
    const counts = operations[server] ?? {};
    const finished = (counts.done ?? 0) + (counts.failed ?? 0);
    errorRates[server] = finished === 0 ? 0 : Math.round(((counts.failed ?? 0) / finished) * 1000) / 1000;
    const durations = recent[i]!;
    latency[server] = { p50: percentile(durations, 0.5) ?? null, p95: percentile(durations, 0.95) ?? null };
    restarts[server] = fleet.restarts(server as ServerName);
    transports[server] = fleet.reach(server as ServerName);
  }
  return {
    server_health: statuses,
    total_operations: total,
    operations,
    error_rates: errorRates,
    latency_ms: latency,
    queue_size: await store.operations.queueSize(),
    tasks_by_status: await store.tasks.countByStatus(),
    restarts,
    transports,
    drift_repairs: await store.events.count("operation.drift"),
    uptime_s: Math.round(((deps.now ?? Date.now()) - deps.startedAt) / 1000),
  };
}

export type { ServerHealth };
