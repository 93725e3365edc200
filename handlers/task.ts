import { Composer, InlineKeyboard } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import { buttonData, taskRetrySchema } from "../src/bot/callback-data.js";
import type { BotDeps } from "../src/bot/deps.js";
import type { Translate } from "../src/bot/i18n.js";
import type { TaskView } from "../src/domain/task.js";
import { formatInZone } from "../src/time-zone.js";
import { renderTask } from "../src/bot/task-format.js";

function keyboardFor(view: TaskView, t: Translate): InlineKeyboard | undefined {
  const failed = view.operations.some((o) => o.status === "failed" && o.kind === "create");
  return failed && view.task.status !== "rolled_back"
    ? new InlineKeyboard().text(t("btn-retry"), buttonData.taskRetry(view.task.id))
    : undefined;
}

/** /task <id>: per-server status, remote ids, attempts, errors; "Retry failed" re-drives. */
export function taskHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  // Deadlines in the reader's zone and language.
  const render = async (ctx: BotContext, view: TaskView) => {
    const zone = await deps.timezoneOf(ctx.from?.id);
    const locale = await ctx.i18n.getLocale();
    return renderTask(view, ctx.t, true, (iso) => formatInZone(iso, zone, locale));
  };
  c.command("task", async (ctx) => {
    const id = ctx.match.trim();
    if (!id) return ctx.reply(ctx.t("task-which"));
    const view = await deps.getTask(id);
    if (!view) return ctx.reply(ctx.t("task-missing", { id }));
    const keyboard = keyboardFor(view, ctx.t);
    return ctx.reply(await render(ctx, view), keyboard ? { reply_markup: keyboard } : {});
  });
  c.callbackQuery(/^task:retry:/, async (ctx) => {
    const parsed = taskRetrySchema.safeParse(ctx.callbackQuery.data);
    if (!parsed.success || !(await deps.getTask(parsed.data))) {
      return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    }
    const id = parsed.data;
    const n = await deps.retryFailed(id);
    await ctx.answerCallbackQuery({
      text: n > 0 ? ctx.t("retrying", { count: n }) : ctx.t("nothing-to-retry"),
    });
    const view = await deps.getTask(id);
    if (view) await ctx.editMessageText(await render(ctx, view)).catch(() => undefined);
  });
  return c;
}
