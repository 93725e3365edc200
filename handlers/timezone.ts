import { Composer, InlineKeyboard } from "grammy";
import { buttonData, timeZoneButtonSchema } from "../src/bot/callback-data.js";
import type { BotContext } from "../src/bot/context.js";
import type { BotDeps } from "../src/bot/deps.js";
import { shorten } from "../src/bot/message-limits.js";
import { formatInZone, zoneFromInput, zoneLabel } from "../src/time-zone.js";

/** Zones offered as buttons; any other is typed (a zone, a city or a UTC offset). */
export const commonZones = [
  "UTC",
  "Europe/London",
  "Europe/Berlin",
  "Europe/Moscow",
  "Asia/Dubai",
  "Asia/Singapore",
  "Asia/Tokyo",
  "America/New_York",
  "America/Los_Angeles",
];

function zoneKeyboard(): InlineKeyboard {
  const kb = new InlineKeyboard();
  commonZones.forEach((zone, i) => {
    kb.text(zone, buttonData.timeZone(zone));
    if (i % 3 === 2) kb.row();
  });
  return kb;
}

/**
 * /timezone shows the user's zone, with buttons for common ones; /timezone <zone, city or
 * UTC offset> sets it. Deadlines they type are read in it, and shown to them in it.
 */
export function timezoneHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  const set = async (ctx: BotContext, zone: string) => {
    await deps.state.timezones.set(ctx.from!.id, zone);
    const now = formatInZone(new Date(), zone, await ctx.i18n.getLocale());
    return ctx.t("tz-set", { zone: zoneLabel(zone), now });
  };
  c.command("timezone", async (ctx) => {
    const input = ctx.match.trim();
    if (!input) {
      const zone = await deps.timezoneOf(ctx.from?.id);
      const now = formatInZone(new Date(), zone, await ctx.i18n.getLocale());
      return ctx.reply(ctx.t("tz-current", { zone: zoneLabel(zone), now }), { reply_markup: zoneKeyboard() });
    }
    const zone = zoneFromInput(input);
    if (!zone) return ctx.reply(ctx.t("tz-unknown", { input: shorten(input, 60) }));
    return ctx.reply(await set(ctx, zone));
  });
  c.callbackQuery(/^tz:/, async (ctx) => {
    const zone = timeZoneButtonSchema.safeParse(ctx.callbackQuery.data);
    if (!zone.success) return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    await ctx.answerCallbackQuery();
    await ctx.editMessageText(await set(ctx, zone.data)).catch(() => undefined);
  });
  return c;
}
