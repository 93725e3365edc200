import type { ServerName } from "../config/schema.js";
import type { Logger } from "../log.js";
import type { HealthMonitor, ServerHealth } from "../monitoring/health-monitor.js";
import { oneAtATime } from "../one-at-a-time.js";
import { StoreRetry, type StoreHealth } from "../store/store-health.js";
import type { ClusterStore } from "../store/store.js";

/**
 * One picture of server health for a group of instances. The instance holding the
 * "health-monitor" singleton probes (`lead`) and writes every rating to the store; every
 * other instance shows the ratings read from there, refreshed every `refreshMs`, so /health,
 * /stats, /api/health, /metrics and the status page agree whichever instance answers.
 * Without a shared store (SQLite), the local monitor is the picture.
 */
export class SharedHealth {
  private leading = false;
  private read = new Map<ServerName, { rating: ServerHealth; instance: string; writtenAt: number }>();
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private dirty = false;
  private readonly writeRetry: StoreRetry;
  private readonly readRetry: StoreRetry;

  constructor(
    private readonly monitor: HealthMonitor,
    private readonly cluster: ClusterStore | undefined,
    private readonly instance: string,
    storeHealth: StoreHealth,
    log: Logger,
    private readonly refreshMs: number,
  ) {
    this.writeRetry = new StoreRetry("shared health write", storeHealth, log);
    this.readRetry = new StoreRetry("shared health read", storeHealth, log);
    monitor.on("checked", this.changed);
    monitor.on("status", this.changed);
  }

  /** Reads the group's picture now and every `refreshMs` while another instance leads. */
  async start(): Promise<void> {
    if (!this.cluster) return;
    this.timer = setInterval(() => void this.refresh(), this.refreshMs);
    this.timer.unref();
    await this.refresh();
  }

  /** Probes here for the group until the returned stop. */
  lead(): () => Promise<void> {
    this.leading = true;
    this.monitor.start();
    return async () => {
      this.monitor.pause();
      this.leading = false;
      await this.write.settled();
    };
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    clearTimeout(this.retryTimer);
    this.leading = false;
    await this.write.settled();
    await this.refresh.settled();
  }

  /** Every server's latest rating, as the group sees it. */
  snapshot(): ServerHealth[] {
    const local = this.monitor.snapshot();
    if (this.leading || !this.cluster) return local;
    return local.map((h) => this.read.get(h.server)?.rating ?? h);
  }

  /** Which instance's probes rated the servers shown (the latest writer's, when another leads). */
  ratedBy(): string {
    if (this.leading || !this.cluster || this.read.size === 0) return this.instance;
    return [...this.read.values()].reduce((a, b) => (b.writtenAt > a.writtenAt ? b : a)).instance;
  }

  /** Probes now when leading; otherwise reads the leader's latest ratings. */
  async check(): Promise<ServerHealth[]> {
    if (this.leading || !this.cluster) return this.monitor.check();
    await this.refresh();
    return this.snapshot();
  }

  private readonly changed = () => {
    if (!this.leading || !this.cluster) return;
    this.dirty = true;
    void this.write();
  };

  /** Writes the ratings until none changed during the write. */
  private readonly write = oneAtATime(async () => {
    while (this.dirty && this.leading && this.cluster) {
      this.dirty = false;
      const cluster = this.cluster;
      const ok = await this.writeRetry.run(async () => {
        await cluster.writeHealth(this.instance, this.monitor.snapshot());
        return true;
      });
      if (!ok) {
        // The store does not answer: tried again after the retry's backoff (or at the next
        // change, if sooner), not left stale until the next probe.
        this.dirty = true;
        clearTimeout(this.retryTimer);
        this.retryTimer = setTimeout(() => void this.write(), Math.max(this.writeRetry.delayMs, 500));
        this.retryTimer.unref();
        return;
      }
    }
  });

  private readonly refresh = oneAtATime(async () => {
    if (this.leading || !this.cluster) return;
    const cluster = this.cluster;
    const rows = await this.readRetry.run(() => cluster.readHealth());
    if (rows) this.read = new Map(rows.map((r) => [r.rating.server, r]));
  });
}
