import type { Api } from "grammy";
import { randomBytes } from "node:crypto";
import { alertKeyboard, formatAlert } from "../../handlers/alert-format.js";
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
}

/**
 * Delivers the alert outbox to the alert chat. An alert counts as delivered only after
 * Telegram accepted it (429 and 5xx are retried by the API client), so a restart sends
 * what was not delivered and nothing twice.
 */
export class AlertDelivery {
  private readonly owner = `bot-${randomBytes(4).toString("hex")}`;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<number> | undefined;

  constructor(
    private readonly api: Api,
    private readonly deps: BotDeps,
    private readonly options: AlertDeliveryOptions,
  ) {}

  start(): void {
    const tick = () => {
      void this.deliver().finally(() => {
        if (this.timer !== undefined) this.timer = setTimeout(tick, this.options.intervalMs ?? 2000);
      });
    };
    this.timer = setTimeout(tick, 0);
  }

  async stop(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running?.catch(() => undefined);
  }

  /** One pass over the outbox (one at a time); returns how many alerts were delivered. */
  deliver(): Promise<number> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<number> {
    const { alerts, state, log } = this.deps;
    const cooldown = this.options.cooldownMs ?? 10 * 60_000;
    let delivered = 0;
    const claimed = alerts.claimUndelivered(this.owner, 20, 120_000);
    for (const [index, alert] of claimed.entries()) {
      if (alert.server && state.mutes.isMuted(alert.server)) {
        alerts.markDelivered(alert.id, this.owner, alert.count); // muted: dropped, not queued
        continue;
      }
      const text = formatAlert(alert, this.options.t);
      const keyboard = alertKeyboard(alert, this.options.t);
      const extra = keyboard ? { reply_markup: keyboard } : {};
      const sent = state.alertMessages.get(alert.id);
      try {
        if (sent && alert.deliveredAt !== null && Date.now() - alert.deliveredAt < cooldown) {
          await this.api.editMessageText(sent.chatId, sent.messageId, text, extra);
        } else {
          const message = await this.api.sendMessage(this.options.chatId, text, extra);
          state.alertMessages.set(alert.id, this.options.chatId, message.message_id);
        }
        alerts.markDelivered(alert.id, this.owner, alert.count);
        this.deps.metrics?.alertSent();
        delivered += 1;
      } catch (error) {
        if (/message is not modified/.test(String((error as Error).message))) {
          alerts.markDelivered(alert.id, this.owner, alert.count);
          continue;
        }
        this.deps.metrics?.alertFailed();
        // Telegram did not take it (after the client's own retries): all of these wait for the next pass.
        for (const rest of claimed.slice(index)) alerts.releaseClaim(rest.id, this.owner);
        log.warn({ err: error, alertId: alert.id }, "alert not delivered; will try again");
        break;
      }
    }
    return delivered;
  }
}
