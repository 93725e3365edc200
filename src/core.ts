import { mkdirSync } from "node:fs";
import { hostname } from "node:os";
import path from "node:path";
import { defaultDataFolders } from "./config/default.js";
import type { Config, ServerName } from "./config/schema.js";
import { Fleet } from "./fleet/fleet.js";
import { startRadicale, type Radicale } from "./fleet/radicale.js";
import { createIntegration } from "./integrations/index.js";
import type { Integration } from "./integrations/integration.js";
import type { Logger } from "./log.js";
import { wireAlerts } from "./monitoring/alert-rules.js";
import { HealthMonitor, type ServerHealth } from "./monitoring/health-monitor.js";
import { createMetrics, type Metrics } from "./monitoring/metrics.js";
import { snapshotOf, startSnapshots, writeSnapshot } from "./monitoring/snapshot.js";
import { collectStats, type Stats } from "./monitoring/stats.js";
import { Maintenance } from "./orchestrator/maintenance.js";
import { Orchestrator } from "./orchestrator/orchestrator.js";
import { databasePath, openStore } from "./store/open-store.js";
import type { RouteState, Store } from "./store/store.js";
import { watchStore } from "./monitoring/store-watch.js";
import { Singletons } from "./cluster/singletons.js";
import { SharedHealth } from "./cluster/shared-health.js";
import { Membership, type InstanceView } from "./cluster/membership.js";
import { taskfanVersion } from "./banner.js";

export interface Core {
  config: Config;
  store: Store;
  fleet: Fleet;
  orchestrator: Orchestrator;
  health: HealthMonitor;
  maintenance: Maintenance;
  metrics: Metrics;
  /** This process among the instances sharing the store (INSTANCE_ID, or host and pid). */
  instance: string;
  /** Work one instance at a time runs (the Telegram poller, alert delivery). */
  singletons: Singletons;
  /** The instances sharing the store (this one first), with the singletons each holds. */
  instances(): Promise<InstanceView[]>;
  /** Which instance's probes rated the servers `getHealth` shows. */
  ratedBy(): string;
  started: Awaited<ReturnType<Fleet["start"]>>;
  /** The numbers behind /stats. */
  getStats(): Promise<Stats>;
  /**
   * The latest health of every server (as of the last probe and live facts), as the group
   * sees it: the instance holding the health monitor probes, the others read its ratings.
   */
  getHealth(): ServerHealth[];
  /** Probes every server now (on the instance holding the health monitor; elsewhere, reads). */
  checkHealth(): Promise<ServerHealth[]>;
  /**
   * Where each configured alert route stands (retries due, refusals, its last error); empty
   * without routes, and while the store does not answer.
   */
  routes(): Promise<RouteView[]>;
  /** Writes logs/monitoring_metrics.json now (it is also written every health check interval). */
  writeSnapshot(): Promise<string>;
  /**
   * Stops taking work, lets in-flight calls finish up to `deadlineMs`, returns the rest to
   * pending, stops every server process and closes the database.
   */
  close(deadlineMs?: number): Promise<void>;
}

export { databasePath };

/** An alert route as /health, the API and the status page show it. */
export type RouteView = RouteState & { kind: string };

/**
 * How often an instance tries to take the singleton locks it lacks: the longest a group
 * goes without a Telegram poller or alert delivery after the holder's session ended.
 */
export const singletonRetryMs = 2000;

/**
 * How often an instance renews its row; how old a heartbeat is before the instance counts
 * as hung (its database sessions are ended, so its singletons move as if it had died); and
 * before its row goes.
 */
export const heartbeatMs = 1000;
export const hungAfterMs = 6000;
export const staleAfterMs = 30_000;

/**
 * The composition root, the one place that wires real parts: config -> store -> fleet ->
 * orchestrator -> health, maintenance, alerts, metrics. The CLI, the bench and the tests
 * build the core through it; the HTTP server and the chat take the Core it returns.
 */
export interface CoreOptions {
  /** A store opened by the caller (several cores on one database); the core does not close it. */
  store?: Store;
  /** The clock of the store and the orchestrator (tests move it to expire leases). */
  now?: () => number;
  /** The dispatcher's lease owner name (unique per process by default). */
  owner?: string;
  /** false: build everything but take no work until `core.orchestrator.start()`. */
  dispatch?: boolean;
  /** This instance's name (default: INSTANCE_ID, else host and pid). */
  instance?: string;
}

export async function startCore(config: Config, log: Logger, options: CoreOptions = {}): Promise<Core> {
  const enabled = Object.values(config.servers).filter((s) => s.enabled);
  // Build integrations first: a bad `settings` is a config error, raised before anything starts.
  const integrations = new Map<ServerName, Integration>(enabled.map((s) => [s.name, createIntegration(s)]));
  for (const dir of defaultDataFolders(config.data_dir)) mkdirSync(dir, { recursive: true });
  const instance = options.instance ?? (process.env.INSTANCE_ID || `${hostname()}-${process.pid}`);
  const fleet = new Fleet({
    servers: enabled,
    integrations,
    breakerThreshold: config.circuit_breaker_threshold,
    halfOpenAfterMs: config.circuit_breaker_half_open_after * 1000,
    sampleWindow: config.health.window,
    runDir: path.join(config.data_dir, "run"),
    restart: {
      maxDelayMs: config.restart.max_delay * 1000,
      crashLoopRestarts: config.restart.crash_loop_restarts,
      crashLoopWindowMs: config.restart.crash_loop_window * 1000,
      stableAfterMs: config.restart.stable_after * 1000,
    },
    log,
  });
  const startedAt = Date.now();
  // The store (its migrations, its first connection) opens while the servers start: neither
  // needs the other until the orchestrator is built. Whichever fails, the other is closed.
  const opening = options.store ? Promise.resolve(options.store) : openStore(config, options.now, instance);
  const starting = (async () => {
    const radicale = await startCalendarBackend(config, log);
    try {
      return { radicale, started: await fleet.start() };
    } catch (error) {
      await fleet.close();
      await radicale?.close();
      throw error;
    }
  })();
  const [opened, fleetUp] = await Promise.allSettled([opening, starting]);
  if (opened.status === "rejected" || fleetUp.status === "rejected") {
    if (fleetUp.status === "fulfilled") {
      await fleet.close();
      await fleetUp.value.radicale?.close();
    }
    if (opened.status === "fulfilled" && !options.store) await opened.value.close();
    throw opened.status === "rejected" ? opened.reason : (fleetUp as PromiseRejectedResult).reason;
  }
  const store: Store = opened.value;
  const { radicale, started } = fleetUp.value;
  const closeStore = () => (options.store ? Promise.resolve() : store.close());
  const storeWatch = watchStore(store, log);
  const orchestrator = new Orchestrator({
    store,
    fleet,
    config,
    log,
    ...(options.owner ? { owner: options.owner } : {}),
    ...(options.now ? { now: options.now } : {}),
  });
  const health = new HealthMonitor(fleet, config, log);
  const maintenance = new Maintenance({
    store,
    fleet,
    orchestrator,
    health,
    config,
    log,
    ...(options.now ? { now: options.now } : {}),
  });
  wireAlerts({
    fleet,
    health,
    orchestrator,
    alerts: store.alerts,
    storeHealth: store.health,
    log,
    // A store several instances may share: each alert says which one saw it.
    instance: store.locks ? instance : undefined,
  });
  // Ratings every instance shows: those of the instance holding the health monitor.
  const shared = new SharedHealth(health, store.cluster, instance, store.health, log, singletonRetryMs);
  const singletons = new Singletons(store.locks, log, {
    retryMs: singletonRetryMs,
    instance,
    // Called once singletons start, after `membership` is set.
    changed: () => void membership.beat(),
  });
  const membership = new Membership(
    store.cluster,
    { id: instance, version: taskfanVersion(), startedAt },
    () => singletons.held(),
    store.health,
    log,
    {
      beatMs: heartbeatMs,
      staleAfterMs,
      hungAfterMs,
      // A hung holder's locks are free: take them now.
      replaced: () => singletons.tryNow(),
    },
  );
  const metrics = createMetrics({
    store,
    fleet,
    orchestrator,
    health: shared,
    group: { instances: () => membership.list(), held: () => singletons.held() },
  });
  if (options.dispatch !== false) await orchestrator.start();
  const getStats = () => collectStats({ store, fleet, health: shared, startedAt });
  // Health probes, and the recovery, sync and drift repair they drive: once in a group.
  singletons.add("health-monitor", () => {
    const follow = shared.lead();
    maintenance.start();
    return Promise.resolve(async () => {
      await maintenance.stop();
      await follow();
    });
  });
  // logs/monitoring_metrics.json, as the original system wrote it.
  if (config.monitoring_enabled) {
    singletons.add("metrics-snapshot", () => {
      const snapshots = startSnapshots(
        config.logs_dir,
        config.health_check_interval * 1000,
        async () => ({ stats: await getStats(), health: shared.snapshot() }),
        store.health,
        log,
      );
      return Promise.resolve(() => Promise.resolve(snapshots.stop()));
    });
  }
  if (store.migrated?.length) log.info({ versions: store.migrated }, "migrated the database");
  await shared.start();
  await singletons.start();
  await membership.start();
  let closing: Promise<void> | undefined;
  return {
    config,
    store,
    fleet,
    orchestrator,
    health,
    maintenance,
    metrics,
    instance,
    singletons,
    instances: () => membership.list(),
    ratedBy: () => shared.ratedBy(),
    started,
    getStats,
    async routes() {
      const kinds = new Map(config.alerts.routes.map((r) => [r.name, r.kind]));
      if (kinds.size === 0) return [];
      const states = await store.alertRoutes.summary().catch(() => []);
      return states.flatMap((r) => (kinds.has(r.route) ? [{ ...r, kind: kinds.get(r.route)! }] : []));
    },
    writeSnapshot: async () =>
      writeSnapshot(config.logs_dir, snapshotOf(await getStats(), shared.snapshot())),
    getHealth: () => shared.snapshot(),
    checkHealth: () => shared.check(),
    close(deadlineMs = 10_000) {
      closing ??= (async () => {
        // Stop taking work first, then the loops that would wake it.
        await singletons.stop();
        await membership.stop();
        await shared.stop();
        await orchestrator.stop(deadlineMs);
        await health.stop();
        await fleet.close();
        storeWatch.stop();
        await closeStore();
        await radicale?.close();
      })();
      return closing;
    },
  };
}

/** Starts Radicale first when the calendar is caldav-mcp on a server taskfan runs itself. */
async function startCalendarBackend(config: Config, log: Logger): Promise<Radicale | undefined> {
  const calendar = config.servers.calendar;
  const caldav = calendar.settings.caldav as
    { radicale: boolean; port: number; username: string; radicale_command?: string } | undefined;
  if (!calendar.enabled || !caldav?.radicale) return undefined;
  return startRadicale({
    dir: path.join(config.data_dir, "radicale"),
    port: caldav.port,
    calendarPath: String(calendar.settings.calendar_url),
    username: caldav.username,
    password: calendar.env.CALDAV_PASSWORD ?? "taskfan",
    ...(caldav.radicale_command ? { command: caldav.radicale_command } : {}),
    log,
  });
}
