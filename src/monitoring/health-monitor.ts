import { EventEmitter } from "node:events";
import type { Config, ServerName } from "../config/schema.js";
import type { BreakerState, Fleet } from "../fleet/fleet.js";
import type { TransportKind } from "../fleet/transport.js";
import type { Logger } from "../log.js";
import { oneAtATime } from "../one-at-a-time.js";
import { rateHealth, type HealthStatus, type Rating } from "./health-rules.js";

export interface ServerHealth extends Rating {
  server: ServerName;
  /** How taskfan reaches it: a stdio child, Streamable HTTP, or HTTP+SSE. */
  transport: TransportKind;
  /** A hosted server's URL without credentials or query. */
  url?: string;
  breaker: BreakerState;
  lastResponseMs: number | undefined;
  lastError: string | undefined;
  restarts: number;
  checkedAt: number | undefined;
}

export interface HealthEvents {
  status: [{ server: ServerName; status: HealthStatus; previous: HealthStatus | undefined; reason: string }];
  /** Every server was probed. */
  checked: [ServerHealth[]];
}

/** Probes every server on a timer and on demand; rates each ONLINE, DEGRADED or ERROR. */
export class HealthMonitor extends EventEmitter<HealthEvents> {
  private readonly current = new Map<ServerName, ServerHealth>();
  private readonly lastProbe = new Map<ServerName, NonNullable<Parameters<typeof rateHealth>[0]["probe"]>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly fleet: Fleet,
    private readonly config: Config,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    super();
    // Between probes, what the fleet reports still moves the rating.
    const refresh = ({ server }: { server: ServerName }) => this.rate(server, undefined);
    fleet.on("breaker", refresh);
    fleet.on("exited", refresh);
    fleet.on("restarted", (e) => {
      this.lastProbe.delete(e.server);
      refresh(e);
    });
    fleet.on("crash-loop", refresh);
  }

  /** Probes now and every `health_check_interval` (again after `pause`). */
  start(): void {
    if (this.timer || this.stopped) return;
    const check = () =>
      void this.check().catch((error: unknown) => this.log.error({ err: error }, "health check failed"));
    check();
    this.timer = setInterval(check, this.config.health_check_interval * 1000);
    this.timer.unref();
  }

  /**
   * Stops probing on the timer (a probe in flight still ends); what the fleet reports
   * still moves the ratings (another instance probes for the group).
   */
  pause(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Stops probing and waits for a probe in flight; no status changes after this. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.pause();
    await this.probeAll.settled();
  }

  /** Probes every server now (one run at a time) and returns the ratings. */
  check(): Promise<ServerHealth[]> {
    return this.probeAll();
  }

  private readonly probeAll = oneAtATime(() => {
    const timeoutMs = this.config.health.probe_timeout * 1000;
    return Promise.all(
      this.fleet.names.map(async (server) => this.rate(server, await this.fleet.probe(server, timeoutMs))),
    ).then((ratings) => {
      if (!this.stopped) this.emit("checked", ratings);
      return ratings;
    });
  });

  /** The latest rating of every server (rated from live facts if never probed). */
  snapshot(): ServerHealth[] {
    return this.fleet.names.map((s) => this.current.get(s) ?? this.rate(s, undefined));
  }

  status(server: ServerName): HealthStatus | undefined {
    return this.current.get(server)?.status;
  }

  private rate(server: ServerName, probe: Parameters<typeof rateHealth>[0]["probe"]): ServerHealth {
    const previous = this.current.get(server);
    if (probe) this.lastProbe.set(server, probe);
    const samples = this.fleet.samples(server);
    const rating = rateHealth(
      {
        connected: this.fleet.connected(server),
        hosted: this.fleet.config(server).url !== undefined,
        crashLooping: this.fleet.crashLooping(server),
        breaker: this.fleet.breakerState(server),
        // Between probes, the last probe's verdict stands (a restart clears it).
        probe: this.lastProbe.get(server),
        samples,
        lastError: this.fleet.lastError(server),
      },
      {
        slowThresholdMs: this.config.health.slow_threshold_ms,
        errorRateThreshold: this.config.health.error_rate_threshold,
      },
    );
    const health: ServerHealth = {
      ...rating,
      server,
      ...this.fleet.reach(server),
      breaker: this.fleet.breakerState(server),
      lastResponseMs: samples.at(-1)?.ms,
      lastError: this.fleet.lastError(server),
      restarts: this.fleet.restarts(server),
      checkedAt: probe ? this.now() : previous?.checkedAt,
    };
    if (this.stopped) return health;
    this.current.set(server, health);
    if (previous?.status !== health.status) {
      this.log.info(
        { server, status: health.status, previous: previous?.status, reason: health.reason },
        "health changed",
      );
      this.emit("status", {
        server,
        status: health.status,
        previous: previous?.status,
        reason: health.reason,
      });
    }
    return health;
  }
}
