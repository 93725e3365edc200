import { Composer, InlineKeyboard } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import { buttonData, taskChangeSchema, taskRetrySchema } from "../src/bot/callback-data.js";
import type { BotDeps } from "../src/bot/deps.js";
import type { Translate } from "../src/bot/i18n.js";
import type { TaskView } from "../src/domain/task.js";
import { ChangeRefusedError, TaskNotFoundError } from "../src/errors.js";
import type { TaskChangeInput } from "../src/orchestrator/orchestrator.js";
import { formatInZone } from "../src/time-zone.js";
import { renderTask, taskKeyboard } from "../src/bot/task-format.js";
import { parseEditReply } from "../scenes/parse.js";

/** At most this many tasks in one /done or /reopen. */
const maxBulk = 20;

/** Task ids in a command's text: the ten-character ids taskfan makes. */
const idsIn = (text: string) => text.split(/[\s,]+/).filter((w) => /^[0-9a-z]{10}$/.test(w));

/** What a change is said to: the reader's words, and the chat its progress goes to. */
type Speaker = { t: Translate; chat?: { id: number } | undefined };
type Progress = { start(chatId: number, taskId: string, t: Translate, change?: boolean): Promise<void> };

/**
 * Makes one change of a task from the chat: the line to say, and whether the change is on
 * its way (its progress message, when there is a chat, edits one message as it goes).
 */
export function taskChanger(deps: BotDeps, progress?: Progress) {
  const stateName = (ctx: Speaker, state: string) => ctx.t(`state-${state}`);
  return async (
    ctx: Speaker,
    id: string,
    input: TaskChangeInput,
  ): Promise<{ text: string; sent: boolean }> => {
    try {
      const result = await deps.changeTask(id, input, { source: "chat" });
      if (!result.changed)
        return {
          text: ctx.t("change-already", { id, state: stateName(ctx, result.task.state) }),
          sent: false,
        };
      if (progress && ctx.chat) {
        await progress
          .start(ctx.chat.id, id, ctx.t, true)
          .catch((error: unknown) =>
            deps.log.warn({ err: error, taskId: id }, "could not send the progress message"),
          );
      }
      return {
        text: ctx.t("change-accepted", {
          id,
          kind: ctx.t(`change-${input.kind}`),
          count: result.servers.length,
        }),
        sent: true,
      };
    } catch (error) {
      if (error instanceof TaskNotFoundError) return { text: ctx.t("task-missing", { id }), sent: false };
      if (error instanceof ChangeRefusedError)
        return {
          text: ctx.t(error.reason === "deleted" ? "change-refused-deleted" : "change-refused-rolled-back", {
            id,
          }),
          sent: false,
        };
      throw error;
    }
  };
}

/**
 * /task <id>: per-server status, remote ids, attempts, errors, with buttons to retry what
 * failed and to finish, reopen or delete the task. /done, /reopen and /delete change a task
 * on every server that holds it (through the outbox, like its create); its progress edits
 * one message.
 */
export function taskHandler(deps: BotDeps, progress?: Progress): Composer<BotContext> {
  const c = new Composer<BotContext>();
  // Deadlines in the reader's zone and language.
  const render = async (ctx: BotContext, view: TaskView) => {
    const zone = await deps.timezoneOf(ctx.from?.id);
    const locale = await ctx.i18n.getLocale();
    return renderTask(view, ctx.t, true, (iso) => formatInZone(iso, zone, locale));
  };
  const stateName = (ctx: BotContext, state: string) => ctx.t(`state-${state}`);

  const change = taskChanger(deps, progress);

  c.command("task", async (ctx) => {
    const id = ctx.match.trim();
    if (!id) return ctx.reply(ctx.t("task-which"));
    const view = await deps.getTask(id);
    if (!view) return ctx.reply(ctx.t("task-missing", { id }));
    const keyboard = taskKeyboard(view, ctx.t);
    return ctx.reply(await render(ctx, view), keyboard ? { reply_markup: keyboard } : {});
  });
  for (const [command, kind] of [
    ["done", "complete"],
    ["reopen", "reopen"],
  ] as const) {
    c.command(command, async (ctx) => {
      const ids = [...new Set(idsIn(ctx.match))].slice(0, maxBulk);
      if (ids.length === 0) return ctx.reply(ctx.t("change-which", { command }));
      if (ids.length === 1) return ctx.reply((await change(ctx, ids[0]!, { kind })).text);
      // Several ids at once (/done a b c): asked once. The ids travel in the question's own
      // last line, which Telegram sends back with the button: no state to keep, and any
      // instance can answer it.
      return ctx.reply(`${ctx.t(`bulk-ask-${kind}`, { count: ids.length })}\n${ids.join(" ")}`, {
        reply_markup: new InlineKeyboard()
          .text(ctx.t("btn-bulk-yes", { count: ids.length }), `bulk:${kind}`)
          .text(ctx.t("btn-keep"), "bulk:keep"),
      });
    });
  }
  c.callbackQuery(/^bulk:/, async (ctx) => {
    const action = /^bulk:(complete|reopen|keep)$/.exec(ctx.callbackQuery.data)?.[1] as
      "complete" | "reopen" | "keep" | undefined;
    const question = ctx.callbackQuery.message?.text ?? "";
    const ids = idsIn(question.split("\n").at(-1) ?? "").slice(0, maxBulk);
    if (!action || ids.length === 0) return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    // One answer per question: its buttons go at once, so a second press finds none.
    await ctx.editMessageReplyMarkup().catch(() => undefined);
    if (action === "keep") return ctx.answerCallbackQuery({ text: ctx.t("delete-kept") });
    await ctx.answerCallbackQuery();
    // One line each, the progress of each followed; one already done says so.
    const kind = action;
    const lines: string[] = [];
    for (const id of ids) lines.push((await change(ctx, id, { kind })).text);
    return ctx.reply(lines.join("\n"));
  });
  c.command("delete", async (ctx) => {
    const [id] = idsIn(ctx.match);
    if (!id) return ctx.reply(ctx.t("change-which", { command: "delete" }));
    const view = await deps.getTask(id);
    if (!view) return ctx.reply(ctx.t("task-missing", { id }));
    if (view.task.state === "deleted") return ctx.reply(ctx.t("change-refused-deleted", { id }));
    // Delete is final: asked once.
    return ctx.reply(ctx.t("delete-ask", { id }), {
      reply_markup: new InlineKeyboard()
        .text(ctx.t("btn-delete-confirm"), buttonData.taskChange("delete-yes", id))
        .text(ctx.t("btn-keep"), buttonData.taskChange("keep", id)),
    });
  });
  c.callbackQuery(/^task:(done|reopen|delete|delete-yes|keep):/, async (ctx) => {
    const parsed = taskChangeSchema.safeParse(ctx.callbackQuery.data);
    const view = parsed.success ? await deps.getTask(parsed.data.id) : undefined;
    if (!parsed.success || !view) return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    const { action, id } = parsed.data;
    const state = view.task.state;
    // A button from before the task changed says where it stands now, and changes nothing.
    const stale =
      state === "deleted" ||
      (action === "done" && state === "done") ||
      (action === "reopen" && state === "open");
    if (stale) {
      await ctx.answerCallbackQuery({ text: ctx.t("change-stale", { id, state: stateName(ctx, state) }) });
      const keyboard = taskKeyboard(view, ctx.t);
      await ctx.editMessageReplyMarkup(keyboard ? { reply_markup: keyboard } : {}).catch(() => undefined);
      return;
    }
    if (action === "keep") {
      await ctx.answerCallbackQuery({ text: ctx.t("delete-kept") });
      return ctx.editMessageReplyMarkup().catch(() => undefined);
    }
    if (action === "delete") {
      await ctx.answerCallbackQuery();
      return ctx.reply(ctx.t("delete-ask", { id }), {
        reply_markup: new InlineKeyboard()
          .text(ctx.t("btn-delete-confirm"), buttonData.taskChange("delete-yes", id))
          .text(ctx.t("btn-keep"), buttonData.taskChange("keep", id)),
      });
    }
    const kind = action === "done" ? "complete" : action === "reopen" ? "reopen" : "delete";
    const { text } = await change(ctx, id, { kind });
    await ctx.answerCallbackQuery({ text });
    await ctx.editMessageReplyMarkup().catch(() => undefined);
  });
  // Editing by reply: a reply to taskfan's message about a task ("Task … :", a reminder)
  // with `title: …`, `deadline: friday 18:00`, `p2` or `#tag` changes those fields.
  c.on("message:text").filter(
    (ctx) => ctx.message.reply_to_message?.from?.id === ctx.me.id,
    async (ctx, next) => {
      const zone = await deps.timezoneOf(ctx.from.id);
      const language = await ctx.i18n.getLocale();
      const parsed = parseEditReply(ctx.message.text, { now: new Date(), zone, language });
      if (!parsed) return next();
      const about = ctx.message.reply_to_message?.text ?? "";
      let id: string | undefined;
      // The ids in the message, the first one taskfan knows (a word of that shape may be none).
      for (const candidate of [...new Set(about.match(/\b[0-9a-z]{10}\b/g) ?? [])].slice(0, 5)) {
        if (await deps.getTask(candidate)) {
          id = candidate;
          break;
        }
      }
      if (!id) return ctx.reply(ctx.t("edit-no-task"));
      if (!parsed.ok) return ctx.reply(ctx.t(parsed.error.key, parsed.error.vars));
      return ctx.reply((await change(ctx, id, { kind: "update", fields: parsed.value })).text);
    },
  );
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
