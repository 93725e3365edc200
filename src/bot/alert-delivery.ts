import type { Api } from "grammy";
import { randomBytes } from "node:crypto";
import type { Alert, AlertKind } from "../domain/alert.js";
import { alertKeyboard, formatAlert, formatGroup, groupKeyboard } from "./alert-format.js";
import { oneAtATime } from "../one-at-a-time.js";
import { StoreRetry } from "../store/store-health.js";
import type { BotDeps } from "./deps.js";
import type { Translate } from "./i18n.js";

export interface AlertDeliveryOptions {
  chatId: string;
  /** The alert chat's language. */
  t: Translate;
  /** How often the outbox is read. */
  intervalMs?: number;
  /** A repeat within this time edits the message already sent instead of sending a new one. */
  cooldownMs?: number;
  /** A topic of a forum group (`message_thread_id`) to post in. */
  threadId?: number | undefined;
  /** The kinds sent without a sound (`disable_notification`); the rest ring. */
  quietKinds?: readonly AlertKind[];
  /** Problems that open within this time of one still open share its message (0: never). */
  groupWindowMs?: number;
}

/**
 * Delivers the alert outbox to the alert chat. An alert counts as delivered only after
 * Telegram accepted it (429 and 5xx are retried by the API client), so a restart sends
 * what was not delivered and nothing twice.
 *
 * The outbox lives in the database; when the database itself is unavailable the outbox
 * waits, backing off (StoreNotices tells the chat).
 */
export class AlertDelivery {
  private readonly owner = `bot-${randomBytes(4).toString("hex")}`;
  private timer: NodeJS.Timeout | undefined;
  private readonly retry: StoreRetry;
  constructor(
    private readonly api: Api,
    private readonly deps: BotDeps,
    private readonly options: AlertDeliveryOptions,
  ) {
    this.retry = new StoreRetry("alert delivery", deps.storeHealth, deps.log);
  }

  start(): void {
    this.schedule(0);
  }

  private schedule(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.deliver().finally(() => {
        if (this.timer !== undefined)
          this.schedule(Math.max(this.options.intervalMs ?? 2000, this.retry.delayMs));
      });
    }, delayMs);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.deliverOnce.settled();
  }

  /** One pass over the outbox (one at a time); returns how many alerts were delivered. */
  deliver(): Promise<number> {
    return this.deliverOnce();
  }

  private readonly deliverOnce = oneAtATime(async () => {
    return (await this.retry.run(() => this.pass())) ?? 0;
  });

  private topic(): { message_thread_id?: number } {
    return this.options.threadId ? { message_thread_id: this.options.threadId } : {};
  }

  private async pass(): Promise<number> {
    const { alerts, state } = this.deps;
    const cooldown = this.options.cooldownMs ?? 10 * 60_000;
    // What Telegram took while the store did not answer is recorded first, never sent again.
    await this.recordSent();
    let delivered = 0;
    const claimed = await alerts.claimUndelivered(this.owner, 20, 120_000);
    // Alerts shown in a grouped message: one edit per message, once the others are out.
    const grouped = new Map<string, { chatId: string; messageId: number; alerts: Alert[] }>();
    const done = async (list: Alert[], result: "ok" | "unchanged", messageId?: number) => {
      if (result === "ok") delivered += list.length;
      for (const a of list) this.sentNotRecorded.push({ id: a.id, count: a.count, messageId });
      await this.recordSent();
    };
    for (const [index, alert] of claimed.entries()) {
      if (alert.server && (await state.mutes.isMuted(alert.server))) {
        await alerts.markDelivered(alert.id, this.owner, alert.count); // muted: dropped, not queued
        continue;
      }
      const group = await this.groupOf(alert);
      if (group) {
        const key = `${group.chatId}:${group.messageId}`;
        const entry = grouped.get(key) ?? { chatId: group.chatId, messageId: group.messageId, alerts: [] };
        entry.alerts.push(alert);
        grouped.set(key, entry);
        continue;
      }
      // A repeat within the cooldown, or of an alert someone is on, edits the message sent
      // (an edit does not ring); after the cooldown a new message reminds the chat.
      const sent = await state.alertMessages.get(alert.id);
      const recent = alert.deliveredAt !== null && Date.now() - alert.deliveredAt < cooldown;
      const quiet = (this.options.quietKinds ?? []).includes(alert.kind);
      const text = formatAlert(alert, this.options.t);
      const keyboard = alertKeyboard(alert, this.options.t);
      const extra = keyboard ? { reply_markup: keyboard } : {};
      let messageId: number | undefined;
      const result = await this.attempt(alert.id, async () => {
        if (sent && (recent || alert.acknowledged)) {
          await this.api.editMessageText(sent.chatId, sent.messageId, text, extra);
          return;
        }
        const message = await this.api.sendMessage(this.options.chatId, text, {
          ...extra,
          ...this.topic(),
          ...(quiet ? { disable_notification: true } : {}),
        });
        messageId = message.message_id;
      });
      if (result === "failed") {
        // All of these wait for the next pass.
        const rest = [...claimed.slice(index), ...[...grouped.values()].flatMap((g) => g.alerts)];
        for (const a of rest) await alerts.releaseClaim(a.id, this.owner);
        return delivered;
      }
      await done([alert], result, messageId);
    }
    const groups = [...grouped.values()];
    for (const [index, group] of groups.entries()) {
      const members = await state.alertMessages.sharing(group.chatId, group.messageId);
      const keyboard = groupKeyboard(members, this.options.t);
      const result = await this.attempt(group.alerts[0]!.id, () =>
        this.api.editMessageText(group.chatId, group.messageId, formatGroup(members, this.options.t), {
          reply_markup: keyboard,
        }),
      );
      if (result === "failed") {
        for (const a of groups.slice(index).flatMap((g) => g.alerts))
          await alerts.releaseClaim(a.id, this.owner);
        break;
      }
      await done(group.alerts, result);
    }
    return delivered;
  }

  /** One call to Telegram: taken, taken before ("message is not modified"), or not taken. */
  private async attempt(
    alertId: number,
    call: () => Promise<unknown>,
  ): Promise<"ok" | "unchanged" | "failed"> {
    try {
      await call();
      this.deps.metrics?.alertSent();
      return "ok";
    } catch (error) {
      if (/message is not modified/.test(String((error as Error).message))) return "unchanged";
      this.deps.metrics?.alertFailed();
      // Not taken after the client's own retries (429, 5xx, network).
      this.deps.log.warn({ err: error, alertId }, "alert not delivered; will try again");
      return "failed";
    }
  }

  /**
   * The grouped message `alert` belongs in, with everything it shows: a problem that opened
   * within the window after another server's, still open, joins that one's message (recorded before
   * the edit, so a retry edits the same message); a recovery of a grouped problem is shown
   * there too. Undefined when the alert stands alone.
   */
  private async groupOf(
    alert: Alert,
  ): Promise<{ chatId: string; messageId: number; members: Alert[] } | undefined> {
    const window = this.options.groupWindowMs ?? 30_000;
    if (window <= 0) return undefined;
    const messages = this.deps.state.alertMessages;
    let at = await messages.get(alert.id);
    if (alert.kind === "recovered") {
      const first = Array.isArray(alert.details.ids) ? (alert.details.ids[0] as unknown) : undefined;
      at = typeof first === "number" ? await messages.get(first) : undefined;
    } else if (!at && alert.status === "open") {
      at = await messages.openGroup(alert.firstSeen - window, alert.server);
      if (at) await messages.set(alert.id, at.chatId, at.messageId);
    }
    if (!at) return undefined;
    const members = await messages.sharing(at.chatId, at.messageId);
    return members.length > 1 ? { ...at, members } : undefined;
  }

  /** Sent alerts whose delivery is not yet recorded (the store did not answer). */
  private readonly sentNotRecorded: Array<{ id: number; count: number; messageId: number | undefined }> = [];

  /** Records what Telegram took; throws (and keeps the rest) while the store does not answer. */
  private async recordSent(): Promise<void> {
    const { alerts, state } = this.deps;
    while (this.sentNotRecorded.length > 0) {
      const s = this.sentNotRecorded[0]!;
      if (s.messageId !== undefined) await state.alertMessages.set(s.id, this.options.chatId, s.messageId);
      await alerts.markDelivered(s.id, this.owner, s.count);
      this.sentNotRecorded.shift();
    }
  }
}
