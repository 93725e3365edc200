import { InlineKeyboard } from "grammy";
import type { Alert } from "../src/store/alerts.js";

const titles: Record<Alert["kind"], string> = {
  breaker_open: "🔴 circuit open",
  error: "🔴 ERROR",
  degraded: "🟡 DEGRADED",
  crash_loop: "♻️ crash loop",
  recovered: "✅ recovered",
  rolled_back: "↩️ task rolled back",
};

function detail(alert: Alert): string | undefined {
  const d = alert.details;
  const text = d.error ?? d.reason;
  return typeof text === "string" && text ? text : undefined;
}

/** The alert as the chat shows it: which server, since when, how often, the last error. */
export function formatAlert(alert: Alert): string {
  const since = new Date(alert.firstSeen).toISOString().replace("T", " ").slice(0, 16);
  if (alert.kind === "rolled_back") {
    return `${titles.rolled_back}: task ${alert.taskId}\n${detail(alert) ?? ""}`.trim();
  }
  if (alert.kind === "recovered") {
    const closed = Array.isArray(alert.details.closed) ? (alert.details.closed as string[]).join(", ") : "";
    const was =
      typeof alert.details.since === "number"
        ? new Date(alert.details.since).toISOString().replace("T", " ").slice(0, 16)
        : since;
    return `${titles.recovered}: ${alert.server} is back${closed ? ` (was: ${closed} since ${was} UTC)` : ""}`;
  }
  const lines = [
    `${titles[alert.kind]}: ${alert.server}`,
    `since ${since} UTC${alert.count > 1 ? ` · ${alert.count} times` : ""}`,
  ];
  const d = detail(alert);
  if (d) lines.push(`last error: ${d.split("\n")[0]}`);
  return lines.join("\n");
}

export function alertKeyboard(alert: Alert): InlineKeyboard | undefined {
  if (!alert.server) return undefined;
  return new InlineKeyboard()
    .text("Show health", "health:refresh")
    .text("Mute 1 h", `mute:${alert.server}:3600`);
}
