import type { MiddlewareFn } from "grammy";
import type { Logger } from "../log.js";
import type { BotContext } from "./context.js";
import type { BotSettings } from "./deps.js";

/**
 * Only allowed users (and the alert chat) get through. A stranger gets one polite refusal
 * with their user id, so the owner can add them, and silence after that.
 */
export function accessControl(settings: BotSettings, log: Logger): MiddlewareFn<BotContext> {
  const refused = new Set<number>();
  return async (ctx, next) => {
    const userId = ctx.from?.id;
    const chatId = ctx.chat?.id;
    if (userId !== undefined && settings.allowedUserIds.has(userId)) return next();
    if (
      chatId !== undefined &&
      settings.alertChatId !== undefined &&
      String(chatId) === settings.alertChatId
    ) {
      return next();
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
