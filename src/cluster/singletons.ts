import type { Logger } from "../log.js";
import { oneAtATime } from "../one-at-a-time.js";
import type { SingletonLocks } from "../store/store.js";

/** Starts a singleton's work; resolves with the way to stop it. */
export type StartSingleton = () => Promise<() => Promise<void>>;

interface Singleton {
  start: StartSingleton;
  stop?: (() => Promise<void>) | undefined;
  /** A start under way, so a loss meanwhile waits for it before stopping. */
  starting?: Promise<void> | undefined;
}

/**
 * Work that must run once in a group of instances sharing one database (Telegram long
 * polling: Telegram answers 409 to a second consumer; alert delivery), each behind a named
 * lock of the store. Every `retryMs` an instance tries to take the locks it lacks; the one
 * that gets a lock starts that work, and stops it the moment the lock's session ends. A
 * holder that dies frees its locks with its session, so another instance takes over within
 * `retryMs` of that. Without locks (SQLite: one process) every singleton runs here.
 */
export class Singletons {
  private readonly roles = new Map<string, Singleton>();
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private readonly unsubscribe: (() => void) | undefined;

  constructor(
    private readonly locks: SingletonLocks | undefined,
    private readonly log: Logger,
    private readonly options: {
      retryMs: number;
      instance: string;
      /** Called when a singleton starts or stops here. */
      changed?: () => void;
    },
  ) {
    this.unsubscribe = locks?.onLost((names) => {
      if (names.length > 0)
        this.log.warn({ singletons: names }, "lost the lock session; stopping singletons");
      for (const name of names) void this.stopRole(name, "lock lost");
    });
  }

  /** Adds a singleton; it starts here once this instance holds its lock. */
  add(name: string, start: StartSingleton): void {
    this.roles.set(name, { start });
    if (this.running) void this.claim();
  }

  /** The singletons this instance runs now. */
  held(): string[] {
    return [...this.roles.entries()].filter(([, r]) => r.stop).map(([name]) => name);
  }

  start(): Promise<void> {
    this.running = true;
    this.timer = setInterval(() => void this.claim(), this.options.retryMs);
    this.timer.unref();
    return this.claim();
  }

  /** Tries the locks not held now (another instance's were just freed), not on the next round. */
  tryNow(): void {
    if (this.running) void this.claim();
  }

  /** Stops every singleton held here and lets its lock go. */
  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.timer);
    await this.claim.settled();
    this.unsubscribe?.();
    await Promise.all([...this.roles.keys()].map((name) => this.stopRole(name, "shutting down")));
    const locks = this.locks;
    if (locks) await Promise.all([...this.roles.keys()].map((name) => locks.release(name)));
  }

  /** Tries each lock not held yet; starts the work of each one taken. */
  private readonly claim = oneAtATime(async () => {
    for (const [name, role] of this.roles) {
      if (!this.running || role.stop || role.starting) continue;
      let taken: boolean;
      try {
        taken = this.locks ? await this.locks.tryAcquire(name) : true;
      } catch (error) {
        this.log.debug({ err: error, singleton: name }, "could not try the lock");
        continue;
      }
      if (!taken || !this.running) continue;
      role.starting = (async () => {
        try {
          role.stop = await role.start();
          this.log.info({ singleton: name, instance: this.options.instance }, "holding singleton");
          this.options.changed?.();
        } catch (error) {
          this.log.error({ err: error, singleton: name }, "singleton did not start; letting its lock go");
          await this.locks?.release(name);
        }
      })().finally(() => (role.starting = undefined));
      await role.starting;
    }
  });

  private async stopRole(name: string, why: string): Promise<void> {
    const role = this.roles.get(name);
    if (!role) return;
    await role.starting;
    const stop = role.stop;
    role.stop = undefined;
    if (!stop) return;
    this.options.changed?.();
    try {
      await stop();
      this.log.info({ singleton: name, why }, "singleton stopped");
    } catch (error) {
      this.log.error({ err: error, singleton: name }, "singleton did not stop cleanly");
    }
  }
}
