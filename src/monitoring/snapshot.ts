import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { Logger } from "../log.js";
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

/** Every `intervalMs`, the snapshot; stop() clears the timer. */
export function startSnapshots(
  dir: string,
  intervalMs: number,
  read: () => { stats: Stats; health: ServerHealth[] },
  log: Logger,
): { stop(): void; writeNow(): string } {
  const writeNow = () => {
    const { stats, health } = read();
    return writeSnapshot(dir, snapshotOf(stats, health));
  };
  const timer = setInterval(() => {
    try {
      writeNow();
    } catch (error) {
      log.warn({ err: error }, "could not write the metrics snapshot");
    }
  }, intervalMs);
  timer.unref();
  return { stop: () => clearInterval(timer), writeNow };
}
