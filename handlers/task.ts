import { Composer, InlineKeyboard } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import type { BotDeps } from "../src/bot/deps.js";
import type { TaskView } from "../src/orchestrator/orchestrator.js";
import { renderTask } from "./format-task.js";

function keyboardFor(view: TaskView): InlineKeyboard | undefined {
  const failed = view.operations.some((o) => o.status === "failed" && o.kind === "create");
  return failed && view.task.status !== "rolled_back"
    ? new InlineKeyboard().text("🔁 Retry failed", `task:retry:${view.task.id}`)
    : undefined;
}

/** /task <id>: per-server status, remote ids, attempts, errors; "Retry failed" re-drives. */
export function taskHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  c.command("task", async (ctx) => {
    const id = ctx.match.trim();
    if (!id) return ctx.reply("Which task? Send /task <id>; /tasks lists them.");
    const view = deps.getTask(id);
    if (!view) return ctx.reply(`There is no task ${id}. /tasks lists them.`);
    const keyboard = keyboardFor(view);
    return ctx.reply(renderTask(view, true), keyboard ? { reply_markup: keyboard } : {});
  });
  c.callbackQuery(/^task:retry:(\w+)$/, async (ctx) => {
    const id = ctx.match[1]!;
    const n = deps.retryFailed(id);
    await ctx.answerCallbackQuery({
      text: n > 0 ? `Retrying ${n} step${n === 1 ? "" : "s"}` : "Nothing to retry",
    });
    const view = deps.getTask(id);
    if (view) await ctx.editMessageText(renderTask(view, true)).catch(() => undefined);
  });
  return c;
}
