import { GrammyError, InlineKeyboard } from "grammy";
import type { BotConversation, ConvContext } from "../src/bot/context.js";
import { shorten } from "../src/bot/message-limits.js";
import { StoreUnavailableError, ValidationError, describeError } from "../src/errors.js";
import { formatInZone } from "../src/time-zone.js";
import { offsetText } from "../src/domain/reminder.js";
import {
  parseDeadline,
  parseDescription,
  parsePriority,
  parseRemind,
  parseTags,
  parseTitle,
  type Draft,
  type Parsed,
  type ReadingContext,
} from "./parse.js";

/** The person's zone and language, in which deadlines are read and shown. */
export type Reader = Omit<ReadingContext, "now">;

export interface NewTaskDeps {
  /** The time zone a user chose (or the default). */
  zoneOf(userId: number | undefined): Promise<string>;
  /** Creates the task in the core and starts the live progress message in `locale`. */
  create(
    draft: Draft & { title: string },
    chatId: number,
    locale: string,
    userId?: number,
  ): Promise<{ ok: true; id: string }>;
}

export type Field = "title" | "description" | "priority" | "deadline" | "tags" | "remind";
type Answer<T> = { kind: "value"; value: T } | { kind: "skip" } | { kind: "cancel" };
type T = ConvContext["t"];

export const isCommand = (text: string, name: string) => new RegExp(`^/${name}(@\\w+)?$`).test(text);

/**
 * Sends one message of the conversation. One that Telegram refuses is replaced by a short
 * note with the same buttons: the conversation stays at its step and the draft is kept.
 */
export async function say(ctx: ConvContext, text: string, extra: { reply_markup?: InlineKeyboard } = {}) {
  try {
    await ctx.reply(text, extra);
  } catch (error) {
    const why = error instanceof GrammyError ? error.description : describeError(error);
    await ctx.reply(ctx.t("send-failed", { error: shorten(why, 200) }), extra).catch(() => undefined);
  }
}

/** Waits for a text answer (or a button press), asking again until it parses. */
async function ask<V>(
  conversation: BotConversation,
  ctx: ConvContext,
  questionKey: string,
  parse: (text: string, at: ReadingContext) => Parsed<V>,
  opts: { skippable: boolean; reader: Reader; keyboard?: InlineKeyboard; buttonPrefix?: string },
): Promise<Answer<V>> {
  const at = async () => ({ ...opts.reader, now: new Date(await conversation.now()) });
  const hint = `\n${ctx.t(opts.skippable ? "hint-skippable" : "hint-required")}`;
  const question = ctx.t(questionKey);
  await say(ctx, question + hint, opts.keyboard ? { reply_markup: opts.keyboard } : {});
  for (;;) {
    const next = await conversation.wait();
    const data = next.callbackQuery?.data;
    if (data !== undefined) {
      await next.answerCallbackQuery();
      if (opts.buttonPrefix && data.startsWith(opts.buttonPrefix)) {
        const parsed = parse(data.slice(opts.buttonPrefix.length), await at());
        if (parsed.ok) return { kind: "value", value: parsed.value };
      }
      continue;
    }
    const text = next.message?.text?.trim();
    if (text === undefined) {
      await say(next, ctx.t("answer-with-text") + hint);
      continue;
    }
    if (isCommand(text, "cancel")) return { kind: "cancel" };
    if (isCommand(text, "skip")) {
      if (opts.skippable) return { kind: "skip" };
      await say(next, ctx.t("cannot-skip") + hint);
      continue;
    }
    if (text.startsWith("/")) {
      await say(next, `${ctx.t("creating-task")} ${question}${hint}`);
      continue;
    }
    const parsed = parse(text, await at());
    if (parsed.ok) return { kind: "value", value: parsed.value };
    await say(next, ctx.t(parsed.error.key, parsed.error.vars) + hint);
  }
}

function priorityKeyboard(t: T): InlineKeyboard {
  const kb = new InlineKeyboard();
  for (const p of [1, 2, 3, 4, 5]) kb.text(t(`priority-${p}`), `nt:p:${p}`);
  return kb;
}

/** The summary to confirm; a long description is shortened (the task keeps it whole). */
export function summaryOf(draft: Draft, t: T, reader: Reader): string {
  const none = "—";
  const description = draft.description ?? "";
  return [
    t("summary-head"),
    t("summary-title", { value: draft.title ?? none }),
    t("summary-description", {
      value:
        description.length > summaryDescriptionLength
          ? `${shorten(description, summaryDescriptionLength)} ${t("summary-chars", { count: String(description.length) })}`
          : description || none,
    }),
    t("summary-priority", { value: t(`priority-${draft.priority ?? 3}`) }),
    t("summary-deadline", {
      value: draft.deadline ? formatInZone(draft.deadline, reader.zone, reader.language) : none,
    }),
    t("summary-tags", { value: draft.tags?.length ? draft.tags.map((tag) => `#${tag}`).join(" ") : none }),
    // Shown once the person chose them (the quick form's "remind", or Edit a field).
    draft.remind ? t("summary-remind", { value: remindText(draft.remind, t) }) : "",
  ]
    .filter(Boolean)
    .join("\n");
}

const summaryDescriptionLength = 500;

/** "1h, at the deadline" (or "none"). */
export function remindText(minutes: readonly number[], t: T): string {
  if (minutes.length === 0) return t("remind-none");
  return minutes.map((m) => (m === 0 ? t("remind-at-deadline") : offsetText(m))).join(", ");
}

/** Asks one field; returns false when the user cancelled. */
export async function askField(
  conversation: BotConversation,
  ctx: ConvContext,
  draft: Draft,
  field: Field,
  reader: Reader,
): Promise<boolean> {
  switch (field) {
    case "title": {
      const a = await ask(conversation, ctx, "ask-title", parseTitle, { skippable: false, reader });
      if (a.kind === "value") draft.title = a.value;
      return a.kind !== "cancel";
    }
    case "description": {
      const a = await ask(conversation, ctx, "ask-description", parseDescription, {
        skippable: true,
        reader,
      });
      if (a.kind !== "cancel") draft.description = a.kind === "value" ? a.value : "";
      return a.kind !== "cancel";
    }
    case "priority": {
      const a = await ask(conversation, ctx, "ask-priority", parsePriority, {
        skippable: true,
        reader,
        keyboard: priorityKeyboard(ctx.t),
        buttonPrefix: "nt:p:",
      });
      if (a.kind !== "cancel") draft.priority = a.kind === "value" ? a.value : 3;
      return a.kind !== "cancel";
    }
    case "deadline": {
      const a = await ask(conversation, ctx, "ask-deadline", parseDeadline, { skippable: true, reader });
      if (a.kind !== "cancel") draft.deadline = a.kind === "value" ? a.value : null;
      return a.kind !== "cancel";
    }
    case "tags": {
      const a = await ask(conversation, ctx, "ask-tags", parseTags, { skippable: true, reader });
      if (a.kind !== "cancel") draft.tags = a.kind === "value" ? a.value : [];
      return a.kind !== "cancel";
    }
    case "remind": {
      const a = await ask(conversation, ctx, "ask-remind", parseRemind, { skippable: true, reader });
      if (a.kind === "value") draft.remind = a.value;
      else if (a.kind === "skip") delete draft.remind;
      return a.kind !== "cancel";
    }
  }
}

const fields: Field[] = ["title", "description", "priority", "deadline", "tags"];

/**
 * /newtask: title, description, priority, deadline, tags, then a summary to confirm.
 * Nothing is created before Create; /cancel works at every step. With a `prefill` (the
 * quick form) it goes straight to the summary.
 */
export function createNewTaskConversation(deps: NewTaskDeps) {
  return async function newTask(
    conversation: BotConversation,
    ctx: ConvContext,
    prefill?: Draft,
  ): Promise<void> {
    const draft: Draft = { ...prefill };
    const userId = ctx.from?.id;
    const reader: Reader = {
      zone: await conversation.external(() => deps.zoneOf(userId)),
      language: await ctx.i18n.getLocale(),
    };
    if (!prefill) {
      for (const field of fields) {
        if (!(await askField(conversation, ctx, draft, field, reader))) {
          await say(ctx, ctx.t("cancelled"));
          return;
        }
      }
    }
    for (;;) {
      const keyboard = new InlineKeyboard()
        .text(ctx.t("btn-create"), "nt:create")
        .text(ctx.t("btn-edit"), "nt:edit")
        .text(ctx.t("btn-cancel"), "nt:cancel");
      await say(ctx, summaryOf(draft, ctx.t, reader), { reply_markup: keyboard });
      let action: string | undefined;
      while (action === undefined) {
        const next = await conversation.wait();
        const data = next.callbackQuery?.data;
        if (data && /^nt:(create|edit|cancel)$/.test(data)) {
          await next.answerCallbackQuery();
          action = data.slice(3);
        } else if (next.message?.text && isCommand(next.message.text.trim(), "cancel")) {
          action = "cancel";
        } else {
          if (next.callbackQuery) await next.answerCallbackQuery();
          await say(next, ctx.t("use-buttons"));
        }
      }
      if (action === "cancel") {
        await say(ctx, ctx.t("cancelled"));
        return;
      }
      if (action === "edit") {
        const kb = new InlineKeyboard();
        // Reminders are not asked step by step (the default serves most): Edit sets them.
        for (const f of [...fields, "remind" as const]) kb.text(ctx.t(`field-${f}`), `nt:f:${f}`);
        await say(ctx, ctx.t("which-field"), { reply_markup: kb });
        const pick = await conversation.waitForCallbackQuery(/^nt:f:/);
        await pick.answerCallbackQuery();
        const field = pick.callbackQuery.data.slice(5) as Field;
        if (!(await askField(conversation, ctx, draft, field, reader))) {
          await say(ctx, ctx.t("cancelled"));
          return;
        }
        continue;
      }
      const chatId = ctx.chat!.id;
      const locale = await ctx.i18n.getLocale();
      const result = await conversation.external(() =>
        deps
          .create({ ...draft, title: draft.title! }, chatId, locale, ctx.from?.id)
          .catch((error: unknown) => ({
            ok: false as const,
            storage: error instanceof StoreUnavailableError,
            error:
              error instanceof ValidationError
                ? `${error.field}: ${error.message}`
                : error instanceof StoreUnavailableError
                  ? error.message
                  : "the task could not be stored",
          })),
      );
      if (result.ok) return;
      // The draft stays: the summary comes again, with Create, Edit and Cancel.
      await say(ctx, ctx.t(result.storage ? "not-created-storage" : "not-created", { error: result.error }));
    }
  };
}
