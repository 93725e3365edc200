import { hostname } from "node:os";
import type { Logger } from "../log.js";
import { oneAtATime } from "../one-at-a-time.js";
import { StoreRetry, type StoreHealth } from "../store/store-health.js";
import type { ClusterStore, InstanceRow } from "../store/store.js";

/** An instance of the group, as /health and /api/health list it. */
export interface InstanceView extends InstanceRow {
  /** The instance answering. */
  self: boolean;
}

/**
 * This instance's row in the group: written at start, renewed every `beatMs` with the
 * singletons it holds (and at once when they change), removed at a clean stop. Each beat
 * also ends the database sessions of instances whose heartbeat is older than
 * `hungAfterMs` (a holder that hangs keeps its session, and so its singleton locks and
 * row locks, as long as its TCP peer looks alive: ending them frees both, and
 * `replaced` runs so the locks are taken at once), and removes rows older than
 * `staleAfterMs`: instances that died without a clean stop. Without a shared store
 * (SQLite), the group is this instance.
 */
export class Membership {
  private timer: NodeJS.Timeout | undefined;
  private readonly retry: StoreRetry;
  private readonly row: Omit<InstanceRow, "heartbeatAt" | "singletons">;

  constructor(
    private readonly cluster: ClusterStore | undefined,
    self: { id: string; version: string; startedAt: number },
    private readonly singletons: () => string[],
    storeHealth: StoreHealth,
    private readonly log: Logger,
    private readonly options: {
      beatMs: number;
      staleAfterMs: number;
      /** Past this, an instance that has not beaten is taken for hung; default: never. */
      hungAfterMs?: number;
      /** Called once another instance's sessions were ended. */
      replaced?: (instances: string[]) => void;
      now?: () => number;
    },
  ) {
    this.row = { ...self, host: hostname(), pid: process.pid };
    this.retry = new StoreRetry("instance heartbeat", storeHealth, log);
  }

  async start(): Promise<void> {
    if (!this.cluster) return;
    this.timer = setInterval(() => void this.beat(), this.options.beatMs);
    this.timer.unref();
    await this.beat();
  }

  /** Renews this instance's row now (the singletons it holds changed). */
  readonly beat = oneAtATime(async () => {
    const cluster = this.cluster;
    if (!cluster) return;
    await this.retry.run(async () => {
      await cluster.beat({ ...this.row, singletons: this.singletons().sort() });
      const now = (this.options.now ?? Date.now)();
      const { hungAfterMs } = this.options;
      if (hungAfterMs !== undefined) {
        const hung = await cluster.endHungSessions(now - hungAfterMs, this.row.id);
        if (hung.length > 0) {
          this.log.warn(
            { instances: hung, hungAfterMs },
            "ended the database sessions of instances that stopped beating; their locks are free",
          );
          this.options.replaced?.(hung);
        }
      }
      const gone = await cluster.removeStale(now - this.options.staleAfterMs);
      if (gone.length > 0) this.log.warn({ instances: gone }, "removed instances that stopped beating");
    });
  });

  /** Every instance of the group, this one first. */
  async list(): Promise<InstanceView[]> {
    const now = (this.options.now ?? Date.now)();
    const self: InstanceView = {
      ...this.row,
      heartbeatAt: now,
      singletons: this.singletons().sort(),
      self: true,
    };
    const rows = this.cluster ? await this.cluster.instances() : [];
    const live = (r: InstanceRow) => r.id !== self.id && r.heartbeatAt >= now - this.options.staleAfterMs;
    return [self, ...rows.filter(live).map((r) => ({ ...r, self: false }))];
  }

  /** A clean stop: the row goes, so the others need not wait for it to go stale. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.beat.settled();
    await this.cluster?.leave(this.row.id).catch((error: unknown) => {
      this.log.debug({ err: error }, "could not remove this instance's row");
    });
  }
}
