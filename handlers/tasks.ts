import { Composer, InlineKeyboard } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import type { BotDeps } from "../src/bot/deps.js";
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
): { text: string; keyboard: InlineKeyboard } {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const lines = tasks.map(
    (t) => `${icon[t.status]} ${t.id} · ${t.title.length > 50 ? `${t.title.slice(0, 49)}…` : t.title}`,
  );
  const keyboard = new InlineKeyboard();
  if (page > 0) keyboard.text("◀️ Newer", `tasks:page:${page - 1}`);
  if (page + 1 < pages) keyboard.text("Older ▶️", `tasks:page:${page + 1}`);
  const text =
    total === 0
      ? "No tasks yet. /newtask creates one."
      : [`Tasks (page ${page + 1} of ${pages}):`, ...lines, "", "/task <id> shows one."].join("\n");
  return { text, keyboard };
}

/** /tasks: the last ten, with buttons to page through older ones. */
export function tasksHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  const page = (n: number) => formatTasks(deps.recentTasks(pageSize, n * pageSize), n, deps.countTasks());
  c.command("tasks", (ctx) => {
    const { text, keyboard } = page(0);
    return ctx.reply(text, { reply_markup: keyboard });
  });
  c.callbackQuery(/^tasks:page:(\d+)$/, async (ctx) => {
    await ctx.answerCallbackQuery();
    const { text, keyboard } = page(Number(ctx.match[1]));
    await ctx.editMessageText(text, { reply_markup: keyboard });
  });
  return c;
}
