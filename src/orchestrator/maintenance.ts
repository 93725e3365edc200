import type { Config, ServerName } from "../config/schema.js";
import { describeError } from "../errors.js";
import type { Fleet } from "../fleet/fleet.js";
import type { Logger } from "../log.js";
import type { HealthMonitor } from "../monitoring/health-monitor.js";
import { oneAtATime } from "../one-at-a-time.js";
import { StoreRetry, storeFault } from "../store/store-health.js";
import type { Store } from "../store/store.js";
import type { Task, TaskFields } from "../domain/task.js";
import type { Orchestrator, TaskChangeInput } from "./orchestrator.js";

/** How often recovery folds the count tables (PostgreSQL), at most. */
const compactEvery = 10_000;

export interface SyncReport {
  checked: number;
  repaired: number;
  errors: number;
  /** Tasks finished or reopened on a server behind taskfan's back, now changed everywhere. */
  changesFound: number;
  /** Records not read back because their server's change feed said they had not changed. */
  unchangedByFeed: number;
}

/**
 * The background work that keeps promises: recovery re-drives failed operations once their
 * server is healthy, old ones are given up (and rolled back if required), and sync reads
 * recent tasks back from every server, re-creating what drifted away.
 */
export class Maintenance {
  private timers: NodeJS.Timeout[] = [];
  /** Until started (and again once stopped) it does nothing, even when health changes. */
  private stopped = true;
  private lastGiveUp = 0;
  private lastCompact = 0;
  /** Each server's change feed cursor, where it has a feed (memory keeper's context_watch). */
  private readonly feeds = new Map<ServerName, string>();
  /** A store that does not answer: each loop logs once, backs off and tries again. */
  private readonly retries: { recovery: StoreRetry; sync: StoreRetry };

  constructor(
    private readonly deps: {
      store: Store;
      fleet: Fleet;
      orchestrator: Orchestrator;
      health: HealthMonitor;
      config: Config;
      log: Logger;
      now?: () => number;
    },
  ) {
    const { fleet, health } = deps;
    const retry = (what: string) =>
      new StoreRetry(what, deps.store.health, deps.log, deps.now ? { now: deps.now } : {});
    this.retries = { recovery: retry("recovery"), sync: retry("sync") };
    health.on("status", ({ status }) => {
      if (status !== "ERROR") void this.recover();
    });
    fleet.on("breaker", ({ state }) => {
      if (state === "closed") void this.recover();
    });
    // A new process or session: what waited for it goes now, not at the time it was parked for.
    fleet.on("restarted", () => void this.recover());
  }

  private get now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Runs recovery and sync on their timers; may start again after a stop. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const { config } = this.deps;
    const recovery = setInterval(
      () => void this.recover(),
      Math.max(config.dispatcher.poll_interval, 1) * 1000,
    );
    const sync = setInterval(() => void this.sync(), config.sync_interval * 1000);
    recovery.unref();
    sync.unref();
    this.timers.push(recovery, sync);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.syncOnce.settled();
    await this.recoverOnce.settled();
  }

  /** Callable now (breaker, restart backoff) and not rated ERROR by the health monitor. */
  private healthy(server: ServerName): boolean {
    return this.deps.fleet.availability(server).ok && this.deps.health.status(server) !== "ERROR";
  }

  /**
   * Re-drives what failed on healthy servers; gives up on what is too old. A store that does
   * not answer skips the run (logged once, backed off); returns how many tasks it touched.
   */
  async recover(): Promise<number> {
    if (this.stopped) return 0;
    return (await this.recoverOnce()) ?? 0;
  }

  /** One recovery run at a time: a call while one runs shares it. */
  private readonly recoverOnce = oneAtATime(() => this.retries.recovery.run(() => this.recoverNow()));

  private async recoverNow(): Promise<number> {
    const { store, fleet, orchestrator, config } = this.deps;
    // The count tables' appended rows, folded: /stats reads a few rows, however busy the store.
    if (store.compactCounts && this.now - this.lastCompact >= compactEvery) {
      this.lastCompact = this.now;
      await store.compactCounts();
    }
    const touched = new Set<string>(
      await store.operations.recover(fleet.names.filter((s) => this.healthy(s))),
    );
    // Giving up is about age (a day by default): looked at a tenth as often, at most once a minute.
    const giveUpEvery = Math.min(60_000, config.recovery.give_up_after * 100);
    let gaveUp: string[] = [];
    if (this.now - this.lastGiveUp >= giveUpEvery) {
      this.lastGiveUp = this.now;
      const hours = Math.round((config.recovery.give_up_after / 3600) * 10) / 10;
      gaveUp = await store.operations.giveUp(
        this.now - config.recovery.give_up_after * 1000,
        `gave up after ${hours} h: `,
      );
    }
    for (const taskId of gaveUp) {
      await orchestrator.rollbackIfRequiredFailed(taskId);
      touched.add(taskId);
    }
    for (const taskId of touched) await orchestrator.refreshTask(taskId);
    if (touched.size > 0) orchestrator.wake();
    return touched.size;
  }

  /** One sync run (one at a time): re-drive, then read back a bounded batch per server. */
  sync(): Promise<SyncReport> {
    return this.syncOnce();
  }

  private readonly syncOnce = oneAtATime(async () => {
    const report = await this.retries.sync.run(() => this.runSync());
    return report ?? { checked: 0, repaired: 0, errors: 0, changesFound: 0, unchangedByFeed: 0 };
  });

  private async runSync(): Promise<SyncReport> {
    const { store, fleet, orchestrator, config, log } = this.deps;
    await this.recover();
    const report: SyncReport = { checked: 0, repaired: 0, errors: 0, changesFound: 0, unchangedByFeed: 0 };
    // Fields a server holds otherwise than taskfan: task, field, then each server's value.
    const edited = new Map<string, Map<keyof TaskFields, Array<{ server: ServerName; value: FieldValue }>>>();
    for (const server of fleet.names) {
      if (this.stopped) break;
      if (!this.healthy(server)) continue;
      const integration = fleet.integration(server);
      const missing: Array<{ id: number; taskId: string; remoteId: string | null }> = [];
      const changed = await this.changedOn(server);
      for (const op of await store.operations.recentDone(server, config.sync_batch_size)) {
        if (this.stopped) break;
        if (changed !== "all" && op.remoteId !== null && !changed.has(op.remoteId)) {
          report.unchangedByFeed += 1;
          continue;
        }
        const task = await store.tasks.get(op.taskId);
        if (!task) continue;
        try {
          const found = await fleet.execute(
            server,
            ({ call, signal }) => integration.verify(task, op.remoteId, call, signal),
            AbortSignal.timeout(fleet.config(server).timeout * 1000 * 2),
          );
          report.checked += 1;
          if (found.found) {
            if (found.state && (await this.changedThere(server, op.taskId, found.state)))
              report.changesFound += 1;
            else
              for (const [field, value] of fieldsChanged(task, found.fields ?? {})) {
                const byField = edited.get(op.taskId) ?? new Map();
                edited.set(op.taskId, byField);
                byField.set(field, [...(byField.get(field) ?? []), { server, value }]);
              }
            continue;
          }
          missing.push(op);
        } catch (error) {
          // The store's trouble is the whole run's (logged once, backed off), not this server's.
          if (storeFault(error)) throw error;
          report.errors += 1;
          log.warn(
            { server, err: error, reason: describeError(error) },
            "sync read-back failed; next server",
          );
          break; // one failing server gets no more calls this run
        }
      }
      // A few records gone: deleted there by a person, so the task is deleted everywhere. Many
      // at once: the server lost its data, and they are made again.
      const follow = missing.length <= config.sync_deletes;
      if (!follow && config.sync_deletes > 0)
        log.warn(
          { server, missing: missing.length, limit: config.sync_deletes },
          "many records gone from a server at once: taken for data loss, re-creating them",
        );
      for (const op of missing) {
        if (this.stopped) break;
        if (follow) {
          if (await this.changedThere(server, op.taskId, "deleted")) report.changesFound += 1;
        } else if (await store.operations.requeueForRepair(op.id)) {
          await store.events.append(
            "operation.drift",
            { taskId: op.taskId, operationId: op.id },
            { server, remoteId: op.remoteId },
          );
          report.repaired += 1;
          log.warn(
            { server, taskId: op.taskId, remoteId: op.remoteId },
            "record missing on its server; re-creating it",
          );
          await orchestrator.refreshTask(op.taskId);
        }
      }
    }
    // Fields changed on servers, once every server was read: field by field, the first
    // server in the role order that changed it wins, and the winners go as one change (a
    // change from one server alone would overwrite another's field everywhere). Another
    // server's other value for a field since the last sync is a conflict, shown to the owner.
    for (const [taskId, byField] of edited) {
      if (this.stopped) break;
      const fields: Partial<Record<keyof TaskFields, FieldValue>> = {};
      const servers = new Set<ServerName>();
      const conflicts: Array<{ field: keyof TaskFields; kept: Seen; lost: Seen[] }> = [];
      for (const [field, [winner, ...others]] of byField) {
        if (!winner) continue;
        fields[field] = winner.value;
        servers.add(winner.server);
        const lost = others.filter((o) => !sameValue(field, o.value, winner.value));
        if (lost.length > 0) conflicts.push({ field, kept: winner, lost });
      }
      if (!(await this.changedThere([...servers], taskId, { fields: fields as Partial<TaskFields> })))
        continue;
      report.changesFound += 1;
      for (const c of conflicts) {
        log.info({ taskId, ...c }, "two servers changed one field: the first kept");
        orchestrator.emit("task.conflict", { taskId, ...c });
      }
    }
    if (report.repaired > 0) orchestrator.wake();
    return report;
  }

  /**
   * The records of a server with a change feed that changed since the last sync ("all": read
   * every one, for a server without a feed, a new feed, or a feed that did not answer).
   */
  private async changedOn(server: ServerName): Promise<ReadonlySet<string> | "all"> {
    const { fleet, log } = this.deps;
    const integration = fleet.integration(server);
    if (!integration.changes) return "all";
    const cursor = this.feeds.get(server) ?? null;
    this.feeds.delete(server);
    try {
      const page = await fleet.execute(
        server,
        ({ call, signal, tools }) => integration.changes!(cursor, call, signal, (t) => tools.has(t)),
        AbortSignal.timeout(fleet.config(server).timeout * 1000 * 2),
      );
      if (!page) return "all";
      this.feeds.set(server, page.cursor);
      return page.changed;
    } catch (error) {
      if (storeFault(error)) throw error;
      log.info({ server, reason: describeError(error) }, "change feed did not answer; reading every record");
      return "all";
    }
  }

  /**
   * A server holds the task as done while taskfan has it open, or the other way round: it
   * was finished (or reopened) there; its record is gone (deleted there), or holds other
   * fields (edited there). That becomes a change of the task, sent to the other servers and
   * told to its chat, when every server it was read from is known to hold taskfan's own
   * latest state (its last operation of the task is done, none is in flight anywhere):
   * taskfan's own change on its way, or one that failed there, is never read back as a new one.
   */
  private async changedThere(
    from: ServerName | ServerName[],
    taskId: string,
    found: "open" | "done" | "deleted" | { fields: Partial<TaskFields> },
  ): Promise<boolean> {
    const { orchestrator, log } = this.deps;
    const servers = Array.isArray(from) ? from : [from];
    const view = await orchestrator.getTask(taskId);
    if (!view || view.task.state === "deleted") return false;
    if (typeof found === "string" && view.task.state === found) return false;
    if (view.task.status === "rolled_back") return false;
    const ops = view.operations.filter((o) => o.kind !== "compensate");
    if (ops.some((o) => o.status === "pending" || o.status === "running")) return false;
    if (servers.some((s) => ops.filter((o) => o.server === s).at(-1)?.status !== "done")) return false;
    const input: TaskChangeInput =
      typeof found === "object"
        ? { kind: "update", fields: found.fields }
        : { kind: found === "done" ? "complete" : found === "deleted" ? "delete" : "reopen" };
    const kind = input.kind;
    const server = servers.join(",");
    try {
      const result = await orchestrator.changeTask(taskId, input, { source: `sync:${server}` });
      if (result.changed) log.info({ server, taskId, kind }, "change found on a server; sent to the others");
      return result.changed;
    } catch (error) {
      if (storeFault(error)) throw error;
      // The task moved on meanwhile (changed, deleted), or the value is not one taskfan
      // takes (a deadline moved into the past): the next sync looks again.
      log.info({ server, taskId, reason: describeError(error) }, "change found on a server not taken");
      return false;
    }
  }
}

type FieldValue = TaskFields[keyof TaskFields];
type Seen = { server: ServerName; value: FieldValue };

/** Whether two values of a field are the same: a deadline to the second, tags as a set. */
function sameValue(field: keyof TaskFields, a: FieldValue, b: FieldValue): boolean {
  if (field === "deadline") {
    const seconds = (v: FieldValue) => (typeof v === "string" ? Math.floor(Date.parse(v) / 1000) : null);
    return seconds(a) === seconds(b);
  }
  if (field === "tags" && Array.isArray(a) && Array.isArray(b))
    return JSON.stringify([...new Set(a)].sort()) === JSON.stringify([...new Set(b)].sort());
  return a === b;
}

/** The fields a server holds otherwise than the task, with the server's values. */
function fieldsChanged(task: Task, fields: Partial<TaskFields>): Array<[keyof TaskFields, FieldValue]> {
  return (Object.entries(fields) as Array<[keyof TaskFields, FieldValue]>).filter(
    ([field, value]) => value !== undefined && !sameValue(field, value, task[field]),
  );
}
