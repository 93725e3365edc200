import { Composer, InlineKeyboard } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import { buttonData, tasksPageSchema } from "../src/bot/callback-data.js";
import type { BotDeps } from "../src/bot/deps.js";
import type { Translate } from "../src/bot/i18n.js";
import { shorten } from "../src/bot/message-limits.js";
import { formatInZone } from "../src/time-zone.js";
import type { Task } from "../src/domain/task.js";

const pageSize = 10;
const icon: Record<Task["status"], string> = {
  pending: "⏳",
  running: "🔄",
  done: "✅",
  partial: "🟡",
  failed: "❌",
  rolled_back: "↩️",
};

export function formatTasks(
  tasks: readonly Task[],
  page: number,
  total: number,
  t: Translate,
  date: (iso: string) => string = (iso) => iso,
): { text: string; keyboard: InlineKeyboard } {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const lines = tasks.map(
    (task) =>
      `${icon[task.status]} ${task.id} · ${shorten(task.title, 50)}${task.deadline ? ` · ${t("tasks-due", { date: date(task.deadline) })}` : ""}`,
  );
  const keyboard = new InlineKeyboard();
  if (page > 0) keyboard.text(t("btn-newer"), buttonData.tasksPage(page - 1));
  if (page + 1 < pages) keyboard.text(t("btn-older"), buttonData.tasksPage(page + 1));
  const text =
    total === 0
      ? t("tasks-none")
      : [t("tasks-head", { page: page + 1, pages }), ...lines, "", t("tasks-hint")].join("\n");
  return { text, keyboard };
}

/** /tasks: the last ten, with buttons to page through older ones. */
export function tasksHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  const page = async (n: number, ctx: BotContext) => {
    const zone = await deps.timezoneOf(ctx.from?.id);
    const locale = await ctx.i18n.getLocale();
    const [tasks, count] = await Promise.all([deps.recentTasks(pageSize, n * pageSize), deps.countTasks()]);
    return formatTasks(tasks, n, count, ctx.t, (iso) => formatInZone(iso, zone, locale));
  };
  c.command("tasks", async (ctx) => {
    const { text, keyboard } = await page(0, ctx);
    return ctx.reply(text, { reply_markup: keyboard });
  });
  c.callbackQuery(/^tasks:page:/, async (ctx) => {
    const n = tasksPageSchema.safeParse(ctx.callbackQuery.data);
    const pages = Math.max(1, Math.ceil((await deps.countTasks()) / pageSize));
    if (!n.success || n.data >= pages) return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    await ctx.answerCallbackQuery();
    const { text, keyboard } = await page(n.data, ctx);
    await ctx.editMessageText(text, { reply_markup: keyboard });
  });
  return c;
}
