import nodemailer from "nodemailer";
import type { AlertRouteConfig } from "../config/schema.js";
import type { Alert } from "../domain/alert.js";
import { RouteFailure, type AlertText, type RouteSender } from "./route-delivery.js";

type EmailRoute = Extract<AlertRouteConfig, { kind: "email" }>;

const escapeHtml = (text: string) =>
  text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** The domain of the From address: where our Message-IDs live. */
function domainOf(from: string): string {
  return /@([^>\s]+)>?\s*$/.exec(from)?.[1] ?? "taskfan.invalid";
}

/**
 * The thread an alert's e-mails share: the first message of a problem starts it, its
 * repeats and its recovery answer it (a recovery names the problems it closed).
 */
export function threadOf(alert: Alert, domain: string): { messageId: string; replyTo?: string } {
  const id = (alertId: number, count: number) => `<taskfan-alert-${alertId}.${count}@${domain}>`;
  const closed = Array.isArray(alert.details.ids) ? (alert.details.ids[0] as unknown) : undefined;
  if (alert.kind === "recovered" && typeof closed === "number") {
    return { messageId: id(alert.id, alert.count), replyTo: id(closed, 1) };
  }
  return alert.count > 1
    ? { messageId: id(alert.id, alert.count), replyTo: id(alert.id, 1) }
    : { messageId: id(alert.id, 1) };
}

/** The e-mail for one alert: the alert chat's text, as plain text and as HTML. */
export function emailOf(alert: Alert, text: string, route: EmailRoute, from: { instance: string }) {
  const [subject = "", ...rest] = text.split("\n");
  const thread = threadOf(alert, domainOf(route.from));
  const footer = `taskfan · ${from.instance} · alert ${alert.id}`;
  return {
    from: route.from,
    to: route.to,
    subject: `${alert.count > 1 || thread.replyTo ? "Re: " : ""}[taskfan] ${subject}`,
    text: `${[subject, ...rest].join("\n")}\n\n-- \n${footer}\n`,
    html:
      `<p><strong>${escapeHtml(subject)}</strong></p>` +
      (rest.length > 0 ? `<p>${rest.map(escapeHtml).join("<br>")}</p>` : "") +
      `<p style="color:#888">${escapeHtml(footer)}</p>`,
    messageId: thread.messageId,
    ...(thread.replyTo ? { inReplyTo: thread.replyTo, references: [thread.replyTo] } : {}),
  };
}

/**
 * Sends each alert by e-mail over SMTP (nodemailer). No connection, a timeout or a 4xx
 * reply: tried again later. A 5xx reply (a recipient refused, the message rejected):
 * refused for good, with the server's words.
 */
export function emailSender(route: EmailRoute, text: AlertText, from: { instance: string }): RouteSender {
  const ms = route.timeout * 1000;
  const transport = nodemailer.createTransport({
    url: route.url,
    connectionTimeout: ms,
    greetingTimeout: ms,
    socketTimeout: ms,
  });
  return {
    async send(alert) {
      try {
        await transport.sendMail(emailOf(alert, text(alert), route, from));
      } catch (error) {
        const e = error as Error & { responseCode?: number; code?: string; response?: string };
        const said = (e.response ?? e.message).replace(/\s+/g, " ").trim().slice(0, 200);
        if (typeof e.responseCode === "number") {
          throw new RouteFailure(`SMTP ${e.responseCode}: ${said}`, e.responseCode < 500);
        }
        throw new RouteFailure(`unreachable (${e.code ?? said})`, true);
      }
    },
  };
}
