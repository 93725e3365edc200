import type { Update, UserFromGetMe } from "grammy/types";

export const botInfo: UserFromGetMe = {
  id: 42,
  is_bot: true,
  first_name: "taskfan",
  username: "taskfan_test_bot",
  can_join_groups: true,
  can_read_all_group_messages: false,
  supports_inline_queries: false,
  can_connect_to_business: false,
  has_main_web_app: false,
  has_topics_enabled: false,
  allows_users_to_create_topics: false,
  can_manage_bots: false,
  supports_join_request_queries: false,
};

export interface ApiCall {
  method: string;
  payload: Record<string, unknown>;
}

/**
 * A Bot API answered in memory through grammY's `client.fetch`: it records every call and
 * answers like Telegram. `failNext` makes the next calls of a method fail as given.
 */
/** Message ids go on across fakes, as they do in one real chat (the store keeps them). */
let messageId = 100;

export function fakeTelegram() {
  const calls: ApiCall[] = [];
  const failures: Array<{ method: string; body: Record<string, unknown> }> = [];
  const fetch = async (url: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const method = String(url).split("/").pop() ?? "";
    const payload = (init?.body ? JSON.parse(String(init.body)) : {}) as Record<string, unknown>;
    calls.push({ method, payload });
    const failure = failures.findIndex((f) => f.method === method);
    if (failure >= 0) {
      const body = failures.splice(failure, 1)[0]!.body;
      // A dropped connection: the request never gets an answer.
      if (body.reset) throw new TypeError("fetch failed: socket hang up (ECONNRESET)");
      return new Response(JSON.stringify(body), { status: Number(body.error_code ?? 400) });
    }
    let result: unknown = true;
    // Telegram's own limit: a text over 4096 characters is refused.
    if (typeof payload.text === "string" && payload.text.length > 4096) {
      return new Response(
        JSON.stringify({ ok: false, error_code: 400, description: "Bad Request: message is too long" }),
        { status: 400 },
      );
    }
    if (method === "sendMessage" || method === "editMessageText") {
      result = {
        message_id: method === "sendMessage" ? ++messageId : payload.message_id,
        date: 0,
        chat: { id: payload.chat_id, type: "private" },
        text: payload.text,
      };
    }
    return new Response(JSON.stringify({ ok: true, result }), {
      headers: { "content-type": "application/json" },
    });
  };
  return {
    fetch: fetch as typeof globalThis.fetch,
    calls,
    /** Texts the bot sent or edited, in order. */
    texts: () =>
      calls
        .filter((c) => c.method === "sendMessage" || c.method === "editMessageText")
        .map((c) => String(c.payload.text)),
    sent: () => calls.filter((c) => c.method === "sendMessage"),
    failNext(method: string, body: Record<string, unknown>) {
      failures.push({ method, body });
    },
  };
}

/** Builds updates from one user in one private chat (or in the group `group`). */
export function chatWith(userId: number, language = "en", group?: number) {
  let updateId = group === undefined ? 0 : 10_000;
  let messageId = 0;
  const from = { id: userId, is_bot: false, first_name: `user${userId}`, language_code: language };
  const chat =
    group === undefined
      ? { id: userId, type: "private" as const, first_name: from.first_name }
      : { id: group, type: "supergroup" as const, title: "alerts" };
  return {
    text(text: string): Update {
      const command = /^\/\w+/.exec(text)?.[0];
      return {
        update_id: ++updateId,
        message: {
          message_id: ++messageId,
          date: Math.floor(Date.now() / 1000),
          chat,
          from,
          text,
          ...(command
            ? { entities: [{ type: "bot_command" as const, offset: 0, length: command.length }] }
            : {}),
        },
      };
    },
    /** A reply to the bot's message `to` (its text as Telegram sends it along). */
    reply(text: string, to: { messageId: number; text: string }): Update {
      return {
        update_id: ++updateId,
        message: {
          message_id: ++messageId,
          date: Math.floor(Date.now() / 1000),
          chat,
          from,
          text,
          reply_to_message: {
            message_id: to.messageId,
            date: 0,
            chat,
            from: { id: botInfo.id, is_bot: true, first_name: botInfo.first_name },
            text: to.text,
            reply_to_message: undefined,
          },
        },
      };
    },
    /** A button pressed under message `onMessage`, whose text Telegram sends with it. */
    press(data: string, onMessage = 1, text = ""): Update {
      return {
        update_id: ++updateId,
        callback_query: {
          id: String(updateId),
          from,
          chat_instance: "test",
          data,
          message: { message_id: onMessage, date: 0, chat, text },
        },
      };
    },
  };
}
