import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { ServerName } from "../config/schema.js";
import type { BreakerState, Fleet } from "../fleet/fleet.js";
import type { Orchestrator } from "../orchestrator/orchestrator.js";
import type { Store } from "../store/store.js";
import type { HealthMonitor } from "./health-monitor.js";

const breakerValue: Record<BreakerState, number> = { closed: 0, "half-open": 1, open: 2, isolated: 2 };
const healthValue = { ONLINE: 0, DEGRADED: 1, ERROR: 2 } as const;

export interface Metrics {
  registry: Registry;
  /** A delivery to the alert chat (`route` "telegram", the default) or to a route by name. */
  alertSent(route?: string): void;
  alertFailed(route?: string): void;
  telegramError(code: number | string): void;
  /** A reminder sent to its chat (`late`: after every instance was down at its time). */
  reminderFired(late: boolean): void;
  reminderSnoozed(): void;
}

/** Prometheus metrics, fed by the core's events and read from its state at scrape time. */
export function createMetrics(deps: {
  store: Store;
  fleet: Fleet;
  orchestrator: Orchestrator;
  health: Pick<HealthMonitor, "snapshot">;
  /** The instances sharing the store, and the singletons this one holds. */
  group: { instances(): Promise<unknown[]>; held(): string[] };
}): Metrics {
  const { store, fleet, orchestrator, health, group } = deps;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "taskfan_" });
  const registers = [registry];
  const operations = new Counter({
    name: "taskfan_operations_total",
    help: "Operation attempts that ended, by server and outcome (done, failed, waiting).",
    labelNames: ["server", "outcome"],
    registers,
  });
  const duration = new Histogram({
    name: "taskfan_operation_duration_seconds",
    help: "Time from an operation's start to its outcome, retries included.",
    labelNames: ["server"],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const retries = new Counter({
    name: "taskfan_retries_total",
    help: "Retries after transient errors.",
    labelNames: ["server"],
    registers,
  });
  new Gauge({
    name: "taskfan_breaker_state",
    help: "Circuit breaker per server: 0 closed, 1 half-open, 2 open.",
    labelNames: ["server"],
    registers,
    collect() {
      for (const s of fleet.names) this.set({ server: s }, breakerValue[fleet.breakerState(s)]);
    },
  });
  new Gauge({
    name: "taskfan_server_health",
    help: "Health per server: 0 ONLINE, 1 DEGRADED, 2 ERROR.",
    labelNames: ["server"],
    registers,
    collect() {
      for (const h of health.snapshot()) this.set({ server: h.server }, healthValue[h.status]);
    },
  });
  new Gauge({
    name: "taskfan_instances",
    help: "Instances sharing the store (this one included) with a live heartbeat.",
    registers,
    async collect() {
      this.set((await group.instances()).length);
    },
  });
  new Gauge({
    name: "taskfan_singleton_held",
    help: "1 for each singleton (Telegram poller, alert delivery, health monitor, ...) this instance holds.",
    labelNames: ["singleton"],
    registers,
    collect() {
      this.reset();
      for (const singleton of group.held()) this.set({ singleton }, 1);
    },
  });
  new Gauge({
    name: "taskfan_queue_size",
    help: "Operations pending or running.",
    registers,
    async collect() {
      this.set(await store.operations.queueSize());
    },
  });
  new Gauge({
    name: "taskfan_tasks",
    help: "Tasks by status.",
    labelNames: ["status"],
    registers,
    async collect() {
      const counts = await store.tasks.countByStatus();
      this.reset();
      for (const [status, n] of Object.entries(counts)) this.set({ status }, n ?? 0);
    },
  });
  new Counter({
    name: "taskfan_store_commits_total",
    help: "Store transactions by durability: full (synced to disk) or relaxed (no fsync).",
    labelNames: ["durability"],
    registers,
    collect() {
      this.reset();
      for (const durability of ["full", "relaxed"] as const)
        this.inc({ durability }, store.commits[durability]);
    },
  });
  const alerts = new Counter({
    name: "taskfan_alerts_total",
    help: "Alert deliveries by result and route (telegram: the alert chat).",
    labelNames: ["result", "route"],
    registers,
  });
  const changes = new Counter({
    name: "taskfan_task_changes_total",
    help: "Changes of tasks accepted, by kind (update, complete, reopen, delete) and source (chat, api, cli, sync).",
    labelNames: ["kind", "source"],
    registers,
  });
  const changeOperations = new Counter({
    name: "taskfan_change_operations_total",
    help: "Changes run on a server, by server, kind and outcome (done, skipped, failed).",
    labelNames: ["server", "kind", "outcome"],
    registers,
  });
  const found = new Counter({
    name: "taskfan_changes_found_total",
    help: "Changes made on a server behind taskfan's back that sync found, by server.",
    labelNames: ["server"],
    registers,
  });
  const telegram = new Counter({
    name: "taskfan_telegram_errors_total",
    help: "Bot API errors by code.",
    labelNames: ["code"],
    registers,
  });

  const reminders = new Counter({
    name: "taskfan_reminders_total",
    help: "Reminders sent (fired, of which late) and snoozed.",
    labelNames: ["event"],
    registers,
  });

  orchestrator.on("operation.done", (e) => {
    operations.inc({ server: e.server, outcome: "done" });
    if (e.ms !== undefined) duration.observe({ server: e.server }, e.ms / 1000);
  });
  orchestrator.on("operation.failed", (e) => {
    operations.inc({ server: e.server, outcome: "failed" });
    if (e.ms !== undefined) duration.observe({ server: e.server }, e.ms / 1000);
  });
  const isChange = (kind: string | undefined) =>
    kind !== undefined && kind !== "create" && kind !== "compensate";
  orchestrator.on("operation.done", (e) => {
    if (isChange(e.kind))
      changeOperations.inc({ server: e.server, kind: e.kind, outcome: e.skipped ? "skipped" : "done" });
  });
  orchestrator.on("operation.failed", (e) => {
    if (isChange(e.kind)) changeOperations.inc({ server: e.server, kind: e.kind, outcome: "failed" });
  });
  orchestrator.on("task.changed", (e) => {
    const [source, server] = e.source.split(":");
    changes.inc({ kind: e.kind, source: source ?? e.source });
    // A change found on several servers at once (fields from each) counts for each.
    if (source === "sync" && server) for (const s of server.split(",")) found.inc({ server: s });
  });
  const conflicts = new Counter({
    name: "taskfan_sync_conflicts_total",
    help: "Fields two servers changed differently since the last sync (one value kept, the other shown to the owner).",
    labelNames: ["field"],
    registers,
  });
  orchestrator.on("task.conflict", (e) => conflicts.inc({ field: e.field }, e.lost.length));
  orchestrator.on("operation.waiting", (e) => operations.inc({ server: e.server, outcome: "waiting" }));
  fleet.on("retry", (e: { server: ServerName }) => retries.inc({ server: e.server }));
  return {
    registry,
    alertSent: (route = "telegram") => alerts.inc({ result: "sent", route }),
    alertFailed: (route = "telegram") => alerts.inc({ result: "failed", route }),
    telegramError: (code) => telegram.inc({ code: String(code) }),
    reminderFired(late) {
      reminders.inc({ event: "fired" });
      if (late) reminders.inc({ event: "late" });
    },
    reminderSnoozed: () => reminders.inc({ event: "snoozed" }),
  };
}
