import { InlineKeyboard } from "grammy";
import type { BotConversation, ConvContext } from "../src/bot/context.js";
import { ValidationError } from "../src/errors.js";
import {
  parseDeadline,
  parseDescription,
  parsePriority,
  parseTags,
  parseTitle,
  priorityLabels,
  type Draft,
  type Parsed,
} from "./parse.js";

export interface NewTaskDeps {
  /** Creates the task in the core and starts the live progress message. */
  create(
    draft: Required<Pick<Draft, "title">> & Draft,
    chatId: number,
  ): Promise<{ ok: true; id: string } | { ok: false; error: string }>;
}

type Field = "title" | "description" | "priority" | "deadline" | "tags";
type Answer<T> = { kind: "value"; value: T } | { kind: "skip" } | { kind: "cancel" };

const cancelled = "Cancelled. Nothing was created.";

/** Waits for a text answer (or a button press), asking again until it parses. */
async function ask<T>(
  conversation: BotConversation,
  ctx: ConvContext,
  question: string,
  parse: (text: string, now: Date) => Parsed<T>,
  opts: { skippable: boolean; keyboard?: InlineKeyboard; buttonPrefix?: string },
): Promise<Answer<T>> {
  const hint = opts.skippable ? "\n(/skip to leave it empty, /cancel to stop)" : "\n(/cancel to stop)";
  await ctx.reply(question + hint, opts.keyboard ? { reply_markup: opts.keyboard } : {});
  for (;;) {
    const next = await conversation.wait();
    const data = next.callbackQuery?.data;
    if (data !== undefined) {
      await next.answerCallbackQuery();
      if (opts.buttonPrefix && data.startsWith(opts.buttonPrefix)) {
        const parsed = parse(data.slice(opts.buttonPrefix.length), new Date(await conversation.now()));
        if (parsed.ok) return { kind: "value", value: parsed.value };
      }
      continue;
    }
    const text = next.message?.text?.trim();
    if (text === undefined) {
      await next.reply("Please answer with text." + hint);
      continue;
    }
    if (/^\/cancel(@\w+)?$/.test(text)) return { kind: "cancel" };
    if (/^\/skip(@\w+)?$/.test(text)) {
      if (opts.skippable) return { kind: "skip" };
      await next.reply("This one cannot be skipped." + hint);
      continue;
    }
    if (text.startsWith("/")) {
      await next.reply(`You are creating a task. ${question}` + hint);
      continue;
    }
    const parsed = parse(text, new Date(await conversation.now()));
    if (parsed.ok) return { kind: "value", value: parsed.value };
    await next.reply(parsed.error + hint);
  }
}

function priorityKeyboard(): InlineKeyboard {
  const kb = new InlineKeyboard();
  for (const p of [1, 2, 3, 4, 5]) kb.text(priorityLabels[p]!, `nt:p:${p}`);
  return kb;
}

export function summaryOf(draft: Draft): string {
  return [
    "New task:",
    `• Title: ${draft.title}`,
    `• Description: ${draft.description || "—"}`,
    `• Priority: ${priorityLabels[draft.priority ?? 3]}`,
    `• Deadline: ${draft.deadline ?? "—"}`,
    `• Tags: ${draft.tags?.length ? draft.tags.map((t) => `#${t}`).join(" ") : "—"}`,
  ].join("\n");
}

/** Asks one field; returns false when the user cancelled. */
async function askField(
  conversation: BotConversation,
  ctx: ConvContext,
  draft: Draft,
  field: Field,
): Promise<boolean> {
  switch (field) {
    case "title": {
      const a = await ask(conversation, ctx, "What is the task? Send its title.", parseTitle, {
        skippable: false,
      });
      if (a.kind === "cancel") return false;
      if (a.kind === "value") draft.title = a.value;
      return true;
    }
    case "description": {
      const a = await ask(conversation, ctx, "Describe it.", parseDescription, { skippable: true });
      if (a.kind === "cancel") return false;
      draft.description = a.kind === "value" ? a.value : "";
      return true;
    }
    case "priority": {
      const a = await ask(
        conversation,
        ctx,
        "How important is it? Tap a priority or send 1 to 5.",
        parsePriority,
        {
          skippable: true,
          keyboard: priorityKeyboard(),
          buttonPrefix: "nt:p:",
        },
      );
      if (a.kind === "cancel") return false;
      draft.priority = a.kind === "value" ? a.value : 3;
      return true;
    }
    case "deadline": {
      const a = await ask(
        conversation,
        ctx,
        'When is it due? For example "tomorrow 18:00", "in 3 days", "2026-12-01 12:00".',
        parseDeadline,
        { skippable: true },
      );
      if (a.kind === "cancel") return false;
      draft.deadline = a.kind === "value" ? a.value : null;
      return true;
    }
    case "tags": {
      const a = await ask(conversation, ctx, "Tags? Send them as #work #urgent or work, urgent.", parseTags, {
        skippable: true,
      });
      if (a.kind === "cancel") return false;
      draft.tags = a.kind === "value" ? a.value : [];
      return true;
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
    if (!prefill) {
      for (const field of fields) {
        if (!(await askField(conversation, ctx, draft, field))) {
          await ctx.reply(cancelled);
          return;
        }
      }
    }
    for (;;) {
      const keyboard = new InlineKeyboard()
        .text("✅ Create", "nt:create")
        .text("✏️ Edit a field", "nt:edit")
        .text("✖️ Cancel", "nt:cancel");
      await ctx.reply(summaryOf(draft), { reply_markup: keyboard });
      let action: string | undefined;
      while (action === undefined) {
        const next = await conversation.wait();
        const data = next.callbackQuery?.data;
        if (data && /^nt:(create|edit|cancel)$/.test(data)) {
          await next.answerCallbackQuery();
          action = data.slice(3);
        } else if (next.message?.text && /^\/cancel(@\w+)?$/.test(next.message.text.trim())) {
          action = "cancel";
        } else {
          if (next.callbackQuery) await next.answerCallbackQuery();
          await next.reply("Tap Create, Edit a field or Cancel above (or send /cancel).");
        }
      }
      if (action === "cancel") {
        await ctx.reply(cancelled);
        return;
      }
      if (action === "edit") {
        const kb = new InlineKeyboard();
        for (const f of fields) kb.text(f, `nt:f:${f}`);
        await ctx.reply("Which field?", { reply_markup: kb });
        const pick = await conversation.waitForCallbackQuery(/^nt:f:/);
        await pick.answerCallbackQuery();
        const field = pick.callbackQuery.data.slice(5) as Field;
        if (!(await askField(conversation, ctx, draft, field))) {
          await ctx.reply(cancelled);
          return;
        }
        continue;
      }
      const chatId = ctx.chat!.id;
      const result = await conversation.external(() =>
        deps.create({ ...draft, title: draft.title! }, chatId).catch((error: unknown) => ({
          ok: false as const,
          error:
            error instanceof ValidationError
              ? `${error.field}: ${error.message}`
              : "the task could not be stored",
        })),
      );
      if (result.ok) return;
      await ctx.reply(`Not created: ${result.error}. Edit the field and try again.`);
    }
  };
}
