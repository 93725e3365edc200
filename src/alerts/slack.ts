import { IncomingWebhook, IncomingWebhookHTTPError } from "@slack/webhook";
import type { AlertRouteConfig } from "../config/schema.js";
import type { Alert } from "../domain/alert.js";
import { RouteFailure, type AlertText, type RouteSender } from "./route-delivery.js";

/** Slack treats &, < and > as markup (links, mentions): text of ours must not be. */
function escape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

/** The Block Kit message for one alert: its first line bold, the rest below, then where it came from. */
export function slackMessage(alert: Alert, text: string, from: { instance: string }) {
  const [head = "", ...rest] = text.split("\n");
  const body = [`*${escape(head)}*`, ...rest.map(escape)].join("\n");
  return {
    // The notification's text, and what clients without blocks show: escaped too, or a
    // "<!channel>" in a task's title or a server's error would ping everyone.
    text: escape(text),
    blocks: [
      { type: "section", text: { type: "mrkdwn", text: body.slice(0, 3000) } },
      {
        type: "context",
        elements: [{ type: "mrkdwn", text: escape(`taskfan · ${from.instance} · alert ${alert.id}`) }],
      },
    ],
  };
}

/**
 * Posts each alert to a Slack incoming webhook (@slack/webhook). A 5xx, 408, 429 or no
 * answer: tried again later. Any other 4xx (a revoked hook, "invalid_payload"): refused.
 */
export function slackSender(
  route: Extract<AlertRouteConfig, { kind: "slack" }>,
  text: AlertText,
  from: { instance: string },
): RouteSender {
  // Its own retries are off: the route's outbox retries, with backoff, across restarts.
  const hook = new IncomingWebhook(route.url, { timeout: route.timeout * 1000, retryConfig: { retries: 0 } });
  return {
    async send(alert) {
      try {
        await hook.send(slackMessage(alert, text(alert), from));
      } catch (error) {
        if (error instanceof IncomingWebhookHTTPError) {
          const said = error.body.replace(/\s+/g, " ").trim().slice(0, 200);
          const status = error.statusCode;
          throw new RouteFailure(
            `HTTP ${status}${said ? `: ${said}` : ""}`,
            status >= 500 || status === 408 || status === 429,
          );
        }
        const original = (error as { original?: Error }).original ?? (error as Error);
        throw new RouteFailure(
          original.name === "TimeoutError"
            ? `no answer within ${route.timeout} s`
            : `unreachable (${(original as Error & { cause?: { code?: string } }).cause?.code ?? original.message})`,
          true,
        );
      }
    },
  };
}
