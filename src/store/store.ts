import { createAlertStore } from "./alerts.js";
import { createBotStateStore } from "./bot-state.js";
import { createDispatcherStore } from "./dispatchers.js";
import { createEventStore } from "./events.js";
import { openDatabase, type Db } from "./open-database.js";
import type { TaskView } from "../domain/task.js";
import { asStoreError, StoreHealth } from "./store-health.js";
import { createOperationStore } from "./operations.js";
import { createTaskStore } from "./tasks.js";

export interface Store {
  db: Db;
  tasks: ReturnType<typeof createTaskStore>;
  operations: ReturnType<typeof createOperationStore>;
  events: ReturnType<typeof createEventStore>;
  alerts: ReturnType<typeof createAlertStore>;
  bot: ReturnType<typeof createBotStateStore>;
  dispatchers: ReturnType<typeof createDispatcherStore>;
  /** A task with its operations, as every reader shows it. */
  taskView(id: string): TaskView | undefined;
  /**
   * Runs `fn` in one IMMEDIATE transaction. "full" (the default) is on disk when this
   * returns. "relaxed" skips the fsync (synchronous=NORMAL): it survives a crash of this
   * process, and a power cut may lose it until the next full commit syncs the log. Only
   * for writes that are found again after such a loss (an outcome the next claim re-verifies).
   */
  transaction<T>(fn: () => T, durability?: "full" | "relaxed"): T;
  /** Transactions begun through `transaction` (not nested in another), by durability. */
  readonly commits: { full: number; relaxed: number };
  /**
   * Whether the database answers: every transaction reports to it, and so does every loop
   * that meets a store error. A store fault leaves `transaction` as StoreUnavailableError.
   */
  readonly health: StoreHealth;
  /**
   * Writes and removes a row of a few pages, synced: succeeds only when the database takes
   * writes (not locked past its timeout, not full, not read-only). Reports to `health`.
   */
  probe(): boolean;
  close(): void;
}

export interface StoreOptions {
  /** How long a statement waits for another writer's lock (SQLite busy_timeout). */
  busyTimeoutMs?: number;
  /** How long the store may stay busy before it counts as unavailable. */
  unavailableAfterMs?: number;
}

/** Opens (and migrates) the database file; `now` is injectable for tests. */
export function createStore(file: string, now: () => number = Date.now, options: StoreOptions = {}): Store {
  const db = openDatabase(file);
  if (options.busyTimeoutMs !== undefined) db.pragma(`busy_timeout = ${Math.round(options.busyTimeoutMs)}`);
  const commits = { full: 0, relaxed: 0 };
  const tasks = createTaskStore(db, now);
  const operations = createOperationStore(db, now);
  const health = new StoreHealth(options.unavailableAfterMs ?? 10_000, now);
  const probeRow = db.prepare("INSERT INTO store_probe (data) VALUES (zeroblob(16384))");
  const clearProbe = db.prepare("DELETE FROM store_probe");
  /** Runs an outermost transaction, reporting its outcome to `health`. */
  const reported = <T>(run: () => T): T => {
    try {
      const value = run();
      health.succeeded();
      return value;
    } catch (error) {
      health.failed(error);
      throw asStoreError(error);
    }
  };
  return {
    db,
    tasks,
    operations,
    events: createEventStore(db, now),
    alerts: createAlertStore(db, now),
    bot: createBotStateStore(db, now),
    dispatchers: createDispatcherStore(db, now),
    commits,
    health,
    taskView(id) {
      const task = tasks.get(id);
      return task ? { task, operations: operations.forTask(id) } : undefined;
    },
    transaction<T>(fn: () => T, durability: "full" | "relaxed" = "full"): T {
      if (db.inTransaction) return db.transaction(fn).immediate();
      commits[durability] += 1;
      if (durability === "full") return reported(() => db.transaction(fn).immediate());
      // Set each time: SQLite applies this pragma when the statement is compiled.
      db.pragma("synchronous = NORMAL");
      try {
        return reported(() => db.transaction(fn).immediate());
      } finally {
        db.pragma("synchronous = FULL");
      }
    },
    probe() {
      try {
        reported(() =>
          db
            .transaction(() => {
              probeRow.run();
              clearProbe.run();
            })
            .immediate(),
        );
        return true;
      } catch {
        return false;
      }
    },
    close() {
      if (db.open) db.close();
    },
  };
}
