import type { Conversation, ConversationFlavor } from "@grammyjs/conversations";
import type { Context } from "grammy";

/** The context of the bot's outer middleware. */
export type BotContext = ConversationFlavor<Context>;
/** The context inside a conversation. */
export type ConvContext = Context;
export type BotConversation = Conversation<BotContext, ConvContext>;
