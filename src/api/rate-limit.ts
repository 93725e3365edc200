/**
 * Requests per client per minute, counted when a request completes (a half-sent request
 * takes no share of anyone's budget), in fixed one-minute windows. Windows that ended are
 * pruned as the map is used, so it holds only the clients of the last minute.
 */
export class RateLimiter {
  private readonly windows = new Map<string, { start: number; count: number }>();
  private lastPrune = 0;

  constructor(
    private readonly perMinute: number,
    private readonly now: () => number = Date.now,
    private readonly windowMs = 60_000,
  ) {}

  /** Whether `client` may make another request now. */
  allows(client: string): boolean {
    const w = this.current(client);
    return !w || w.count < this.perMinute;
  }

  /** Counts a request of `client` that completed. */
  completed(client: string): void {
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
