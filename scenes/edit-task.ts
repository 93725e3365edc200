import { InlineKeyboard } from "grammy";
import type { BotConversation, ConvContext } from "../src/bot/context.js";
import type { TaskView } from "../src/domain/task.js";
import { askField, isCommand, say, type Field, type Reader } from "./new-task.js";
import type { Draft, FieldEdit } from "./parse.js";

export interface EditTaskDeps {
  zoneOf(userId: number | undefined): Promise<string>;
  getTask(id: string): Promise<TaskView | undefined>;
  /** Sends the update through the outbox; the line to say (its progress follows in `chatId`). */
  update(id: string, fields: FieldEdit, chatId: number, locale: string): Promise<string>;
}

const fields: Array<Exclude<Field, "remind">> = ["title", "description", "priority", "deadline", "tags"];

/**
 * /edit <id> (and the Edit button): which field, then its new value, asked and checked as
 * /newtask asks and checks it; /cancel at every step changes nothing. The change goes out
 * like every other: stored with the task's next version, then to each server.
 */
export function createEditConversation(deps: EditTaskDeps) {
  return async function editTask(conversation: BotConversation, ctx: ConvContext, id: string): Promise<void> {
    const view = await conversation.external(() => deps.getTask(id));
    if (!view) return say(ctx, ctx.t("task-missing", { id }));
    if (view.task.state === "deleted") return say(ctx, ctx.t("change-refused-deleted", { id }));
    const userId = ctx.from?.id;
    const reader: Reader = {
      zone: await conversation.external(() => deps.zoneOf(userId)),
      language: await ctx.i18n.getLocale(),
    };
    const kb = new InlineKeyboard();
    for (const f of fields) kb.text(ctx.t(`field-${f}`), `ed:f:${f}`);
    kb.row().text(ctx.t("btn-cancel"), "ed:cancel");
    await say(ctx, ctx.t("edit-which", { id, title: view.task.title }), { reply_markup: kb });
    let field: Exclude<Field, "remind"> | undefined;
    while (field === undefined) {
      const next = await conversation.wait();
      const data = next.callbackQuery?.data;
      const picked = data ? /^ed:f:(title|description|priority|deadline|tags)$/.exec(data)?.[1] : undefined;
      if (picked) {
        await next.answerCallbackQuery();
        field = picked as Exclude<Field, "remind">;
      } else if (
        data === "ed:cancel" ||
        (next.message?.text && isCommand(next.message.text.trim(), "cancel"))
      ) {
        if (next.callbackQuery) await next.answerCallbackQuery();
        return say(ctx, ctx.t("edit-cancelled"));
      } else {
        if (next.callbackQuery) await next.answerCallbackQuery();
        await say(next, ctx.t("edit-use-buttons"));
      }
    }
    const { task } = view;
    const draft: Draft = {
      title: task.title,
      description: task.description,
      priority: task.priority,
      deadline: task.deadline,
      tags: task.tags,
    };
    if (!(await askField(conversation, ctx, draft, field, reader))) return say(ctx, ctx.t("edit-cancelled"));
    const chatId = ctx.chat!.id;
    const locale = reader.language;
    const edit: FieldEdit = { [field]: draft[field] };
    const text = await conversation.external(() => deps.update(id, edit, chatId, locale));
    await say(ctx, text);
  };
}
