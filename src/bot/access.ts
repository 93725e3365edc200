import type { MiddlewareFn } from "grammy";
import type { Logger } from "../log.js";
import { buttonData } from "./callback-data.js";
import type { BotContext } from "./context.js";
import type { BotSettings } from "./deps.js";

/** What the alert chat's other members may use: reading the fleet's state, and the alert buttons. */
const readCommands = ["start", "help", "health", "stats"];
const isAlertButton = (data: string) =>
  data === buttonData.healthRefresh || data.startsWith("mute:") || data.startsWith("ack:");

/**
 * Who may do what. Allowed users (ALLOWED_USER_IDS): everything. Other members of the
 * alert chat: /health, /stats and the alert buttons (everything with
 * `security.alert_chat_access: "full"`). Anyone else gets one polite refusal with their
 * user id, so the owner can add them, and silence after that.
 */
export function accessControl(settings: BotSettings, log: Logger): MiddlewareFn<BotContext> {
  const refused = new Set<number>();
  const warned = new Set<number>();
  return async (ctx, next) => {
    const userId = ctx.from?.id;
    const chatId = ctx.chat?.id;
    if (userId !== undefined && settings.allowedUserIds.has(userId)) {
      ctx.access = "full";
      return next();
    }
    const inAlertChat =
      chatId !== undefined && settings.alertChatId !== undefined && String(chatId) === settings.alertChatId;
    if (inAlertChat) {
      ctx.access = settings.alertChatAccess ?? "read";
      if (ctx.access === "full") return next();
      const data = ctx.callbackQuery?.data;
      const reading = ctx.hasCommand(readCommands) || (data !== undefined && isAlertButton(data));
      if (reading) return next();
      log.info(
        { userId, chatId, updateId: ctx.update.update_id },
        "refused a change from a read-only member",
      );
      if (data !== undefined) {
        await ctx.answerCallbackQuery({ text: ctx.t("read-only") }).catch(() => undefined);
      } else if (ctx.message?.text?.startsWith("/") && userId !== undefined && !warned.has(userId)) {
        // Said once per member and start; plain chatter in the group is not for the bot.
        warned.add(userId);
        await ctx.reply(ctx.t("read-only")).catch(() => undefined);
      }
      return;
    }
    log.warn(
      { userId, chatId, updateId: ctx.update.update_id },
      "refused an update from a user who is not allowed",
    );
    if (userId === undefined || refused.has(userId)) return;
    refused.add(userId);
    if (ctx.callbackQuery) await ctx.answerCallbackQuery().catch(() => undefined);
    if (ctx.chat) {
      await ctx.reply(ctx.t("refused", { id: userId })).catch(() => undefined);
    }
  };
}
