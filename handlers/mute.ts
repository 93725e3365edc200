import { Composer } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import { maxMuteMs, muteSchema } from "../src/bot/callback-data.js";
import type { BotDeps } from "../src/bot/deps.js";
import { routeMuteKey } from "../src/alerts/route-delivery.js";

/** "30m", "1h", "2d", "90s" (a bare number is minutes). */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+)\s*([smhd]?)$/i.exec(text.trim());
  if (!m) return undefined;
  const unit = { s: 1, m: 60, h: 3600, d: 86_400, "": 60 }[m[2]!.toLowerCase() as "s"];
  const seconds = Number(m[1]) * unit;
  return seconds > 0 && seconds * 1000 <= maxMuteMs ? seconds * 1000 : undefined;
}

/**
 * What a mute is kept under: "*" for all, a server's name, or an alert route's own key (a
 * route is muted by its name, apart from the chat's); undefined for a name that is neither.
 */
function muteKey(deps: BotDeps, target: string): string | undefined {
  if (target === "all") return "*";
  if (deps.serverNames.includes(target)) return target;
  return deps.routeNames?.includes(target) ? routeMuteKey(target) : undefined;
}

async function muteUntil(deps: BotDeps, server: string, ms: number): Promise<string> {
  const until = Date.now() + ms;
  await deps.state.mutes.mute(server, until);
  return new Date(until).toISOString();
}

/** /mute <server|all> <duration>, /unmute [server|all], and the alerts' "Mute 1 h" button. */
export function muteHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  c.command("mute", async (ctx) => {
    const [target, span = "1h"] = ctx.match.trim().split(/\s+/);
    if (!target) {
      const active = await deps.state.mutes.active();
      return ctx.reply(
        active.length === 0
          ? ctx.t("mute-none")
          : active
              .map((m) =>
                ctx.t("mute-line", {
                  server: m.server === "*" ? "all" : m.server,
                  until: new Date(m.until).toISOString(),
                }),
              )
              .join("\n"),
      );
    }
    const server = muteKey(deps, target);
    if (server === undefined) {
      const known = [...deps.serverNames, ...(deps.routeNames ?? [])].join(", ");
      return ctx.reply(ctx.t("mute-no-server", { target, servers: known }));
    }
    const ms = parseDuration(span);
    if (ms === undefined) return ctx.reply(ctx.t("mute-bad-duration", { span }));
    return ctx.reply(ctx.t("muted", { target, until: await muteUntil(deps, server, ms) }));
  });
  c.command("unmute", async (ctx) => {
    const target = ctx.match.trim();
    const one = target && target !== "all" ? (muteKey(deps, target) ?? target) : undefined;
    await deps.state.mutes.unmute(one);
    return ctx.reply(ctx.t("unmuted", { target: one ? target : ctx.t("every-server") }));
  });
  const button = muteSchema(deps.serverNames);
  c.callbackQuery(/^mute:/, async (ctx) => {
    const parsed = button.safeParse(ctx.callbackQuery.data);
    if (!parsed.success) return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    const until = await muteUntil(deps, parsed.data.server, parsed.data.seconds * 1000);
    await ctx.answerCallbackQuery({ text: ctx.t("muted-short", { until }) });
  });
  return c;
}
