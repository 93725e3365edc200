import { Composer, InlineKeyboard } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import { buttonData } from "../src/bot/callback-data.js";
import type { BotDeps } from "../src/bot/deps.js";
import type { Translate } from "../src/bot/i18n.js";
import type { ServerHealth } from "../src/monitoring/health-monitor.js";
import type { StoreState } from "../src/store/store-health.js";

const emoji = { ONLINE: "🟢", DEGRADED: "🟡", ERROR: "🔴" } as const;

export function formatHealth(
  servers: readonly ServerHealth[],
  t: Translate,
  store: StoreState = { ok: true },
): string {
  const lines = servers.map((s) => {
    const ms = s.lastResponseMs === undefined ? "—" : `${Math.round(s.lastResponseMs)} ms`;
    const breaker = s.breaker === "closed" ? "" : t("health-breaker", { state: s.breaker });
    const why = s.status === "ONLINE" ? "" : `\n    ${s.reason}`;
    const where = s.url ? `\n    ${s.transport} ${s.url}` : "";
    return `${emoji[s.status]} ${s.server.padEnd(19)} ${s.status} · ${ms}${breaker}${where}${why}`;
  });
  const up = servers.filter((s) => s.status === "ONLINE").length;
  const storage = store.ok
    ? []
    : [
        t("health-storage-down", {
          reason: store.reason,
          since: new Date(store.since).toISOString().slice(11, 16),
        }),
      ];
  return [...storage, t("health-head", { up, total: servers.length }), "", ...lines].join("\n");
}

export const refreshHealth = (t: Translate) =>
  new InlineKeyboard().text(t("btn-refresh"), buttonData.healthRefresh);

/** /health, and its Refresh button (which probes every server again). */
export function healthHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  c.command("health", (ctx) =>
    ctx.reply(formatHealth(deps.getHealth(), ctx.t, deps.storeHealth.state), {
      reply_markup: refreshHealth(ctx.t),
    }),
  );
  c.callbackQuery(buttonData.healthRefresh, async (ctx) => {
    await ctx.answerCallbackQuery({ text: ctx.t("checking") });
    const text = formatHealth(await deps.checkHealth(), ctx.t, deps.storeHealth.state);
    if (ctx.callbackQuery.message?.text === text) return;
    const markup = { reply_markup: refreshHealth(ctx.t) };
    await ctx.editMessageText(text, markup).catch(() => ctx.reply(text, markup));
  });
  return c;
}
