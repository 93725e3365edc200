import { Composer, InlineKeyboard } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import { buttonData, tasksPageSchema } from "../src/bot/callback-data.js";
import type { BotDeps } from "../src/bot/deps.js";
import type { Translate } from "../src/bot/i18n.js";
import { shorten } from "../src/bot/message-limits.js";
import { formatInZone, offsetMinutes } from "../src/time-zone.js";
import type { LifecycleState, Task } from "../src/domain/task.js";
import type { TaskFilter } from "../src/store/store.js";

const pageSize = 10;
const icon: Record<Task["status"], string> = {
  pending: "⏳",
  running: "🔄",
  done: "✅",
  partial: "🟡",
  failed: "❌",
  rolled_back: "↩️",
};

/** What /tasks lists: open tasks unless told otherwise. */
export interface TasksQuery {
  state: LifecycleState | undefined;
  overdue: boolean;
  today: boolean;
  tag: string | undefined;
  priority: number | undefined;
  /** The words again, normalised and joined by commas: the filter a page button carries. */
  key: string;
}

/** `/tasks [open|done|deleted|all] [overdue] [today] [#tag] [p1-p5]`; a word it does not know is returned. */
export function parseTasksQuery(text: string): TasksQuery | { unknown: string } {
  const q: TasksQuery = {
    state: "open",
    overdue: false,
    today: false,
    tag: undefined,
    priority: undefined,
    key: "",
  };
  const words: string[] = [];
  for (const raw of text.split(/[\s,]+/).filter(Boolean)) {
    const word = raw.toLowerCase();
    if (word === "open" || word === "done" || word === "deleted") q.state = word;
    else if (word === "all") q.state = undefined;
    else if (word === "overdue") q.overdue = true;
    else if (word === "today") q.today = true;
    else if (/^p[1-5]$/.test(word)) q.priority = Number(word.slice(1));
    else if (/^#[\p{L}\p{N}_-]{1,30}$/u.test(raw)) q.tag = raw.slice(1);
    else return { unknown: raw };
    words.push(word.startsWith("#") ? raw : word);
  }
  // Overdue is what is still open past its deadline.
  if (q.overdue) q.state = "open";
  q.key = words.join(",");
  return q;
}

/** The store's filter for a query, "today" being the user's day in `zone`. */
export function filterOf(
  q: TasksQuery,
  zone: string,
  now = new Date(),
): Omit<TaskFilter, "limit" | "offset"> {
  const filter: Omit<TaskFilter, "limit" | "offset"> = { state: q.state, tag: q.tag, priority: q.priority };
  if (q.today) {
    const offset = offsetMinutes(zone, now) * 60_000;
    const local = new Date(now.getTime() + offset);
    const start = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate()) - offset;
    filter.deadlineFrom = new Date(start).toISOString();
    filter.deadlineBefore = new Date(start + 86_400_000).toISOString();
  }
  if (q.overdue) {
    const nowIso = now.toISOString();
    if (!filter.deadlineBefore || nowIso < filter.deadlineBefore) filter.deadlineBefore = nowIso;
  }
  return filter;
}

export function formatTasks(
  tasks: readonly Task[],
  page: number,
  total: number,
  t: Translate,
  date: (iso: string) => string = (iso) => iso,
  filter = "",
): { text: string; keyboard: InlineKeyboard } {
  const pages = Math.max(1, Math.ceil(total / pageSize));
  const lines = tasks.map(
    (task) =>
      `${icon[task.status]} ${task.id} · ${shorten(task.title, 50)}${task.deadline ? ` · ${t("tasks-due", { date: date(task.deadline) })}` : ""}${task.state !== "open" ? ` · ${t(`state-${task.state}`)}` : ""}`,
  );
  const keyboard = new InlineKeyboard();
  if (page > 0) keyboard.text(t("btn-newer"), buttonData.tasksPage(page - 1, filter));
  if (page + 1 < pages) keyboard.text(t("btn-older"), buttonData.tasksPage(page + 1, filter));
  const shown = filter.replace(/,/g, " ");
  const text =
    total === 0
      ? shown
        ? t("tasks-none-matching", { filter: shown })
        : t("tasks-none")
      : [
          shown
            ? t("tasks-head-matching", { filter: shown, page: page + 1, pages })
            : t("tasks-head", { page: page + 1, pages }),
          ...lines,
          "",
          t("tasks-hint"),
        ].join("\n");
  return { text, keyboard };
}

/**
 * /tasks: the open tasks, newest first, ten a page, with buttons to page through older
 * ones; `done`, `deleted`, `all`, `overdue`, `today`, `#tag` and `p1`-`p5` narrow it.
 */
export function tasksHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  const page = async (n: number, q: TasksQuery, ctx: BotContext) => {
    const zone = await deps.timezoneOf(ctx.from?.id);
    const locale = await ctx.i18n.getLocale();
    const filter = filterOf(q, zone);
    const [tasks, count] = await Promise.all([
      deps.listTasks({ ...filter, limit: pageSize, offset: n * pageSize }),
      deps.countTasks(filter),
    ]);
    return { count, ...formatTasks(tasks, n, count, ctx.t, (iso) => formatInZone(iso, zone, locale), q.key) };
  };
  c.command("tasks", async (ctx) => {
    const q = parseTasksQuery(ctx.match);
    if ("unknown" in q) return ctx.reply(ctx.t("tasks-filter-unknown", { word: shorten(q.unknown, 40) }));
    const { text, keyboard } = await page(0, q, ctx);
    return ctx.reply(text, { reply_markup: keyboard });
  });
  c.callbackQuery(/^tasks:page:/, async (ctx) => {
    const parsed = tasksPageSchema.safeParse(ctx.callbackQuery.data);
    const q = parsed.success ? parseTasksQuery(parsed.data.filter) : undefined;
    if (!parsed.success || !q || "unknown" in q)
      return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    const pages = Math.max(
      1,
      Math.ceil((await deps.countTasks(filterOf(q, await deps.timezoneOf(ctx.from?.id)))) / pageSize),
    );
    if (parsed.data.page >= pages) return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    await ctx.answerCallbackQuery();
    const { text, keyboard } = await page(parsed.data.page, q, ctx);
    await ctx.editMessageText(text, { reply_markup: keyboard });
  });
  return c;
}
