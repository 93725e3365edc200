import { bulkhead, CircuitState, type BulkheadPolicy } from "cockatiel";
import { EventEmitter } from "node:events";
import type { ServerConfig, ServerName } from "../config/schema.js";
import {
  CallTimeoutError,
  ServerDownError,
  ServerUnavailableError,
  ToolFailedError,
  describeError,
} from "../errors.js";
import { textOf, type CallTool, type Integration } from "../integrations/integration.js";
import type { Logger } from "../log.js";
import { createServerPolicy, type ServerPolicy } from "./policy.js";
import { ServerConnection } from "./server-connection.js";

export type BreakerState = "closed" | "open" | "half-open" | "isolated";

export interface FleetEvents {
  breaker: [{ server: ServerName; state: BreakerState; error?: string | undefined }];
  retry: [{ server: ServerName; attempt: number; delayMs: number; error: string }];
  started: [{ server: ServerName; ok: boolean; error?: string | undefined; ms: number }];
}

export interface AttemptContext {
  call: CallTool;
  signal: AbortSignal;
  /** 1 for the first attempt of this execution. */
  attempt: number;
}

export type Availability = { ok: true } | { ok: false; reason: string; retryAt: number };

export interface FleetOptions {
  servers: readonly ServerConfig[];
  integrations: ReadonlyMap<ServerName, Integration>;
  breakerThreshold: number;
  halfOpenAfterMs: number;
  log: Logger;
  /** First retry delay; 1 s in production, shorter only where a test says so. */
  retryInitialDelayMs?: number;
  now?: () => number;
}

interface Member {
  config: ServerConfig;
  integration: Integration;
  connection: ServerConnection;
  policy: ServerPolicy;
  queue: BulkheadPolicy;
  openedAt: number | undefined;
  /** Consecutive failed starts; the next start waits 1 s, 2 s, 4 s ... up to a minute. */
  startFailures: number;
  nextStartAt: number;
}

const maxRestartDelayMs = 60_000;

/** The MCP servers: spawned, connected, each behind its own policy. */
export class Fleet extends EventEmitter<FleetEvents> {
  private readonly members = new Map<ServerName, Member>();
  private readonly now: () => number;
  private closed = false;

  constructor(private readonly options: FleetOptions) {
    super();
    this.now = options.now ?? Date.now;
    for (const config of options.servers) {
      const integration = options.integrations.get(config.name);
      if (!integration) throw new Error(`no integration for ${config.name}`);
      const log = options.log.child({ server: config.name });
      const policy = createServerPolicy({
        timeoutMs: config.timeout * 1000,
        retryAttempts: config.retry_attempts,
        breakerThreshold: options.breakerThreshold,
        halfOpenAfterMs: options.halfOpenAfterMs,
        ...(options.retryInitialDelayMs !== undefined ? { initialDelayMs: options.retryInitialDelayMs } : {}),
      });
      const member: Member = {
        config,
        integration,
        connection: new ServerConnection(config, integration.requiredTools, log),
        policy,
        // Servers that rewrite one file per call get concurrency 1: a serial queue.
        queue: bulkhead(config.concurrency, Number.MAX_SAFE_INTEGER),
        openedAt: undefined,
        startFailures: 0,
        nextStartAt: 0,
      };
      policy.breaker.onStateChange((state) => {
        const named = stateName(state);
        if (named === "open") member.openedAt = this.now();
        log.warn({ breaker: named }, "circuit breaker state changed");
        this.emit("breaker", { server: config.name, state: named, error: member.connection.lastError });
      });
      policy.retry.onRetry((e) => {
        const error = "error" in e ? describeError(e.error) : "unexpected value";
        this.emit("retry", { server: config.name, attempt: e.attempt, delayMs: e.delay, error });
      });
      this.members.set(config.name, member);
    }
  }

  get names(): ServerName[] {
    return [...this.members.keys()];
  }

  config(server: ServerName): ServerConfig {
    return this.member(server).config;
  }

  integration(server: ServerName): Integration {
    return this.member(server).integration;
  }

  /** Starts every server in parallel; one that fails to start is reported, not fatal. */
  async start(): Promise<Array<{ server: ServerName; ok: boolean; error?: string; ms: number }>> {
    return Promise.all(
      [...this.members.values()].map(async (m) => {
        const started = this.now();
        try {
          await this.connect(m);
          const report = { server: m.config.name, ok: true, ms: this.now() - started };
          this.emit("started", report);
          return report;
        } catch (error) {
          const report = {
            server: m.config.name,
            ok: false,
            error: describeError(error),
            ms: this.now() - started,
          };
          this.options.log.error({ server: m.config.name, err: error }, "server did not start");
          this.emit("started", report);
          return report;
        }
      }),
    );
  }

  private async connect(m: Member): Promise<void> {
    try {
      await m.connection.start();
      if (m.integration.prepare) {
        const signal = AbortSignal.timeout(m.config.timeout * 1000 * 2);
        try {
          await m.integration.prepare(this.callToolFor(m), signal);
        } catch (error) {
          await m.connection.close();
          m.connection.lastError = `setup failed: ${describeError(error)}`;
          throw new ServerUnavailableError(m.config.name, m.connection.lastError, { cause: error });
        }
      }
      m.startFailures = 0;
      m.nextStartAt = 0;
    } catch (error) {
      m.startFailures += 1;
      m.nextStartAt = this.now() + Math.min(1000 * 2 ** (m.startFailures - 1), maxRestartDelayMs);
      throw error;
    }
  }

  /** Whether the dispatcher should call this server now, and if not, why and until when. */
  availability(server: ServerName): Availability {
    const m = this.member(server);
    const state = m.policy.breaker.state;
    if (state === CircuitState.Open || state === CircuitState.Isolated) {
      return {
        ok: false,
        reason: `circuit open after repeated failures${m.connection.lastError ? ` (${m.connection.lastError})` : ""}`,
        retryAt: (m.openedAt ?? this.now()) + this.options.halfOpenAfterMs,
      };
    }
    if (!m.connection.connected && this.now() < m.nextStartAt) {
      return {
        ok: false,
        reason: `server unavailable: ${m.connection.lastError ?? "not connected"}`,
        retryAt: m.nextStartAt,
      };
    }
    return { ok: true };
  }

  breakerState(server: ServerName): BreakerState {
    return stateName(this.member(server).policy.breaker.state);
  }

  connected(server: ServerName): boolean {
    return this.member(server).connection.connected;
  }

  /** The server's process id while it is connected. */
  pid(server: ServerName): number | undefined {
    const c = this.member(server).connection;
    return c.connected ? c.pid : undefined;
  }

  lastError(server: ServerName): string | undefined {
    return this.member(server).connection.lastError;
  }

  /**
   * Runs `fn` under the server's policy: each attempt gets its own timeout-bound signal
   * and a `call` that goes through the server's queue.
   */
  async execute<T>(
    server: ServerName,
    fn: (ctx: AttemptContext) => Promise<T>,
    signal: AbortSignal,
  ): Promise<T> {
    const m = this.member(server);
    let attempt = 0;
    return m.policy.policy.execute(async ({ signal: attemptSignal }) => {
      attempt += 1;
      await this.ensureConnected(m);
      try {
        return await fn({ call: this.callToolFor(m), signal: attemptSignal, attempt });
      } catch (error) {
        // The attempt's own timeout fired (not shutdown): say so, so it is retried.
        if (attemptSignal.aborted && !signal.aborted) {
          throw new CallTimeoutError(server, m.config.timeout * 1000, { cause: error });
        }
        throw error;
      }
    }, signal);
  }

  /** Restarts a server whose process is gone, at most as often as its backoff allows. */
  private async ensureConnected(m: Member): Promise<void> {
    if (m.connection.connected) return;
    const name = m.config.name;
    if (this.closed) throw new ServerDownError(name, "shutting down");
    if (this.now() < m.nextStartAt)
      throw new ServerDownError(name, m.connection.lastError ?? "not connected");
    try {
      await m.connection.close();
      await this.connect(m);
      this.options.log.info({ server: name }, "server restarted");
    } catch (error) {
      throw new ServerDownError(name, describeError(error), { cause: error });
    }
  }

  private callToolFor(m: Member): CallTool {
    const timeoutMs = m.config.timeout * 1000;
    return (name, args, signal) =>
      m.queue.execute(async () => {
        const result = await m.connection.callTool(name, args, signal, timeoutMs);
        if (result.isError)
          throw new ToolFailedError(m.config.name, name, textOf(result).slice(0, 500) || "isError");
        return result;
      }, signal);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.members.values()].map((m) => m.connection.close()));
  }

  private member(server: ServerName): Member {
    const m = this.members.get(server);
    if (!m) throw new Error(`${server} is not in the fleet`);
    return m;
  }
}

function stateName(state: CircuitState): BreakerState {
  switch (state) {
    case CircuitState.Open:
      return "open";
    case CircuitState.HalfOpen:
      return "half-open";
    case CircuitState.Isolated:
      return "isolated";
    default:
      return "closed";
  }
}
