import { GrammyError, InlineKeyboard, type Api } from "grammy";
import { randomBytes } from "node:crypto";
import { reminderTimes } from "../domain/reminder.js";
import { oneAtATime } from "../one-at-a-time.js";
import type { DueReminder, ReminderStore } from "../store/store.js";
import { StoreRetry } from "../store/store-health.js";
import { formatInZone } from "../time-zone.js";
import { buttonData } from "./callback-data.js";
import type { BotDeps } from "./deps.js";
import type { Translate } from "./i18n.js";

export interface ReminderOptions {
  /** Minutes before the deadline, for a task that asked for nothing else. */
  defaults: readonly number[];
  t: Translate;
  /** The language of `t`, for dates ("en" by default). */
  language?: string | undefined;
  /** How often due reminders are looked for. */
  intervalMs?: number;
  /** A reminder sent this long after its time says it is late (every instance was down). */
  lateAfterMs?: number;
  /** How long a claimed reminder is this instance's before another may send it. */
  leaseMs?: number;
  now?: () => number;
}

/** What one pass did. */
export interface ReminderPass {
  planned: number;
  fired: number;
}

/**
 * Reminders before a task's deadline, sent to the chat that made it with buttons Done,
 * Snooze 1 h and Snooze until tomorrow 9:00. Every instance runs this loop; each reminder
 * row is claimed by one (a lease in the store), so it is sent once however many run. Each
 * pass first plans the tasks whose version moved on (a new task, a moved deadline, done,
 * reopened, deleted): their pending reminders are replaced by those of the task as it is
 * now, and a task that is not open keeps none.
 */
export class Reminders {
  private readonly owner = `rem-${randomBytes(4).toString("hex")}`;
  private timer: NodeJS.Timeout | undefined;
  private readonly retry: StoreRetry;
  private readonly now: () => number;

  constructor(
    private readonly api: Api,
    private readonly store: ReminderStore,
    private readonly deps: Pick<BotDeps, "timezoneOf" | "log" | "storeHealth" | "metrics">,
    private readonly options: ReminderOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.retry = new StoreRetry("reminders", deps.storeHealth, deps.log);
  }

  start(): void {
    this.schedule(0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.passOnce.settled();
  }

  /** One pass (one at a time): plan what changed, then send what is due. */
  pass(): Promise<ReminderPass> {
    return this.passOnce();
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.pass().finally(() => {
        if (this.timer !== undefined)
          this.schedule(Math.max(this.options.intervalMs ?? 15_000, this.retry.delayMs));
      });
    }, delayMs);
  }

  private readonly passOnce = oneAtATime(async (): Promise<ReminderPass> => {
    return (
      (await this.retry.run(async () => {
        const planned = await this.plan();
        return { planned, fired: await this.fire() };
      })) ?? { planned: 0, fired: 0 }
    );
  });

  private async plan(): Promise<number> {
    let planned = 0;
    for (;;) {
      const batch = await this.store.toPlan(100);
      if (batch.length === 0) return planned;
      let moved = 0;
      for (const task of batch) {
        const open = task.state === "open";
        const before =
          open && task.deadline && task.chatId
            ? reminderTimes(task.deadline, task.remind ?? this.options.defaults, this.now())
            : [];
        if (await this.store.replan(task.taskId, task.version, before, open)) moved += 1;
      }
      planned += moved;
      // Tasks that moved on meanwhile are planned by the next pass.
      if (moved === 0 || batch.length < 100) return planned;
    }
  }

  private async fire(): Promise<number> {
    let fired = 0;
    const leaseMs = this.options.leaseMs ?? 60_000;
    for (;;) {
      const due = await this.store.claim(this.owner, this.now(), 20, leaseMs);
      for (const reminder of due) {
        if (await this.send(reminder)) fired += 1;
      }
      if (due.length < 20) return fired;
    }
  }

  /** Sends one claimed reminder; true when it went out. */
  private async send(reminder: DueReminder): Promise<boolean> {
    const { t } = this.options;
    const now = this.now();
    const late = now - reminder.fireAt > (this.options.lateAfterMs ?? 120_000);
    const zone = await this.deps.timezoneOf(reminder.userId ?? undefined);
    const lines = [
      t("reminder", { title: reminder.title, id: reminder.taskId }),
      reminder.deadline
        ? t(Date.parse(reminder.deadline) > now ? "reminder-due" : "reminder-overdue", {
            when: formatInZone(reminder.deadline, zone, this.options.language ?? "en", new Date(now)),
          })
        : "",
      late
        ? t("reminder-late", {
            when: formatInZone(new Date(reminder.fireAt), zone, this.options.language ?? "en", new Date(now)),
          })
        : "",
    ].filter(Boolean);
    const keyboard = new InlineKeyboard()
      .text(t("btn-done"), buttonData.taskChange("done", reminder.taskId))
      .row()
      .text(t("btn-snooze-hour"), buttonData.snooze(reminder.id, "1h"))
      .text(t("btn-snooze-tomorrow"), buttonData.snooze(reminder.id, "tomorrow"));
    try {
      await this.api.sendMessage(reminder.chatId, lines.join("\n"), { reply_markup: keyboard });
    } catch (error) {
      // A chat that is gone (the bot was blocked or removed) will not take it later either.
      if (error instanceof GrammyError && (error.error_code === 403 || error.error_code === 400)) {
        this.deps.log.warn(
          { err: error, reminder: reminder.id, taskId: reminder.taskId },
          "reminder refused by Telegram",
        );
        await this.store.sent(reminder.id, this.owner, late);
        return false;
      }
      this.deps.log.warn(
        { err: error, reminder: reminder.id },
        "could not send a reminder; trying again soon",
      );
      await this.store.retry(reminder.id, this.owner, now + 60_000);
      return false;
    }
    await this.store.sent(reminder.id, this.owner, late);
    this.deps.metrics?.reminderFired?.(late);
    this.deps.log.info({ reminder: reminder.id, taskId: reminder.taskId, late }, "reminder sent");
    return true;
  }
}
