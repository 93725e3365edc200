import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { bulkhead, CircuitState, type BulkheadPolicy } from "cockatiel";
import { EventEmitter } from "node:events";
import type { ServerConfig, ServerName } from "../config/schema.js";
import {
  CallOverdueError,
  CallTimeoutError,
  ServerDownError,
  ServerUnavailableError,
  MalformedReplyError,
  ToolFailedError,
  UnauthorisedError,
  describeError,
} from "../errors.js";
import { textOf, type CallTool, type Integration } from "../integrations/integration.js";
import type { Logger } from "../log.js";
import { createServerPolicy, isServerFault, type ServerPolicy } from "./policy.js";
import { reapLeftovers, writePidFile } from "./pid-files.js";
import { ServerConnection } from "./server-connection.js";
import { shownUrl, type TransportKind } from "./transport.js";
import { defaultRestart, Supervisor, type RestartOptions } from "./supervisor.js";

export type { RestartOptions };

export type BreakerState = "closed" | "open" | "half-open" | "isolated";

export interface FleetEvents {
  breaker: [{ server: ServerName; state: BreakerState; error?: string | undefined }];
  retry: [{ server: ServerName; attempt: number; delayMs: number; error: string }];
  started: [{ server: ServerName; ok: boolean; error?: string | undefined; ms: number }];
  exited: [{ server: ServerName; reason: string; restartInMs: number | undefined }];
  restarted: [{ server: ServerName; restarts: number }];
  "crash-loop": [{ server: ServerName; restarts: number; windowMs: number; until: number }];
}

export interface AttemptContext {
  call: CallTool;
  signal: AbortSignal;
  /** 1 for the first attempt of this execution. */
  attempt: number;
  /** The tools the server offers (as it listed them when it connected). */
  tools: ReadonlySet<string>;
}

export type Availability = { ok: true } | { ok: false; reason: string; retryAt: number };

export interface FleetOptions {
  servers: readonly ServerConfig[];
  integrations: ReadonlyMap<ServerName, Integration>;
  breakerThreshold: number;
  halfOpenAfterMs: number;
  log: Logger;
  restart?: Partial<RestartOptions>;
  /** How many recent call outcomes each server keeps for health rating. */
  sampleWindow?: number;
  /** First retry delay; 1 s in production, shorter only where a test says so. */
  retryInitialDelayMs?: number;
  /** Where each server's pid is kept, so a run after a crash can reap what the dead one left. */
  runDir?: string;
  now?: () => number;
}

export interface Sample {
  ok: boolean;
  ms: number;
  at: number;
}

interface Member {
  config: ServerConfig;
  integration: Integration;
  connection: ServerConnection;
  policy: ServerPolicy;
  queue: BulkheadPolicy;
  log: Logger;
  openedAt: number | undefined;
  /** Restarts with backoff, and pauses them in a crash loop. */
  supervisor: Supervisor;
  samples: Sample[];
}

/** The MCP servers: spawned, connected, restarted, each behind its own policy. */
export class Fleet extends EventEmitter<FleetEvents> {
  private readonly members = new Map<ServerName, Member>();
  private readonly now: () => number;
  private readonly restart: RestartOptions;
  private readonly sampleWindow: number;
  private closed = false;

  constructor(private readonly options: FleetOptions) {
    super();
    this.now = options.now ?? Date.now;
    this.restart = { ...defaultRestart, ...options.restart };
    this.sampleWindow = options.sampleWindow ?? 20;
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
      const connection = new ServerConnection(config, integration.requiredTools, log, (reason) =>
        this.onExit(member, reason),
      );
      const supervisor = new Supervisor(
        {
          reconnect: async () => {
            await connection.close();
            await this.connect(member);
          },
          connected: () => connection.connected,
          startedAt: () => connection.startedAt,
          noteFailure: (reason) => connection.noteFailure(reason),
        },
        this.restart,
        {
          crashLoop: (e) => this.emit("crash-loop", { server: config.name, ...e }),
          restarted: (e) => this.emit("restarted", { server: config.name, ...e }),
        },
        log,
        this.now,
      );
      const member: Member = {
        config,
        integration,
        connection,
        policy,
        // Servers that rewrite one file per call get concurrency 1: a serial queue.
        queue: bulkhead(config.concurrency, Number.MAX_SAFE_INTEGER),
        log,
        openedAt: undefined,
        supervisor,
        samples: [],
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
    if (this.options.runDir) {
      const reaped = await reapLeftovers(this.options.runDir, [...this.members.keys()]);
      if (reaped.length > 0)
        this.options.log.warn({ pids: reaped }, "stopped server processes left by an earlier run");
    }
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
          m.log.error({ err: error }, "server did not start");
          this.emit("started", report);
          m.supervisor.schedule();
          return report;
        }
      }),
    );
  }

  private async connect(m: Member): Promise<void> {
    try {
      await m.connection.start();
      if (this.options.runDir && m.connection.pid !== undefined) {
        writePidFile(this.options.runDir, m.config.name, m.connection.pid);
      }
      if (m.integration.prepare) {
        const signal = AbortSignal.timeout(m.config.timeout * 1000 * 2);
        try {
          await m.integration.prepare(this.callToolFor(m, {}), signal);
        } catch (error) {
          await m.connection.close();
          const reason = `setup failed: ${describeError(error)}`;
          m.connection.noteFailure(reason);
          throw new ServerUnavailableError(m.config.name, reason, { cause: error });
        }
      }
      m.supervisor.started();
    } catch (error) {
      // Refused credentials do not heal by themselves: the slowest backoff, not a storm.
      m.supervisor.startFailed(error instanceof UnauthorisedError);
      throw error;
    }
  }

  /** The process went away on its own: its supervisor restarts it with backoff. */
  private onExit(m: Member, reason: string): void {
    if (this.closed) return;
    const delay = m.supervisor.exited();
    m.log.warn({ reason, restartInMs: delay }, "server exited; restarting");
    this.emit("exited", { server: m.config.name, reason, restartInMs: delay });
  }

  /** Whether the dispatcher should call this server now, and if not, why and until when. */
  availability(server: ServerName): Availability {
    const m = this.member(server);
    const t = this.now();
    const state = m.policy.breaker.state;
    if (state === CircuitState.Isolated) {
      return { ok: false, reason: "circuit held open by an operator", retryAt: t + 60_000 };
    }
    if (state === CircuitState.Open) {
      const retryAt = (m.openedAt ?? t) + this.options.halfOpenAfterMs;
      // Past the delay, one call may go through as the half-open probe.
      if (t < retryAt) {
        return {
          ok: false,
          reason: `circuit open after repeated failures${m.connection.lastError ? ` (${m.connection.lastError})` : ""}`,
          retryAt,
        };
      }
    }
    if (m.connection.rateLimitedUntil > t) {
      return {
        ok: false,
        reason: "rate limited by the server (HTTP 429)",
        retryAt: m.connection.rateLimitedUntil,
      };
    }
    if (!m.connection.connected && m.supervisor.blockedUntil > t) {
      return {
        ok: false,
        reason: `server unavailable: ${m.connection.lastError ?? "not connected"}`,
        retryAt: m.supervisor.blockedUntil,
      };
    }
    return { ok: true };
  }

  /** How the server is reached: its transport, and a hosted server's URL without secrets. */
  reach(server: ServerName): { transport: TransportKind; url?: string } {
    const m = this.member(server);
    const url = m.config.url;
    return { transport: m.connection.transportKind, ...(url ? { url: shownUrl(url) } : {}) };
  }

  breakerState(server: ServerName): BreakerState {
    return stateName(this.member(server).policy.breaker.state);
  }

  connected(server: ServerName): boolean {
    return this.member(server).connection.connected;
  }

  crashLooping(server: ServerName): boolean {
    return this.member(server).supervisor.crashLooping();
  }

  restarts(server: ServerName): number {
    return this.member(server).supervisor.totalRestarts;
  }

  /** The server's process id while it is connected. */
  pid(server: ServerName): number | undefined {
    const c = this.member(server).connection;
    return c.connected ? c.pid : undefined;
  }

  lastError(server: ServerName): string | undefined {
    return this.member(server).connection.lastError;
  }

  /** The recent call and probe outcomes of a server, oldest first. */
  samples(server: ServerName): readonly Sample[] {
    return this.member(server).samples;
  }

  private record(m: Member, ok: boolean, ms: number): void {
    m.samples.push({ ok, ms, at: this.now() });
    if (m.samples.length > this.sampleWindow) m.samples.splice(0, m.samples.length - this.sampleWindow);
  }

  /**
   * Runs `fn` under the server's policy: each attempt gets its own timeout-bound signal
   * and a `call` that goes through the server's queue; `beforeCall` runs as each call's
   * turn comes, right before it is sent, and may stop it by throwing.
   */
  async execute<T>(
    server: ServerName,
    fn: (ctx: AttemptContext) => Promise<T>,
    signal: AbortSignal,
    beforeCall?: () => void,
  ): Promise<T> {
    const m = this.member(server);
    const timeoutMs = m.config.timeout * 1000;
    let attempt = 0;
    return m.policy.policy.execute(async ({ signal: attemptSignal }) => {
      attempt += 1;
      // No call of this attempt starts past its timeout, even if its timer has not fired yet
      // (a process that was stopped runs its overdue timers late).
      const due = performance.now() + timeoutMs;
      await this.ensureConnected(m);
      const started = performance.now();
      try {
        const result = await fn({
          call: this.callToolFor(m, { due, beforeCall }),
          signal: attemptSignal,
          attempt,
          tools: m.connection.tools,
        });
        this.record(m, true, performance.now() - started);
        return result;
      } catch (error) {
        // The attempt's own timeout fired (not shutdown): say so, so it is retried.
        const failure =
          attemptSignal.aborted && !signal.aborted && !(error instanceof CallOverdueError)
            ? new CallTimeoutError(server, timeoutMs, { cause: error })
            : error;
        if (isServerFault(failure)) this.record(m, false, performance.now() - started);
        throw failure;
      }
    }, signal);
  }

  /**
   * The health probe: an MCP ping, then the integration's cheap read; past an open
   * breaker's delay it is the half-open probe call (a good one closes the circuit). A probe that times out means a
   * wedged process: it is killed and restarted.
   */
  async probe(
    server: ServerName,
    timeoutMs: number,
  ): Promise<{ ok: true; ms: number } | { ok: false; error: string }> {
    const m = this.member(server);
    if (!m.connection.connected) return { ok: false, error: m.connection.lastError ?? "not connected" };
    const started = performance.now();
    let timedOut = false;
    /** `timeoutMs` from now; noted when it runs out. */
    const clock = () => {
      const s = AbortSignal.timeout(timeoutMs);
      s.addEventListener("abort", () => (timedOut = true), { once: true });
      return s;
    };
    try {
      const probe = async () => {
        await m.connection.ping(clock(), timeoutMs);
        // The read waits its turn behind the dispatcher's calls: its clock starts when it is
        // sent, so a backlog of ours is not taken for a server that does not answer. The
        // wait itself is bounded by one call's timeout (a failed probe, not a wedged server).
        const turn = AbortSignal.timeout(m.config.timeout * 1000 + timeoutMs);
        await m.integration.probe(this.callToolFor(m, { turnClock: clock }), turn);
      };
      // A closed breaker counts the dispatcher's calls only; an open one lets the probe test the water.
      if (m.policy.breaker.state === CircuitState.Closed) await probe();
      else await m.policy.breaker.execute(probe);
      const ms = performance.now() - started;
      this.record(m, true, ms);
      return { ok: true, ms };
    } catch (error) {
      const wedged = timedOut;
      const message = wedged ? `no answer within ${timeoutMs} ms` : describeError(error);
      this.record(m, false, performance.now() - started);
      if (wedged && m.connection.connected && !this.closed) {
        m.log.warn({ timeoutMs }, "server does not answer; restarting it");
        m.connection.noteFailure(`wedged: ${message}`);
        await m.connection.close();
        this.onExit(m, `wedged: ${message}`);
      }
      return { ok: false, error: message };
    }
  }

  /**
   * Calls through the server's queue; `turnClock`: a deadline started when the call's turn
   * comes; `due` (performance.now() time): no call is sent after it; `beforeCall`: a last
   * check as the call's turn comes.
   */
  private callToolFor(
    m: Member,
    {
      turnClock,
      due = Infinity,
      beforeCall,
    }: { turnClock?: () => AbortSignal; due?: number; beforeCall?: (() => void) | undefined },
  ): CallTool {
    const timeoutMs = m.config.timeout * 1000;
    return (name, args, queued) =>
      m.queue.execute(async () => {
        if (performance.now() >= due) throw new CallOverdueError(m.config.name, timeoutMs);
        beforeCall?.();
        const signal = turnClock ? AbortSignal.any([queued, turnClock()]) : queued;
        const result = await m.connection.callTool(name, args, signal, timeoutMs).catch((error: unknown) => {
          // The SDK's check of a reply against the tool's own output schema: the server talks nonsense.
          if (error instanceof McpError && /output schema/i.test(error.message)) {
            throw new MalformedReplyError(
              m.config.name,
              name,
              error.message.replace(/^MCP error -?\d+: /, ""),
              { cause: error },
            );
          }
          throw error;
        });
        if (result.isError) {
          throw new ToolFailedError(m.config.name, name, textOf(result).slice(0, 500) || "isError");
        }
        return result;
      }, queued);
  }

  /** Restarts a server whose process is gone, at most as often as its backoff allows. */
  private async ensureConnected(m: Member): Promise<void> {
    if (m.connection.connected) return;
    const name = m.config.name;
    if (this.closed) throw new ServerDownError(name, "shutting down");
    try {
      const allowed = await m.supervisor.restartIfAllowed();
      if (!allowed) throw new ServerDownError(name, m.connection.lastError ?? "not connected");
      if (!m.connection.connected) throw new Error(m.connection.lastError ?? "not connected");
    } catch (error) {
      if (error instanceof ServerDownError) throw error;
      throw new ServerDownError(name, describeError(error), { cause: error });
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    // A restart under way finishes first, so the process it starts is closed too.
    await Promise.all([...this.members.values()].map((m) => m.supervisor.close()));
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
