import { expect, vi } from "vitest";
import { createBot } from "../../src/bot/create-bot.js";
import { botDepsOf } from "../../src/bot/front-end.js";
import type { Core } from "../../src/core.js";
import { silentLog } from "../helpers.js";
import { botInfo, fakeTelegram } from "./fake-telegram.js";

/** The user whose chat owns the tasks: `owned` makes a task theirs. */
export const owner = 7;
export const owned = { owner: { chatId: String(owner), userId: owner } };

/**
 * A bot over a running core on a fake Bot API, allowed for the owner: what the core tells
 * the owner's chat (a change found on a server, a conflict) can be waited for with `told`.
 */
export function ownerChat(core: Core) {
  const tg = fakeTelegram();
  const bot = createBot(
    botDepsOf(core, silentLog),
    { allowedUserIds: new Set([owner]), alertChatId: "-100", rateLimitPerMinute: 100 },
    { token: "42:TEST", botInfo, fetch: tg.fetch },
  );
  return {
    tg,
    /** Resolves once the chat was sent exactly this text (all texts shown if it never is). */
    told: (text: string) =>
      vi.waitFor(() => expect(tg.texts().join("\n---\n")).toContain(text), { timeout: 10_000, interval: 20 }),
    stop: () => bot.progress.stop(),
  };
}
