import { EventEmitter } from "node:events";
import { StoreUnavailableError } from "../errors.js";
import type { Logger } from "../log.js";

/** What a failing statement says about the database, for a person and for the rules below. */
export interface StoreFault {
  /** SQLite's code: SQLITE_BUSY, SQLITE_FULL, SQLITE_READONLY, SQLITE_IOERR_WRITE ... */
  code: string;
  /** busy: another writer holds the lock (passes); the others need someone to act. */
  kind: "busy" | "full" | "readonly" | "io" | "corrupt";
  reason: string;
}

const reasons: Record<StoreFault["kind"], string> = {
  busy: "the database is busy (another process holds its write lock)",
  full: "the database or its disk is full",
  readonly: "the database is read-only",
  io: "the database cannot be read or written (I/O error)",
  corrupt: "the database file is damaged",
};

/** Reads a store error by its SQLite code; undefined for anything else (a bug, not the store). */
export function storeFault(error: unknown): StoreFault | undefined {
  if (error instanceof StoreUnavailableError) return error.fault;
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code !== "string" || !code.startsWith("SQLITE_")) return undefined;
  const base = code.replace(/^SQLITE_([A-Z]+).*$/, "$1");
  const kind: StoreFault["kind"] | undefined = (
    {
      BUSY: "busy",
      LOCKED: "busy",
      PROTOCOL: "busy",
      FULL: "full",
      READONLY: "readonly",
      IOERR: "io",
      CANTOPEN: "io",
      NOMEM: "io",
      CORRUPT: "corrupt",
      NOTADB: "corrupt",
    } as const
  )[base];
  return kind ? { code, kind, reason: reasons[kind] } : undefined;
}

/** A store error as the caller should see it: StoreUnavailableError when it is the store's fault. */
export function asStoreError(error: unknown): unknown {
  const fault = storeFault(error);
  if (!fault || error instanceof StoreUnavailableError) return error;
  return new StoreUnavailableError(fault, { cause: error });
}

export type StoreState =
  { ok: true } | { ok: false; code: string; kind: StoreFault["kind"]; reason: string; since: number };

/**
 * Whether the database answers. A busy database is unavailable once it has stayed busy
 * for `unavailableAfterMs` without a write getting through; a full, read-only, failing or
 * damaged one at once. A committed write makes it available again.
 */
export class StoreHealth extends EventEmitter<{ change: [StoreState] }> {
  private current: StoreState = { ok: true };
  private busySince: number | undefined;

  constructor(
    private readonly unavailableAfterMs: number,
    private readonly now: () => number = Date.now,
  ) {
    super();
    // Every loop and front end listens (one bot per test in the suite).
    this.setMaxListeners(0);
  }

  get state(): StoreState {
    return this.current;
  }

  /** Records a failed statement; returns its fault, or undefined when it is not the store's. */
  failed(error: unknown): StoreFault | undefined {
    const fault = storeFault(error);
    if (!fault) return undefined;
    const t = this.now();
    if (fault.kind === "busy") {
      this.busySince ??= t;
      if (t - this.busySince < this.unavailableAfterMs) return fault;
    }
    const since = this.current.ok ? (fault.kind === "busy" ? this.busySince! : t) : this.current.since;
    if (!this.current.ok && this.current.code === fault.code) return fault;
    this.set({ ok: false, code: fault.code, kind: fault.kind, reason: fault.reason, since });
    return fault;
  }

  /** A write committed: the database answers. */
  succeeded(): void {
    this.busySince = undefined;
    if (!this.current.ok) this.set({ ok: true });
  }

  private set(state: StoreState): void {
    this.current = state;
    this.emit("change", state);
  }
}

/**
 * One background loop's dealings with a sick store: the first failure (and each new
 * code) is logged once with its code, later ones are counted; the loop backs off (1 s
 * doubling up to `maxDelayMs`) and logs once when the store answers again.
 */
export class StoreRetry {
  private failures = 0;
  private lastCode: string | undefined;
  private nextAt = 0;

  constructor(
    private readonly what: string,
    private readonly health: StoreHealth,
    private readonly log: Logger,
    private readonly options: { now?: () => number; firstDelayMs?: number; maxDelayMs?: number } = {},
  ) {}

  private get now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** False while backing off after a failure. */
  get due(): boolean {
    return this.now >= this.nextAt;
  }

  /** How long until the next try. */
  get delayMs(): number {
    return Math.max(0, this.nextAt - this.now);
  }

  /** Runs `fn` unless backing off; a failure is logged, reported and resolves to undefined. */
  async run<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (!this.due) return undefined;
    try {
      const value = await fn();
      this.succeeded();
      return value;
    } catch (error) {
      this.failed(error);
      return undefined;
    }
  }

  succeeded(): void {
    if (this.failures > 0) {
      this.log.info({ loop: this.what, failures: this.failures }, `${this.what}: the store answers again`);
    }
    this.failures = 0;
    this.lastCode = undefined;
    this.nextAt = 0;
  }

  /** Records a failure: logged once per code, reported to the store's health; returns the delay. */
  failed(error: unknown): number {
    const fault = this.health.failed(error);
    const code = fault?.code ?? (error as Error | undefined)?.name ?? "Error";
    this.failures += 1;
    if (code !== this.lastCode) {
      this.lastCode = code;
      if (fault) {
        this.log.warn(
          { loop: this.what, code, err: error },
          `${this.what}: ${fault.reason}; backing off and trying again`,
        );
      } else {
        this.log.error({ loop: this.what, err: error }, `${this.what} failed; backing off and trying again`);
      }
    }
    const first = this.options.firstDelayMs ?? 1000;
    const delay = Math.min(first * 2 ** Math.min(this.failures - 1, 20), this.options.maxDelayMs ?? 30_000);
    this.nextAt = this.now + delay;
    return delay;
  }
}
