import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Logger } from "../log.js";
import { StoreRetry, type StoreHealth } from "../store/store-health.js";
import type { Stats } from "./stats.js";
import type { ServerHealth } from "./health-monitor.js";

/** What logs/monitoring_metrics.json holds, as the original system wrote it. */
export function snapshotOf(stats: Stats, health: readonly ServerHealth[], now = new Date()) {
  return {
    timestamp: now.toISOString(),
    servers: Object.fromEntries(
      health.map((h) => [
        h.server,
        {
          status: h.status,
          response_time_ms: h.lastResponseMs ?? null,
          p50_ms: h.p50Ms ?? null,
          p95_ms: h.p95Ms ?? null,
          error_count: stats.operations[h.server]?.failed ?? 0,
          breaker: h.breaker,
          last_error: h.lastError ?? null,
        },
      ]),
    ),
    queue_size: stats.queue_size,
    tasks_by_status: stats.tasks_by_status,
    total_operations: stats.total_operations,
  };
}

/** Writes the snapshot atomically: a temp file, then a rename over the old one. */
export function writeSnapshot(dir: string, snapshot: unknown): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "monitoring_metrics.json");
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(snapshot, null, 2)}\n`);
  renameSync(tmp, file);
  return file;
}

/**
 * Every `intervalMs`, the snapshot; stop() clears the timer. A failure (the store does not
 * answer, the disk is full) is logged once and the next ticks back off.
 */
export function startSnapshots(
  dir: string,
  intervalMs: number,
  read: () => Promise<{ stats: Stats; health: ServerHealth[] }>,
  storeHealth: StoreHealth,
  log: Logger,
): { stop(): void; writeNow(): Promise<string> } {
  const writeNow = async () => {
    const { stats, health } = await read();
    return writeSnapshot(dir, snapshotOf(stats, health));
  };
  const retry = new StoreRetry("metrics snapshot", storeHealth, log);
  const timer = setInterval(() => void retry.run(writeNow), intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), writeNow };
}
