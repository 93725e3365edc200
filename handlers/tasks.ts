import { Composer, InlineKeyboard } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import { buttonData, tasksPageSchema } from "../src/bot/callback-data.js";
import type { BotDeps } from "../src/bot/deps.js";
import type { Translate } from "../src/bot/i18n.js";
import type { Task } from "../src/orchestrator/task.js";

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
): { text: string; keyboard: InlineKeyboard } {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const lines = tasks.map(
    (task) =>
      `${icon[task.status]} ${task.id} · ${task.title.length > 50 ? `${task.title.slice(0, 49)}…` : task.title}`,
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
  const page = (n: number, t: Translate) =>
    formatTasks(deps.recentTasks(pageSize, n * pageSize), n, deps.countTasks(), t);
  c.command("tasks", (ctx) => {
    const { text, keyboard } = page(0, ctx.t);
    return ctx.reply(text, { reply_markup: keyboard });
  });
  c.callbackQuery(/^tasks:page:/, async (ctx) => {
    const n = tasksPageSchema.safeParse(ctx.callbackQuery.data);
    const pages = Math.max(1, Math.ceil(deps.countTasks() / pageSize));
    if (!n.success || n.data >= pages) return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    await ctx.answerCallbackQuery();
    const { text, keyboard } = page(n.data, ctx.t);
    await ctx.editMessageText(text, { reply_markup: keyboard });
  });
  return c;
}
