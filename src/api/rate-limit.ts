/**
 * Requests per client per minute, in fixed one-minute windows: a request holds a share of
 * its client's budget while it runs (so many sent at once cannot all pass), and keeps it
 * only if it completes (one abandoned half-sent gives it back). Windows that ended are
 * pruned as the map is used, so it holds only the clients of the last minute.
 */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();
  /** Requests under way, per client. */
  private readonly running = new Map<string, number>();
  private lastPrune = 0;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
    private readonly windowMs = 60_000,
  ) {}

  /** Takes a share for a request of `client` now; false (nothing taken) when over the limit. */
  begin(client: string): boolean {
    const running = this.running.get(client) ?? 0;
    if ((this.current(client)?.count ?? 0) + running >= this.perMinute) return false;
    this.running.set(client, running + 1);
    return true;
  }

  /** A request `begin` let through ended: its share is kept if it completed. */
  end(client: string, completed: boolean): void {
    const running = (this.running.get(client) ?? 1) - 1;
    if (running > 0) this.running.set(client, running);
    else this.running.delete(client);
    if (!completed) return;
    const w = this.current(client);
    if (w) w.count += 1;
    else this.windows.set(client, { start: this.now(), count: 1 });
  }

  /** How many clients the limiter remembers (those seen within the last window). */
  get size(): number {
    this.prune();
    return this.windows.size;
  }

  private current(client: string): { start: number; count: number } | undefined {
    this.prune();
    const w = this.windows.get(client);
    return w && this.now() - w.start < this.windowMs ? w : undefined;
  }

  private prune(): void {
    const t = this.now();
    if (t - this.lastPrune < this.windowMs / 4) return;
    this.lastPrune = t;
    for (const [client, w] of this.windows) if (t - w.start >= this.windowMs) this.windows.delete(client);
  }
}
