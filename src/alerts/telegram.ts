import type { AlertRouteConfig } from "../config/schema.js";
import { RouteFailure, type AlertText, type RouteSender } from "./route-delivery.js";

/** What a Telegram route needs of the bot: sendMessage (grammY's Api, with its retries). */
export type TelegramSend = (
  chatId: string,
  text: string,
  other: { message_thread_id?: number; disable_notification?: boolean },
) => Promise<unknown>;

/**
 * Posts each alert change to another Telegram chat (or topic) as a message of its own:
 * no buttons, no edits (the alert chat keeps those). 429 and 5xx are retried by the bot's
 * client first, then by the route; a 400 or 403 (no such chat, the bot was removed) is
 * refused for good.
 */
export function telegramSender(
  route: Extract<AlertRouteConfig, { kind: "telegram" }>,
  text: AlertText,
  send: TelegramSend,
): RouteSender {
  return {
    async send(alert) {
      try {
        await send(String(route.chat_id), text(alert), {
          ...(route.thread_id ? { message_thread_id: route.thread_id } : {}),
          ...(route.quiet_kinds.includes(alert.kind) ? { disable_notification: true } : {}),
        });
      } catch (error) {
        const code = (error as { error_code?: number }).error_code;
        const said = ((error as { description?: string }).description ?? (error as Error).message).slice(
          0,
          200,
        );
        if (typeof code === "number") {
          throw new RouteFailure(`Telegram ${code}: ${said}`, code >= 500 || code === 429);
        }
        throw new RouteFailure(`unreachable (${said})`, true);
      }
    },
  };
}
