import { InlineKeyboard } from "grammy";
import { isTaskEvent, type Alert } from "../domain/alert.js";
import { buttonData } from "./callback-data.js";
import type { Translate } from "./i18n.js";

/** A time as the alert chat reads it: UTC, to the minute. */
export const minute = (at: number) => new Date(at).toISOString().replace("T", " ").slice(0, 16);

function detail(alert: Alert): string | undefined {
  const d = alert.details;
  const text = d.error ?? d.reason;
  return typeof text === "string" && text ? text : undefined;
}

/** The alert as the chat shows it: which server, since when, how often, the last error. */
export function formatAlert(alert: Alert, t: Translate): string {
  if (isTaskEvent(alert.kind)) {
    const d = alert.details;
    return t(`alert-${alert.kind}`, {
      id: alert.taskId ?? "",
      title: typeof d.title === "string" ? d.title : "",
      source: typeof d.source === "string" ? d.source : "",
    });
  }
  if (alert.kind === "rolled_back") {
    return [t("alert-rolled-back", { id: alert.taskId ?? "" }), detail(alert) ?? ""].join("\n").trim();
  }
  if (alert.kind === "recovered") {
    const closed = Array.isArray(alert.details.closed) ? (alert.details.closed as string[]).join(", ") : "";
    const since = typeof alert.details.since === "number" ? alert.details.since : alert.firstSeen;
    const was = closed ? t("alert-recovered-was", { closed, since: minute(since) }) : "";
    return `${t("alert-recovered", { server: alert.server })}${was}`;
  }
  const since = t("alert-since", { since: minute(alert.firstSeen) });
  const lines = [
    `${t(`alert-${alert.kind}`)}: ${alert.server}`,
    `${since}${alert.count > 1 ? t("alert-times", { count: alert.count }) : ""}`,
  ];
  const d = detail(alert);
  if (d) lines.push(t("alert-last-error", { error: d.split("\n")[0] ?? d }));
  const instance = alert.details.instance;
  if (typeof instance === "string" && instance) lines.push(t("alert-seen-by", { instance }));
  if (alert.acknowledged) {
    lines.push(t("alert-acked", { by: alert.acknowledged.by, at: minute(alert.acknowledged.at) }));
  }
  return lines.join("\n");
}

/**
 * Several problems that opened within the grouping window, as one message: a head line
 * over the ones still open, then a line per server (a recovered one says so).
 */
export function formatGroup(members: readonly Alert[], t: Translate): string {
  const open = members.filter((a) => a.status === "open");
  const serversOf = (list: readonly Alert[]) => [...new Set(list.map((a) => a.server))];
  const named = (list: readonly Alert[]) => ({
    count: serversOf(list).length,
    servers: serversOf(list).join(", "),
  });
  const kinds = new Set(open.map((a) => a.kind));
  const head =
    open.length === 0
      ? t("alert-group-back", named(members))
      : kinds.size === 1
        ? t("alert-group", { kind: t(`alert-${open[0]!.kind}`), ...named(open) })
        : t("alert-group-mixed", named(open));
  const lines = members.map((a) => {
    const since = minute(a.firstSeen);
    if (a.status === "closed") {
      return t("alert-group-line-back", { server: a.server, kind: t(`alert-${a.kind}`), since });
    }
    const d = detail(a);
    return t("alert-group-line", {
      kind: t(`alert-${a.kind}`),
      server: a.server,
      since,
      times: a.count > 1 ? t("alert-times", { count: a.count }) : "",
      error: d ? t("alert-group-error", { error: (d.split("\n")[0] ?? d).slice(0, 200) }) : "",
    });
  });
  const acked = open.find((a) => a.acknowledged)?.acknowledged;
  if (acked) lines.push(t("alert-acked", { by: acked.by, at: minute(acked.at) }));
  return [head, ...lines].join("\n");
}

/** A grouped message's buttons: Show health; "I'm on it" (for all of them) while one is open and nobody is on it. */
export function groupKeyboard(members: readonly Alert[], t: Translate): InlineKeyboard {
  const keyboard = new InlineKeyboard().text(t("btn-show-health"), buttonData.healthRefresh);
  const open = members.filter((a) => a.status === "open");
  if (open.length > 0 && !open.some((a) => a.acknowledged)) {
    keyboard.text(t("btn-ack"), buttonData.ack(open[0]!.id));
  }
  return keyboard;
}

/** Show health and Mute 1 h; and "I'm on it" while a problem is open and nobody is on it. */
export function alertKeyboard(alert: Alert, t: Translate): InlineKeyboard | undefined {
  if (!alert.server) return undefined;
  const keyboard = new InlineKeyboard()
    .text(t("btn-show-health"), buttonData.healthRefresh)
    .text(t("btn-mute-hour"), buttonData.mute(alert.server, 3600));
  if (alert.status === "open" && !alert.acknowledged) {
    keyboard.row().text(t("btn-ack"), buttonData.ack(alert.id));
  }
  return keyboard;
}
