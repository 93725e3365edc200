import { Composer, InlineKeyboard } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import type { BotDeps } from "../src/bot/deps.js";
import type { ServerHealth } from "../src/monitoring/health-monitor.js";

const emoji = { ONLINE: "🟢", DEGRADED: "🟡", ERROR: "🔴" } as const;

export function formatHealth(servers: readonly ServerHealth[]): string {
  const lines = servers.map((s) => {
    const ms = s.lastResponseMs === undefined ? "—" : `${Math.round(s.lastResponseMs)} ms`;
    const breaker = s.breaker === "closed" ? "" : ` · breaker ${s.breaker}`;
    const why = s.status === "ONLINE" ? "" : `\n    ${s.reason}`;
    return `${emoji[s.status]} ${s.server.padEnd(19)} ${s.status} · ${ms}${breaker}${why}`;
  });
  const up = servers.filter((s) => s.status === "ONLINE").length;
  return [`Servers: ${up} of ${servers.length} online`, "", ...lines].join("\n");
}

export const refreshHealth = new InlineKeyboard().text("🔄 Refresh", "health:refresh");

/** /health, and its Refresh button (which probes every server again). */
export function healthHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  c.command("health", (ctx) => ctx.reply(formatHealth(deps.getHealth()), { reply_markup: refreshHealth }));
  c.callbackQuery("health:refresh", async (ctx) => {
    await ctx.answerCallbackQuery({ text: "Checking every server…" });
    const text = formatHealth(await deps.checkHealth());
    if (ctx.callbackQuery.message?.text === text) return;
    await ctx
      .editMessageText(text, { reply_markup: refreshHealth })
      .catch(() => ctx.reply(text, { reply_markup: refreshHealth }));
  });
  return c;
}
