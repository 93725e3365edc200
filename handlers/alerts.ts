import { Composer } from "grammy";
import { alertKeyboard, formatAlert, formatGroup, groupKeyboard } from "../src/bot/alert-format.js";
import { ackSchema } from "../src/bot/callback-data.js";
import type { BotContext } from "../src/bot/context.js";
import type { BotDeps } from "../src/bot/deps.js";
import type { Translate } from "../src/bot/i18n.js";

/** How a Telegram user is named in the alert chat: their name, else @username, else id. */
function nameOf(from: NonNullable<BotContext["from"]>): string {
  const name = [from.first_name, from.last_name].filter(Boolean).join(" ").trim();
  return (name || (from.username ? `@${from.username}` : String(from.id))).slice(0, 64);
}

/**
 * The alerts' "I'm on it" button: records who acknowledged the alert and shows it in the
 * message (in the alert chat's language, `alertT`); the first press counts, and on a
 * grouped message it counts for every problem shown. Repeats of an acknowledged alert edit
 * its message quietly until it recovers (see AlertDelivery).
 */
export function alertsHandler(deps: BotDeps, alertT: Translate): Composer<BotContext> {
  const c = new Composer<BotContext>();
  c.callbackQuery(/^ack:/, async (ctx) => {
    const id = ackSchema.safeParse(ctx.callbackQuery.data);
    if (!id.success) return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    const before = await deps.alerts.get(id.data);
    if (!before || before.status !== "open") return ctx.answerCallbackQuery({ text: ctx.t("ack-closed") });
    const alert = await deps.alerts.acknowledge(id.data, { name: nameOf(ctx.from), userId: ctx.from.id });
    // Closed in the meantime (it recovered): nothing to be on.
    if (!alert?.acknowledged) return ctx.answerCallbackQuery({ text: ctx.t("ack-closed") });
    const mine = alert.acknowledged.userId === ctx.from.id;
    deps.log.info({ alertId: alert.id, userId: ctx.from.id, mine }, "alert acknowledged");
    await ctx.answerCallbackQuery({
      text: mine ? ctx.t("ack-done") : ctx.t("ack-taken", { by: alert.acknowledged.by }),
    });
    // A grouped message: the press is for every problem it shows.
    const at = await deps.state.alertMessages.get(alert.id);
    let members = at ? await deps.state.alertMessages.sharing(at.chatId, at.messageId) : [];
    if (members.length > 1) {
      const by = { name: alert.acknowledged.by, userId: alert.acknowledged.userId };
      for (const m of members)
        if (m.status === "open" && !m.acknowledged) await deps.alerts.acknowledge(m.id, by);
      members = await deps.state.alertMessages.sharing(at!.chatId, at!.messageId);
    }
    const [text, keyboard] =
      members.length > 1
        ? [formatGroup(members, alertT), groupKeyboard(members, alertT)]
        : [formatAlert(alert, alertT), alertKeyboard(alert, alertT)];
    await ctx
      .editMessageText(text, keyboard ? { reply_markup: keyboard } : {})
      .catch((error: unknown) => deps.log.debug({ err: error }, "acknowledged alert not edited"));
  });
  return c;
}
