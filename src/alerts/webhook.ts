import { createHmac, timingSafeEqual } from "node:crypto";
import type { AlertRouteConfig } from "../config/schema.js";
import { isTaskEvent, type Alert } from "../domain/alert.js";
import { RouteFailure, type AlertText, type RouteSender } from "./route-delivery.js";

/**
 * With a secret, each POST carries `x-taskfan-timestamp` (Unix seconds) and
 * `x-taskfan-signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`: a receiver checks
 * the signature and that the timestamp is recent (`verifyWebhook`), so a captured delivery
 * cannot be played again later.
 */
export const signatureHeader = "x-taskfan-signature";
export const timestampHeader = "x-taskfan-timestamp";

/** How much of a refusal's body is read, for its reason. */
const reasonBytes = 4096;

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const textOrNull = (v: unknown) => (typeof v === "string" && v ? v : null);

/**
 * The JSON a webhook receives for one alert (schema "taskfan.alert/1"): the same alert at a
 * higher `count` is a repeat; `delivery` is stable across retries of one delivery.
 */
export function webhookBody(alert: Alert, text: string, from: { instance: string; version: string }) {
  const d = alert.details;
  if (isTaskEvent(alert.kind)) return taskEventBody(alert, text, from);
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

/**
 * The JSON a webhook receives for a task done, reopened or deleted (schema "taskfan.task/1"),
 * sent once per change: `task.version` is the version the change made, `source` who made it
 * ("chat", "api", "cli", or "sync:<server>" for a change found on a server).
 */
function taskEventBody(alert: Alert, text: string, from: { instance: string; version: string }) {
  const d = alert.details;
  return {
    schema: "taskfan.task/1",
    delivery: `${alert.id}-${alert.count}`,
    event: alert.kind.replace(/^task_/, ""),
    task: {
      id: alert.taskId,
      title: textOrNull(d.title),
      version: typeof d.version === "number" ? d.version : null,
      source: textOrNull(d.source),
      at: iso(alert.firstSeen),
    },
    text,
    taskfan: from,
  };
}

/** The signature of a delivery made at `timestamp` (Unix seconds). */
export function sign(timestamp: number, body: string, secret: string): string {
  return `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`;
}

/**
 * What a receiver runs on each delivery: true when the signature is the route's secret's
 * over this timestamp and body, and the timestamp is within `toleranceSeconds` of now.
 * Keep the `x-taskfan-delivery` ids seen within the tolerance to drop a repeat.
 */
export function verifyWebhook(
  body: string,
  headers: { timestamp: string | undefined; signature: string | undefined },
  secret: string,
  { toleranceSeconds = 300, now = Date.now() }: { toleranceSeconds?: number; now?: number } = {},
): boolean {
  const timestamp = Number(headers.timestamp);
  if (!Number.isInteger(timestamp) || Math.abs(now / 1000 - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(sign(timestamp, body, secret));
  const given = Buffer.from(headers.signature ?? "");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** Up to `max` bytes of a body, as text; the rest is not read. */
async function readSome(res: Response, max: number): Promise<string> {
  const reader = res.body?.getReader();
  if (!reader) return "";
  const parts: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < max) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      size += value.byteLength;
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  return Buffer.concat(parts).subarray(0, max).toString("utf8");
}

/**
 * POSTs each alert as JSON. 2xx: accepted. 5xx, 408, 429, a timeout or a network error: tried
 * again later (after Retry-After when given). Any other 4xx: refused for good, with the reason.
 * A redirect is not followed (the signed body would go where the config never said): it is
 * refused, naming where it pointed.
 */
export function webhookSender(
  route: Extract<AlertRouteConfig, { kind: "webhook" }>,
  text: AlertText,
  from: { instance: string; version: string },
): RouteSender {
  return {
    async send(alert, signal) {
      const body = JSON.stringify(webhookBody(alert, text(alert), from));
      const timestamp = Math.floor(Date.now() / 1000);
      let res: Response;
      try {
        res = await fetch(route.url, {
          method: "POST",
          redirect: "manual",
          headers: {
            "content-type": "application/json",
            "user-agent": `taskfan/${from.version}`,
            "x-taskfan-delivery": `${alert.id}-${alert.count}`,
            ...(route.secret
              ? {
                  [timestampHeader]: String(timestamp),
                  [signatureHeader]: sign(timestamp, body, route.secret),
                }
              : {}),
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
      if (res.status >= 300 && res.status < 400) {
        await res.body?.cancel();
        const to = redirectTarget(res.headers.get("location"), route.url);
        throw new RouteFailure(
          `HTTP ${res.status}: redirects are not followed${to ? ` (to ${to})` : ""}`,
          false,
        );
      }
      const said = (await readSome(res, reasonBytes).catch(() => ""))
        .replace(/\s+/g, " ")
        .trim()
        .slice(0, 200);
      const reason = `HTTP ${res.status}${said ? `: ${said}` : ""}`;
      const retry = res.status >= 500 || res.status === 408 || res.status === 429;
      const after = Number(res.headers.get("retry-after"));
      throw new RouteFailure(reason, retry, Number.isFinite(after) && after > 0 ? after * 1000 : undefined);
    },
  };
}

/** Where a redirect points, as scheme, host and path (no credentials or query). */
function redirectTarget(location: string | null, base: string): string | undefined {
  if (!location) return undefined;
  try {
    const u = new URL(location, base);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return undefined;
  }
}
