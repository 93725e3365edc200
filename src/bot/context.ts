import type { Conversation, ConversationFlavor } from "@grammyjs/conversations";
import type { I18nFlavor } from "@grammyjs/i18n";
import type { Context } from "grammy";

/** The context inside a conversation: translations come with it (passed as a plugin). */
export type ConvContext = Context & I18nFlavor;
/**
 * What the sender of an update may do: `full` (allowed users) or `read` (other members of
 * the alert chat: /health, /stats and the alert buttons), set by access control.
 */
export interface AccessFlavor {
  access: "full" | "read";
}
/** The context of the bot's outer middleware. */
export type BotContext = ConversationFlavor<ConvContext & AccessFlavor>;
export type BotConversation = Conversation<BotContext, ConvContext>;
