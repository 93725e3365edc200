import type { Conversation, ConversationFlavor } from "@grammyjs/conversations";
import type { I18nFlavor } from "@grammyjs/i18n";
import type { Context } from "grammy";

/** The context inside a conversation: translations come with it (passed as a plugin). */
export type ConvContext = Context & I18nFlavor;
/** The context of the bot's outer middleware. */
export type BotContext = ConversationFlavor<ConvContext>;
export type BotConversation = Conversation<BotContext, ConvContext>;
