import type { Api } from "grammy";
import type { StoreState } from "../store/store-health.js";
import type { BotDeps } from "./deps.js";
import type { Translate } from "./i18n.js";

/** How long after it let alert delivery go an instance still speaks for an outage. */
const speaksAfterMs = 10_000;

/**
 * Tells the alert chat, straight (the outbox is in the store), that the store is
 * unavailable, and once it answers again that it does: each change once. The instance
 * that holds alert delivery speaks, and goes on speaking for an outage that began while it
 * held it: on PostgreSQL the outage ends the lock session, and with it the delivery, before
 * a query has even failed, and no one can take the lock until the database is back.
 */
export class StoreNotices {
  private held = false;
  private releasedAt = Number.NEGATIVE_INFINITY;
  /** The outage the chat was told of. */
  private told: (StoreState & { ok: false }) | undefined;
  private pending: { down: boolean; state: StoreState & { ok: false } } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private readonly onChange = (state: StoreState) => {
    if (!state.ok) {
      const speaks = this.held || this.now() - this.releasedAt < speaksAfterMs;
      this.pending = this.told || !speaks ? undefined : { down: true, state };
    } else {
      this.pending = this.told ? { down: false, state: this.told } : undefined;
    }
    this.flush(0);
  };

  constructor(
    private readonly api: Api,
    private readonly deps: Pick<BotDeps, "storeHealth" | "log" | "metrics">,
    private readonly options: {
      chatId: string;
      t: Translate;
      threadId?: number | undefined;
      now?: () => number;
      retryMs?: number;
    },
  ) {}

  start(): void {
    this.deps.storeHealth.on("change", this.onChange);
  }

  /** Whether this instance holds alert delivery now. */
  holding(held: boolean): void {
    if (this.held && !held) this.releasedAt = this.now();
    this.held = held;
    if (held && !this.deps.storeHealth.state.ok) this.onChange(this.deps.storeHealth.state);
  }

  async stop(): Promise<void> {
    this.deps.storeHealth.off("change", this.onChange);
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.sending;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private flush(delayMs: number): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending ??= this.send().finally(() => (this.sending = undefined));
    }, delayMs);
  }

  private async send(): Promise<void> {
    const notice = this.pending;
    if (!notice) return;
    const since = new Date(notice.state.since).toISOString().replace("T", " ").slice(0, 16);
    const text = notice.down
      ? this.options.t("alert-storage-down", { reason: notice.state.reason, since })
      : this.options.t("alert-storage-back", { since });
    try {
      await this.api.sendMessage(this.options.chatId, text, {
        ...(this.options.threadId ? { message_thread_id: this.options.threadId } : {}),
        disable_notification: !notice.down,
      });
      if (this.pending === notice) this.pending = undefined;
      this.told = notice.down ? notice.state : undefined;
      this.deps.metrics?.alertSent();
    } catch (error) {
      this.deps.metrics?.alertFailed();
      this.deps.log.warn({ err: error }, "storage notice not delivered; will try again");
    }
    if (this.pending) this.flush(this.options.retryMs ?? 2000);
  }
}
