import { Composer } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import type { BotDeps } from "../src/bot/deps.js";
import type { Translate } from "../src/bot/i18n.js";
import type { Stats } from "../src/monitoring/stats.js";

const bars = "▁▂▃▄▅▆▇█";

/** A text sparkline: one bar per value, scaled to the largest. */
export function sparkline(values: readonly number[]): string {
  const max = Math.max(...values, 0);
  return values
    .map((v) =>
      max === 0 ? bars[0] : bars[Math.min(bars.length - 1, Math.round((v / max) * (bars.length - 1)))],
    )
    .join("");
}

function duration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${seconds % 60}s`;
}

export function formatStats(stats: Stats, activity: readonly number[], t: Translate): string {
  const tasks = Object.entries(stats.tasks_by_status)
    .map(([status, n]) => `${status} ${n}`)
    .join(" · ");
  const servers = Object.keys(stats.server_health).map((server) => {
    const ops = Object.values(stats.operations[server] ?? {}).reduce((a, b) => a + b, 0);
    const lat = stats.latency_ms[server];
    const latency = lat?.p50 == null ? "—" : `${Math.round(lat.p50)}/${Math.round(lat.p95 ?? lat.p50)} ms`;
    const err = `${Math.round((stats.error_rates[server] ?? 0) * 100)}%`;
    const reach = stats.transports[server];
    const line = t("stats-server", {
      server: server.padEnd(19),
      ops: String(ops).padStart(5),
      err: err.padStart(4),
      latency,
    });
    return reach?.url ? `${line}\n    ${reach.transport} ${reach.url}` : line;
  });
  return [
    t("stats-tasks", { list: tasks || t("stats-none") }),
    t("stats-ops", { total: stats.total_operations, queue: stats.queue_size, drift: stats.drift_repairs }),
    t("stats-hour", { spark: sparkline(activity), count: activity.reduce((a, b) => a + b, 0) }),
    t("stats-uptime", { uptime: duration(stats.uptime_s) }),
    "",
    ...servers,
  ].join("\n");
}

export function statsHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  c.command("stats", async (ctx) =>
    ctx.reply(formatStats(await deps.getStats(), await deps.activity(), ctx.t)),
  );
  return c;
}
