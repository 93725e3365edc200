import type { InlineKeyboardMarkup, Update, UserFromGetMe } from "grammy/types";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { terminalSafe } from "../terminal.js";
import { createBot, type TaskfanBot } from "./create-bot.js";
import type { BotDeps, BotSettings } from "./deps.js";

const consoleUser = { id: 1, is_bot: false, first_name: "you", language_code: "en" } as const;
const consoleChat = { id: 1, type: "private", first_name: "you" } as const;
const botInfo: UserFromGetMe = {
  id: 2,
  is_bot: true,
  first_name: "taskfan",
  username: "taskfan_console_bot",
  can_join_groups: false,
  can_read_all_group_messages: false,
  supports_inline_queries: false,
  can_connect_to_business: false,
  has_main_web_app: false,
  has_topics_enabled: false,
  allows_users_to_create_topics: false,
  can_manage_bots: false,
  supports_join_request_queries: false,
};

interface Button {
  text: string;
  data: string;
}

/** The chat the console's alerts and storage notices are sent to (printed like the rest). */
export const consoleAlertChat = "console-alerts";

/**
 * The console chat: the same bot, fed from a terminal. Each line becomes a message from
 * one local user; replies and edits are printed; buttons are numbered and chosen by
 * typing the number. An alert's buttons are lettered instead ([a], [b], ... of the latest
 * alert), so an alert printed in the middle of a conversation never takes the number
 * meant for the conversation's buttons.
 */
export function startConsoleChat(
  deps: BotDeps,
  settings: Omit<BotSettings, "allowedUserIds">,
  io: { input: Readable; output: Writable },
): { bot: TaskfanBot; closed: Promise<void>; stop(): void } {
  let messageId = 0;
  let updateId = 0;
  /** The buttons a number presses (the conversation's), and those a letter presses (an alert's). */
  const pressable: { number?: Pressable; letter?: Pressable } = {};
  type Pressable = { messageId: number; list: Button[] };
  const letters = "abcdefghijklmnopqrstuvwxyz";
  // What the bot says quotes task text and servers' errors: their control characters are escaped.
  const print = (text: string) => io.output.write(`${terminalSafe(text)}\n`);

  function show(
    kind: string,
    id: number,
    text: string,
    markup: InlineKeyboardMarkup | undefined,
    chatId: unknown,
  ): void {
    print(`${kind} ${text.replace(/\n/g, "\n  ")}`);
    const list = (markup?.inline_keyboard ?? [])
      .flat()
      .flatMap((b) =>
        "callback_data" in b && b.callback_data ? [{ text: b.text, data: b.callback_data }] : [],
      );
    if (list.length === 0) return;
    const alert = String(chatId) === consoleAlertChat;
    pressable[alert ? "letter" : "number"] = { messageId: id, list };
    print(`  ${list.map((b, i) => `[${alert ? letters[i] : i + 1}] ${b.text}`).join("  ")}`);
  }

  // The Bot API, answered locally: what the bot sends is printed.
  const localFetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const method = String(url).split("/").pop() ?? "";
    const body = (init?.body ? JSON.parse(String(init.body)) : {}) as Record<string, unknown>;
    let result: unknown = true;
    switch (method) {
      case "getMe":
        result = botInfo;
        break;
      case "sendMessage": {
        messageId += 1;
        show(
          "bot:",
          messageId,
          String(body.text),
          body.reply_markup as InlineKeyboardMarkup | undefined,
          body.chat_id,
        );
        result = {
          message_id: messageId,
          date: Math.floor(Date.now() / 1000),
          chat: consoleChat,
          text: body.text,
        };
        break;
      }
      case "editMessageText":
        show(
          `bot (updated #${String(body.message_id)}):`,
          Number(body.message_id),
          String(body.text),
          body.reply_markup as InlineKeyboardMarkup | undefined,
          body.chat_id,
        );
        result = {
          message_id: body.message_id,
          date: Math.floor(Date.now() / 1000),
          chat: consoleChat,
          text: body.text,
        };
        break;
      case "answerCallbackQuery":
        if (body.text) print(`  (${String(body.text)})`);
        break;
    }
    return new Response(JSON.stringify({ ok: true, result }), {
      headers: { "content-type": "application/json" },
    });
  };

  const taskfanBot = createBot(
    deps,
    { ...settings, allowedUserIds: new Set([consoleUser.id]) },
    { token: "0:console", botInfo, fetch: localFetch as typeof fetch, apiRoot: "http://console.invalid" },
  );

  function updateFor(line: string): Update {
    updateId += 1;
    const buttons = /^\d+$/.test(line)
      ? pressable.number
      : /^[a-z]$/.test(line)
        ? pressable.letter
        : undefined;
    const choice = buttons?.list[/^\d+$/.test(line) ? Number(line) - 1 : letters.indexOf(line)];
    if (choice && buttons) {
      return {
        update_id: updateId,
        callback_query: {
          id: String(updateId),
          from: consoleUser,
          chat_instance: "console",
          data: choice.data,
          message: {
            message_id: buttons.messageId,
            date: Math.floor(Date.now() / 1000),
            chat: consoleChat,
            text: "",
          },
        },
      };
    }
    messageId += 1;
    const command = /^\/\w+/.exec(line)?.[0];
    return {
      update_id: updateId,
      message: {
        message_id: messageId,
        date: Math.floor(Date.now() / 1000),
        chat: consoleChat,
        from: consoleUser,
        text: line,
        ...(command ? { entities: [{ type: "bot_command", offset: 0, length: command.length }] } : {}),
      },
    };
  }

  print("taskfan console chat: type /start, /newtask, /health ... (Ctrl-D to stop typing)");
  const lines = createInterface({ input: io.input, terminal: false });
  let queue = Promise.resolve();
  lines.on("line", (raw) => {
    const line = raw.trim();
    if (!line) return;
    // One update at a time, in order, like a chat.
    queue = queue.then(() => taskfanBot.bot.handleUpdate(updateFor(line)).catch(() => undefined));
  });
  const closed = new Promise<void>((resolve) => lines.once("close", () => void queue.then(resolve)));
  return {
    bot: taskfanBot,
    closed,
    stop() {
      lines.close();
      taskfanBot.progress.stop();
    },
  };
}
