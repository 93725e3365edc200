import type { AlertRouteConfig } from "../config/schema.js";
import { emailSender } from "./email.js";
import { RouteFailure, type AlertText, type RouteSender } from "./route-delivery.js";
import { slackSender } from "./slack.js";
import { telegramSender, type TelegramSend } from "./telegram.js";
import { webhookSender } from "./webhook.js";

/**
 * The sender of a route's kind; `text` is the alert as the alert chat words it. A Telegram
 * route needs the bot (`telegram`): without it (no BOT_TOKEN) it refuses every alert, saying why.
 */
export function senderFor(
  route: AlertRouteConfig,
  text: AlertText,
  from: { instance: string; version: string },
  telegram?: TelegramSend,
): RouteSender {
  switch (route.kind) {
    case "webhook":
      return webhookSender(route, text, from);
    case "slack":
      return slackSender(route, text, from);
    case "email":
      return emailSender(route, text, from);
    case "telegram":
      return telegram
        ? telegramSender(route, text, telegram)
        : {
            send() {
              return Promise.reject(new RouteFailure("the Telegram bot is off (no BOT_TOKEN)", false));
            },
          };
  }
}
