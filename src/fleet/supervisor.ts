import type { Logger } from "../log.js";
import { oneAtATime } from "../one-at-a-time.js";

export interface RestartOptions {
  /** Cap of the restart backoff (1 s doubling). */
  maxDelayMs: number;
  /** This many restarts inside `crashLoopWindowMs` is a crash loop. */
  crashLoopRestarts: number;
  crashLoopWindowMs: number;
  /** Up this long, a process that dies starts the backoff afresh. */
  stableAfterMs: number;
}

export const defaultRestart: RestartOptions = {
  maxDelayMs: 60_000,
  crashLoopRestarts: 5,
  crashLoopWindowMs: 300_000,
  stableAfterMs: 60_000,
};

/** What a supervisor restarts, seen through the little it needs. */
export interface Supervised {
  /** Closes what is left of the server and connects again; throws when it cannot. */
  reconnect(): Promise<void>;
  connected(): boolean;
  /** When the running process started, for the stable reset. */
  startedAt(): number | undefined;
  /** Records why the server is not running (its last error). */
  noteFailure(reason: string): void;
}

export interface SupervisorEvents {
  crashLoop(e: { restarts: number; windowMs: number; until: number }): void;
  restarted(e: { restarts: number }): void;
}

/**
 * Restarts one server: after a failed start or an exit it waits 1 s, 2 s, 4 s ... (up to
 * `maxDelayMs`), starting afresh once a process stayed up `stableAfterMs`; too many
 * restarts within `crashLoopWindowMs` is a crash loop, and restarts pause until the window
 * has room again. One restart at a time.
 */
export class Supervisor {
  private backoffStep = 0;
  private nextStartAt = 0;
  private crashLoopUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  /** When each recent restart happened, for crash-loop detection. */
  private recent: number[] = [];
  private restartCount = 0;
  private closed = false;

  constructor(
    private readonly server: Supervised,
    private readonly options: RestartOptions,
    private readonly events: SupervisorEvents,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Restarts the server now, unless a restart is under way (then it shares that one). */
  readonly restart = oneAtATime(() => this.restartOnce());

  get totalRestarts(): number {
    return this.restartCount;
  }

  /** Until when the server may not be started (backing off, or paused in a crash loop). */
  get blockedUntil(): number {
    return Math.max(this.nextStartAt, this.crashLoopUntil);
  }

  crashLooping(): boolean {
    return this.crashLoopUntil > this.now();
  }

  /** A start succeeded: the next failure starts the backoff where it is. */
  started(): void {
    this.nextStartAt = 0;
  }

  /** A start failed: the next one waits a step longer (or the longest, `slowest`). Returns that wait. */
  startFailed(slowest = false): number {
    this.backoffStep = slowest
      ? Math.ceil(Math.log2(this.options.maxDelayMs / 1000)) + 1
      : this.backoffStep + 1;
    const delay = this.delay();
    this.nextStartAt = this.now() + delay;
    return delay;
  }

  /** The process went away on its own: schedules its restart; returns the wait. */
  exited(): number {
    const upFor = this.now() - (this.server.startedAt() ?? this.now());
    if (upFor >= this.options.stableAfterMs) this.backoffStep = 0;
    const delay = this.startFailed();
    this.schedule(delay);
    return delay;
  }

  /** Tries a restart after `delay` (by default the current backoff). */
  schedule(delay = this.delay()): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.restart().catch((error: unknown) => {
        this.log.warn({ err: error }, "restart failed");
        if (!this.closed && !this.server.connected()) this.schedule();
      });
    }, delay);
    this.timer.unref();
  }

  /** Restarts now if nothing holds it back (used when a call needs the server). */
  async restartIfAllowed(): Promise<boolean> {
    if (this.blockedUntil > this.now()) return false;
    clearTimeout(this.timer);
    await this.restart();
    return true;
  }

  /** No more restarts; waits for one under way. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.restart.settled();
  }

  private delay(): number {
    return Math.min(1000 * 2 ** Math.max(this.backoffStep - 1, 0), this.options.maxDelayMs);
  }

  private async restartOnce(): Promise<void> {
    if (this.closed || this.server.connected()) return;
    const t = this.now();
    this.recent = this.recent.filter((at) => t - at < this.options.crashLoopWindowMs);
    if (this.recent.length >= this.options.crashLoopRestarts) {
      const until = this.recent[0]! + this.options.crashLoopWindowMs;
      if (this.crashLoopUntil < until) {
        this.crashLoopUntil = until;
        this.server.noteFailure(
          `crash loop: ${this.recent.length} restarts in ${Math.round(this.options.crashLoopWindowMs / 1000)} s`,
        );
        this.log.error({ until }, "server is crash-looping; restarts paused");
        this.events.crashLoop({
          restarts: this.recent.length,
          windowMs: this.options.crashLoopWindowMs,
          until,
        });
      }
      this.nextStartAt = until;
      this.schedule(until - t);
      return;
    }
    this.recent.push(t);
    this.restartCount += 1;
    await this.server.reconnect();
    this.crashLoopUntil = 0;
    this.log.info({ restarts: this.restartCount }, "server restarted");
    this.events.restarted({ restarts: this.restartCount });
  }
}
