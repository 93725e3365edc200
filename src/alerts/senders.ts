import type { AlertRouteConfig } from "../config/schema.js";
import { emailSender } from "./email.js";
import type { AlertText, RouteSender } from "./route-delivery.js";
import { slackSender } from "./slack.js";
import { webhookSender } from "./webhook.js";

/** The sender of a route's kind; `text` is the alert as the alert chat words it. */
export function senderFor(
  route: AlertRouteConfig,
  text: AlertText,
  from: { instance: string; version: string },
): RouteSender {
  switch (route.kind) {
    case "webhook":
      return webhookSender(route, text, from);
    case "slack":
      return slackSender(route, text, from);
    case "email":
      return emailSender(route, text, from);
  }
}
