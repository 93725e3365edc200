import { run, sequentialize, type RunnerHandle } from "@grammyjs/runner";
import { randomBytes } from "node:crypto";
import type { Readable, Writable } from "node:stream";
import type { Logger } from "../log.js";
import type { Core } from "../core.js";
import { AlertDelivery } from "./alert-delivery.js";
import { StoreNotices } from "./store-notices.js";
import { consoleAlertChat, startConsoleChat } from "./console-chat.js";
import { createBot } from "./create-bot.js";
import type { BotDeps, BotSettings } from "./deps.js";
import { serveWebhook } from "./webhook.js";
import { AlertRoutes } from "../alerts/route-delivery.js";
import { senderFor } from "../alerts/senders.js";
import type { TelegramSend } from "../alerts/telegram.js";
import { taskfanVersion } from "../banner.js";
import { formatAlert } from "./alert-format.js";
import type { Translate } from "./i18n.js";
import { parseOffsets } from "../domain/reminder.js";
import { Reminders } from "./reminders.js";
import type { Api } from "grammy";
import { lastHourActivity } from "../monitoring/stats.js";

/** The alert routes besides the chat (`alerts.routes`), in the alert chat's words; none: undefined. */
export function alertRoutesOf(
  core: Core,
  log: Logger,
  t: Translate,
  telegram?: TelegramSend,
): AlertRoutes | undefined {
  const routes = core.config.alerts.routes;
  if (routes.length === 0) return undefined;
  const from = { instance: core.instance, version: taskfanVersion() };
  const text = (alert: Parameters<typeof formatAlert>[0]) => formatAlert(alert, t);
  return new AlertRoutes(
    core.store,
    routes.map((config) => ({ config, sender: senderFor(config, text, from, telegram) })),
    log.child({ component: "alert-routes" }),
    { metrics: core.metrics },
  );
}

/** The reminder loop of this instance (none when `reminders.enabled` is false). */
function remindersOf(core: Core, deps: BotDeps, api: Api, t: Translate): Reminders | undefined {
  if (!deps.reminders) return undefined;
  return new Reminders(api, deps.reminders, deps, {
    defaults: deps.remindDefaults ?? [],
    t,
    language: core.config.notifications.telegram.language,
    intervalMs: core.config.reminders.check_interval * 1000,
  });
}

/** The core as the bot sees it. */
export function botDepsOf(core: Core, log: Logger): BotDeps {
  const { orchestrator, store } = core;
  return {
    createTask: (input, opts) => orchestrator.createTask(input, opts),
    getTask: (id) => orchestrator.getTask(id),
    recentTasks: (limit, offset) => store.tasks.recent(limit, offset),
    countTasks: (filter) => store.tasks.count(filter),
    listTasks: (filter) => store.tasks.list(filter),
    retryFailed: (id) => orchestrator.retryFailed(id),
    changeTask: (id, input, opts) => orchestrator.changeTask(id, input, opts),
    events: orchestrator,
    onTaskChanged: store.onTaskChanged?.bind(store),
    getHealth: () => core.getHealth(),
    instances: () => core.instances(),
    ratedBy: () => core.ratedBy(),
    checkHealth: () => core.checkHealth(),
    getStats: () => core.getStats(),
    activity: () => lastHourActivity(store),
    alerts: store.alerts,
    state: store.bot,
    storeHealth: store.health,
    serverNames: core.fleet.names,
    routeNames: core.config.alerts.routes.map((r) => r.name),
    routes: () => core.routes(),
    timezoneOf: async (userId) =>
      (userId === undefined ? undefined : await store.bot.timezones.get(userId)) ?? core.config.timezone,
    reminders: core.config.reminders.enabled ? store.reminders : undefined,
    remindDefaults: core.config.reminders.before.flatMap((b) => {
      const parsed = parseOffsets(b);
      return parsed.ok ? parsed.minutes : [];
    }),
    log,
    metrics: core.metrics,
  };
}

export interface FrontEnd {
  kind: "telegram" | "console";
  /** The Telegram bot's @username (without the @). */
  username?: string;
  stop(): Promise<void>;
}

/**
 * Telegram when a bot token is configured (long polling through @grammyjs/runner,
 * updates of one chat in order); otherwise the console chat on this terminal.
 */
export async function startFrontEnd(
  core: Core,
  log: Logger,
  io: { input: Readable; output: Writable },
): Promise<FrontEnd> {
  const { config } = core;
  const deps = botDepsOf(core, log);
  const telegram = config.notifications.telegram;
  const settings: BotSettings = {
    allowedUserIds: new Set(config.security.allowed_user_ids),
    alertChatId: telegram.chat_id,
    alertChatAccess: config.security.alert_chat_access,
    alertLanguage: telegram.language,
    rateLimitPerMinute: config.security.rate_limiting.enabled
      ? config.security.rate_limiting.requests_per_minute
      : undefined,
  };
  // `notifications.telegram.enabled: false` keeps the bot off even with a token.
  if (!telegram.bot_token || !telegram.enabled) {
    const chat = startConsoleChat(deps, settings, io);
    const target = { chatId: consoleAlertChat, t: chat.bot.translator() };
    const alerts = new AlertDelivery(chat.bot.bot.api, deps, target);
    alerts.start();
    const notices = new StoreNotices(chat.bot.bot.api, deps, target);
    notices.start();
    notices.holding(true);
    const routes = alertRoutesOf(core, log, chat.bot.translator(telegram.language));
    routes?.start();
    const reminders = remindersOf(core, deps, chat.bot.bot.api, chat.bot.translator(telegram.language));
    reminders?.start();
    return {
      kind: "console",
      async stop() {
        await reminders?.stop();
        await alerts.stop();
        await notices.stop();
        await routes?.stop();
        chat.stop();
      },
    };
  }
  const tb = createBot(deps, settings, {
    token: telegram.bot_token,
    ...(telegram.api_root ? { apiRoot: telegram.api_root } : {}),
    sequentialize: sequentialize((ctx) => ctx.chat?.id.toString()),
  });
  await tb.bot.init();
  await tb.registerCommands();
  let stopUpdates: () => Promise<void>;
  if (telegram.webhook_url) {
    const secret = telegram.webhook_secret ?? randomBytes(24).toString("hex");
    const server = await serveWebhook(tb.bot, {
      url: telegram.webhook_url,
      host: telegram.webhook_host,
      port: telegram.webhook_port,
      secret,
    });
    await tb.bot.api.setWebhook(telegram.webhook_url, { secret_token: secret });
    log.info({ url: telegram.webhook_url, port: telegram.webhook_port }, "webhook set");
    stopUpdates = () => new Promise((resolve) => server.close(() => resolve()));
  } else {
    // Telegram answers 409 to a second getUpdates consumer: one instance polls.
    core.singletons.add("telegram-polling", async () => {
      await tb.bot.api.deleteWebhook();
      const runner: RunnerHandle = run(tb.bot);
      return async () => {
        if (runner.isRunning()) await runner.stop();
      };
    });
    stopUpdates = () => Promise.resolve();
  }
  const chatId = telegram.chat_id;
  let notices: StoreNotices | undefined;
  if (chatId) {
    // Each alert is sent once: one instance delivers them all, and speaks of the store.
    const speaker = new StoreNotices(tb.bot.api, deps, {
      chatId,
      t: tb.translator(config.notifications.telegram.language),
      threadId: telegram.thread_id,
    });
    speaker.start();
    notices = speaker;
    core.singletons.add("alert-delivery", () => {
      speaker.holding(true);
      const alerts = new AlertDelivery(tb.bot.api, deps, {
        chatId,
        t: tb.translator(config.notifications.telegram.language),
        threadId: telegram.thread_id,
        quietKinds: telegram.quiet_kinds,
        groupWindowMs: telegram.group_window * 1000,
      });
      alerts.start();
      return Promise.resolve(async () => {
        speaker.holding(false);
        await alerts.stop();
      });
    });
  }
  const routes = alertRoutesOf(core, log, tb.translator(telegram.language), (chatId, text, other) =>
    tb.bot.api.sendMessage(chatId, text, other),
  );
  if (routes) {
    // Each alert once per route: one instance delivers to every route.
    core.singletons.add("alert-routes", () => {
      routes.start();
      return Promise.resolve(() => routes.stop());
    });
  }
  // Every instance sends reminders: each is claimed by one of them, so it goes out once.
  const reminders = remindersOf(core, deps, tb.bot.api, tb.translator(telegram.language));
  reminders?.start();
  log.info({ username: tb.bot.botInfo.username }, "telegram bot started");
  return {
    kind: "telegram",
    username: tb.bot.botInfo.username,
    async stop() {
      await reminders?.stop();
      await core.singletons.stop();
      await notices?.stop();
      tb.progress.stop();
      await stopUpdates();
    },
  };
}
