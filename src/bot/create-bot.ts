import { conversations, createConversation } from "@grammyjs/conversations";
import { autoRetry } from "@grammyjs/auto-retry";
import { limit } from "@grammyjs/ratelimiter";
import { apiThrottler } from "@grammyjs/transformer-throttler";
import { Bot, type MiddlewareFn } from "grammy";
import type { UserFromGetMe } from "grammy/types";
import { randomBytes } from "node:crypto";
import { alertsHandler } from "../../handlers/alerts.js";
import { healthHandler } from "../../handlers/health.js";
import { muteHandler } from "../../handlers/mute.js";
import { commandList, startHandler } from "../../handlers/start.js";
import { remindersHandler } from "../../handlers/reminders.js";
import { taskChanger } from "../../handlers/task.js";
import { createEditConversation } from "../../scenes/edit-task.js";
import { taskChangeSchema } from "./callback-data.js";
import { statsHandler } from "../../handlers/stats.js";
import { taskHandler } from "../../handlers/task.js";
import { tasksHandler } from "../../handlers/tasks.js";
import { timezoneHandler } from "../../handlers/timezone.js";
import { createNewTaskConversation } from "../../scenes/new-task.js";
import { parseQuickForm } from "../../scenes/parse.js";
import { storeFault } from "../store/store-health.js";
import { accessControl } from "./access.js";
import { conversationStorage } from "./conversation-storage.js";
import { fitMessage } from "./message-limits.js";
import type { BotContext } from "./context.js";
import type { BotDeps, BotSettings } from "./deps.js";
import { createI18n, translatorFor } from "./i18n.js";
import { ProgressReporter } from "./progress.js";

export interface BotOptions {
  token: string;
  /** Known bot info skips the getMe call (tests, console chat). */
  botInfo?: UserFromGetMe;
  /** A self-hosted Bot API server, or a test fake. */
  apiRoot?: string;
  /** Replaces the HTTP client (console chat, tests). */
  fetch?: typeof fetch;
  /** Installed first: keeps the updates of one chat in order under a concurrent runner. */
  sequentialize?: MiddlewareFn<BotContext>;
}

export interface TaskfanBot {
  bot: Bot<BotContext>;
  progress: ProgressReporter;
  /** A translator for messages sent outside an update (the alert chat). */
  translator(locale?: string): ReturnType<typeof translatorFor>;
  /** Registers the command menu with Telegram, in every language we speak. */
  registerCommands(): Promise<void>;
}

/** The bot: access control, rate limit, the /newtask conversation and every command. */
export function createBot(deps: BotDeps, settings: BotSettings, options: BotOptions): TaskfanBot {
  const bot = new Bot<BotContext>(options.token, {
    ...(options.botInfo ? { botInfo: options.botInfo } : {}),
    client: {
      ...(options.apiRoot ? { apiRoot: options.apiRoot } : {}),
      ...(options.fetch ? { fetch: options.fetch as never } : {}),
    },
  });
  // Outgoing calls are paced to Telegram's limits (global, per chat, per group) ...
  bot.api.config.use(apiThrottler());
  // ... and a 429 waits retry_after and tries again; 5xx and network errors retry with backoff.
  bot.api.config.use(
    autoRetry({
      maxRetryAttempts: 5,
      maxDelaySeconds: 60,
      rethrowInternalServerErrors: false,
      rethrowHttpErrors: false,
    }),
  );
  // The last guard of Telegram's limits (4096 characters a message); what we write is
  // shortened where it is made, and a conversation's messages are kept short by the scene.
  bot.api.config.use((prev, method, payload, signal) => {
    if (
      (method === "sendMessage" || method === "editMessageText") &&
      "text" in payload &&
      typeof payload.text === "string"
    ) {
      return prev(method, { ...payload, text: fitMessage(payload.text) }, signal);
    }
    return prev(method, payload, signal);
  });
  // Counts every Bot API error that reaches us (after the retries above).
  bot.api.config.use(async (prev, method, payload, signal) => {
    try {
      const result = await prev(method, payload, signal);
      if (!result.ok) deps.metrics?.telegramError(result.error_code);
      return result;
    } catch (error) {
      deps.metrics?.telegramError("network");
      throw error;
    }
  });
  const log = deps.log.child({ component: "bot" });
  const i18n = createI18n();
  if (options.sequentialize) bot.use(options.sequentialize);
  bot.use(i18n);
  // One error boundary for every update, whatever runs it (runner, webhook, console).
  bot.use(async (ctx, next) => {
    const started = performance.now();
    try {
      await next();
    } catch (error) {
      const fault = storeFault(error);
      if (fault) {
        // Not a bug: the database does not answer, and the user is told so.
        log.warn({ code: fault.code, updateId: ctx.update.update_id }, "update refused: storage unavailable");
        if (ctx.callbackQuery) await ctx.answerCallbackQuery().catch(() => undefined);
        if (ctx.chat) await ctx.reply(ctx.t("storage-down", { reason: fault.reason })).catch(() => undefined);
        return;
      }
      const errorId = randomBytes(4).toString("hex");
      log.error({ err: error, errorId, updateId: ctx.update.update_id }, "update failed");
      if (ctx.chat) await ctx.reply(ctx.t("error-id", { id: errorId })).catch(() => undefined);
    }
    log.debug(
      { updateId: ctx.update.update_id, ms: Math.round(performance.now() - started) },
      "update handled",
    );
  });
  bot.use(accessControl(settings, log));
  if (settings.rateLimitPerMinute) {
    const warned = new Map<string, number>();
    bot.use(
      limit<BotContext, never>({
        timeFrame: 60_000,
        limit: settings.rateLimitPerMinute,
        keyGenerator: (ctx) => ctx.from?.id.toString(),
        onLimitExceeded: async (ctx: BotContext) => {
          const key = String(ctx.from?.id);
          if ((warned.get(key) ?? 0) > Date.now() - 60_000) return;
          warned.set(key, Date.now());
          await ctx.reply(ctx.t("slow-down")).catch(() => undefined);
        },
      }),
    );
  }
  const drafts = conversationStorage(deps.state.conversations, deps.storeHealth, log);
  bot.use(
    conversations<BotContext, BotContext>({
      storage: {
        type: "key",
        getStorageKey: (ctx) => ctx.chatId?.toString(),
        adapter: {
          read: (key) => drafts.read(key) as never,
          write: (key, state) => drafts.write(key, state),
          delete: (key) => drafts.delete(key),
        },
      },
    }),
  );
  const progress = new ProgressReporter(
    bot.api,
    deps,
    settings.progressEditIntervalMs,
    translatorFor(i18n, settings.alertLanguage),
    settings.alertLanguage,
  );
  bot.use(
    createConversation(
      createNewTaskConversation({
        zoneOf: (userId) => deps.timezoneOf(userId),
        async create(draft, chatId, locale, userId) {
          const id = await deps.createTask(
            {
              title: draft.title,
              description: draft.description,
              priority: draft.priority,
              deadline: draft.deadline ?? undefined,
              tags: draft.tags,
            },
            {
              owner: {
                chatId: String(chatId),
                userId: userId ?? null,
                ...(draft.remind ? { remind: draft.remind } : {}),
              },
            },
          );
          // The task exists from here on: a progress message that cannot be sent must not
          // make the conversation offer to create it again.
          const t = translatorFor(i18n, locale);
          try {
            await progress.start(chatId, id, t);
          } catch (error) {
            log.warn({ err: error, taskId: id }, "could not send the progress message");
            await bot.api.sendMessage(chatId, t("created-no-progress", { id })).catch(() => undefined);
          }
          return { ok: true, id };
        },
      }),
      // Inside a conversation ctx.t exists only if the plugin is passed again.
      { id: "newtask", plugins: [i18n] },
    ),
  );
  bot.command("newtask", async (ctx) => {
    const rest = ctx.match.trim();
    if (!rest) return ctx.conversation.enter("newtask");
    const parsed = parseQuickForm(rest, {
      now: new Date(),
      zone: await deps.timezoneOf(ctx.from?.id),
      language: await ctx.i18n.getLocale(),
    });
    if (!parsed.ok)
      return ctx.reply(`${ctx.t(parsed.error.key, parsed.error.vars)}\n${ctx.t("quick-form-help")}`);
    return ctx.conversation.enter("newtask", parsed.value);
  });
  const changer = taskChanger(deps, progress);
  bot.use(
    createConversation(
      createEditConversation({
        zoneOf: (userId) => deps.timezoneOf(userId),
        getTask: (id) => deps.getTask(id),
        async update(id, fields, chatId, locale) {
          const t = translatorFor(i18n, locale);
          return (await changer({ t, chat: { id: chatId } }, id, { kind: "update", fields })).text;
        },
      }),
      { id: "edit", plugins: [i18n] },
    ),
  );
  bot.command("edit", async (ctx) => {
    const id = ctx.match.trim().split(/\s+/)[0] ?? "";
    if (!/^[0-9a-z]{10}$/.test(id)) return ctx.reply(ctx.t("change-which", { command: "edit" }));
    return ctx.conversation.enter("edit", id);
  });
  bot.callbackQuery(/^task:edit:/, async (ctx) => {
    const parsed = taskChangeSchema.safeParse(ctx.callbackQuery.data);
    if (!parsed.success) return ctx.answerCallbackQuery({ text: ctx.t("button-invalid") });
    await ctx.answerCallbackQuery();
    return ctx.conversation.enter("edit", parsed.data.id);
  });
  bot.use(
    startHandler(),
    tasksHandler(deps),
    taskHandler(deps, progress),
    healthHandler(deps),
    statsHandler(deps),
    muteHandler(deps),
    alertsHandler(deps, translatorFor(i18n, settings.alertLanguage)),
    timezoneHandler(deps),
    remindersHandler(deps),
  );
  bot.on("callback_query:data", (ctx) => ctx.answerCallbackQuery({ text: ctx.t("button-inactive") }));
  bot.on("message", (ctx) => ctx.reply(ctx.t("not-understood")));
  bot.catch((error) =>
    log.error({ err: error.error, updateId: error.ctx.update.update_id }, "update failed"),
  );
  return {
    bot,
    progress,
    translator: (locale) => translatorFor(i18n, locale),
    async registerCommands() {
      await bot.api.setMyCommands(commandList(translatorFor(i18n, "en")));
      for (const locale of i18n.locales.filter((l) => l !== "en")) {
        await bot.api.setMyCommands(commandList(translatorFor(i18n, locale)), {
          language_code: locale as "ru",
        });
      }
    },
  };
}
