import { Composer } from "grammy";
import { snoozeSchema } from "../src/bot/callback-data.js";
import type { BotContext } from "../src/bot/context.js";
import type { BotDeps } from "../src/bot/deps.js";
import { shorten } from "../src/bot/message-limits.js";
import { tomorrowAt } from "../src/domain/reminder.js";
import { formatInZone } from "../src/time-zone.js";
import { remindText } from "../scenes/new-task.js";

const hourMs = 3_600_000;

/**
 * /reminders: what will fire for this chat's open tasks, soonest first, in the reader's
 * zone. The snooze buttons under a reminder: one more reminder of the same task an hour
 * from the press or at 9:00 tomorrow in the reader's zone, once per reminder however often
 * the button is pressed, and none for a task that is done or deleted by then.
 */
export function remindersHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  const now = () => (deps.now ?? Date.now)();
  c.command("reminders", async (ctx) => {
    const store = deps.reminders;
    const chatId = ctx.chat.id.toString();
    const coming = store ? await store.upcoming(chatId, 20) : [];
    if (coming.length === 0)
      return ctx.reply(ctx.t("reminders-none", { defaults: remindText(deps.remindDefaults ?? [], ctx.t) }));
    const zone = await deps.timezoneOf(ctx.from?.id);
    const locale = await ctx.i18n.getLocale();
    const at = new Date(now());
    const lines = coming.map((r) =>
      ctx.t("reminders-line", {
        when: formatInZone(new Date(r.fireAt), zone, locale, at),
        title: shorten(r.title, 80),
        id: r.taskId,
      }),
    );
    return ctx.reply([ctx.t("reminders-head"), ...lines].join("\n"));
  });
  c.callbackQuery(/^rem:/, async (ctx) => {
    const parsed = snoozeSchema.safeParse(ctx.callbackQuery.data);
    const store = deps.reminders;
    const taskId = parsed.success && store ? await store.taskOf(parsed.data.id) : undefined;
    const view = taskId ? await deps.getTask(taskId) : undefined;
    if (!parsed.success || !store || !view) return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    if (view.task.state !== "open") {
      await ctx.answerCallbackQuery({
        text: ctx.t("change-stale", { id: view.task.id, state: ctx.t(`state-${view.task.state}`) }),
      });
      return ctx.editMessageReplyMarkup().catch(() => undefined);
    }
    const zone = await deps.timezoneOf(ctx.from?.id);
    const t = now();
    const at = parsed.data.until === "1h" ? t + hourMs : tomorrowAt(zone, t, 9);
    const snoozed = await store.snooze(parsed.data.id, at);
    if (snoozed === undefined) return ctx.answerCallbackQuery({ text: ctx.t("snooze-already") });
    deps.metrics?.reminderSnoozed?.();
    const when = formatInZone(new Date(at), zone, await ctx.i18n.getLocale(), new Date(t));
    await ctx.answerCallbackQuery({ text: ctx.t("snoozed", { when }) });
    const text = ctx.callbackQuery.message?.text;
    // The snooze buttons go; Done stays.
    const done = ctx.callbackQuery.message?.reply_markup?.inline_keyboard[0];
    await ctx
      .editMessageText(text ? `${text}\n${ctx.t("snoozed", { when })}` : ctx.t("snoozed", { when }), {
        ...(done ? { reply_markup: { inline_keyboard: [done] } } : {}),
      })
      .catch(() => undefined);
  });
  return c;
}
