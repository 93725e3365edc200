import { createHmac } from "node:crypto";
import type { AlertRouteConfig } from "../config/schema.js";
import type { Alert } from "../domain/alert.js";
import { RouteFailure, type AlertText, type RouteSender } from "./route-delivery.js";

/** The header that carries `sha256=<hex HMAC-SHA256 of the body>` when the route has a secret. */
export const signatureHeader = "x-taskfan-signature";

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const textOrNull = (v: unknown) => (typeof v === "string" && v ? v : null);

/**
 * The JSON a webhook receives for one alert (schema "taskfan.alert/1"): the same alert at a
 * higher `count` is a repeat; `delivery` is stable across retries of one delivery.
 */
export function webhookBody(alert: Alert, text: string, from: { instance: string; version: string }) {
  const d = alert.details;
  return {
    schema: "taskfan.alert/1",
    delivery: `${alert.id}-${alert.count}`,
    alert: {
      id: alert.id,
      kind: alert.kind,
      status: alert.status,
      server: alert.server || null,
      taskId: alert.taskId,
      firstSeen: iso(alert.firstSeen),
      lastSeen: iso(alert.lastSeen),
      closedAt: iso(alert.closedAt),
      count: alert.count,
      reason: textOrNull(d.reason),
      error: textOrNull(d.error),
      seenBy: textOrNull(d.instance),
      acknowledged: alert.acknowledged ? { by: alert.acknowledged.by, at: iso(alert.acknowledged.at) } : null,
    },
    text,
    taskfan: from,
  };
}

export function sign(body: string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}

/**
 * POSTs each alert as JSON. 2xx: accepted. 5xx, 408, 429, a timeout or a network error: tried
 * again later (after Retry-After when given). Any other 4xx: refused for good, with the reason.
 */
export function webhookSender(
  route: Extract<AlertRouteConfig, { kind: "webhook" }>,
  text: AlertText,
  from: { instance: string; version: string },
): RouteSender {
  return {
    async send(alert, signal) {
      const body = JSON.stringify(webhookBody(alert, text(alert), from));
      let res: Response;
      try {
        res = await fetch(route.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "user-agent": `taskfan/${from.version}`,
            "x-taskfan-delivery": `${alert.id}-${alert.count}`,
            ...(route.secret ? { [signatureHeader]: sign(body, route.secret) } : {}),
          },
          body,
          signal: AbortSignal.any([signal, AbortSignal.timeout(route.timeout * 1000)]),
        });
      } catch (error) {
        const cause = (error as Error & { cause?: { code?: string } }).cause?.code;
        const timedOut = (error as Error).name === "TimeoutError";
        throw new RouteFailure(
          timedOut
            ? `no answer within ${route.timeout} s`
            : `unreachable (${cause ?? (error as Error).message})`,
          true,
        );
      }
      if (res.ok) {
        await res.body?.cancel();
        return;
      }
      const said = (await res.text().catch(() => "")).replace(/\s+/g, " ").trim().slice(0, 200);
      const reason = `HTTP ${res.status}${said ? `: ${said}` : ""}`;
      const retry = res.status >= 500 || res.status === 408 || res.status === 429;
      const after = Number(res.headers.get("retry-after"));
      throw new RouteFailure(reason, retry, Number.isFinite(after) && after > 0 ? after * 1000 : undefined);
    },
  };
}
