import { asStoreError, StoreHealth } from "../store-health.js";
import type { Store, StoreQueries } from "../store.js";
import { wrapMethods } from "../wrap-methods.js";
import { createAlertStore } from "./alerts.js";
import { createAlertRouteStore } from "./alert-routes.js";
import { createBotStateStore } from "./bot-state.js";
import { createDispatcherStore } from "./dispatchers.js";
import { createEventStore } from "./events.js";
import { openDatabase, type Db } from "./open-database.js";
import { createOperationStore } from "./operations.js";
import { createReminderStore } from "./reminders.js";
import { createTaskStore } from "./tasks.js";

/** The SQLite store also lends its connection (tests and the bench read it directly). */
export interface SqliteStore extends Store {
  readonly db: Db;
}

export interface SqliteStoreOptions {
  /** How long a statement waits for another writer's lock (SQLite busy_timeout). */
  busyTimeoutMs?: number;
  /** How long the store may stay busy before it counts as unavailable. */
  unavailableAfterMs?: number;
}

/**
 * Opens (and migrates) the database file; `now` is injectable for tests.
 *
 * better-sqlite3 answers synchronously: every call runs at once and returns a settled
 * promise. A transaction is BEGIN IMMEDIATE … COMMIT around `fn`; as `fn` awaits only these
 * settled calls, it runs to its end within one turn of the event loop (no timer or I/O
 * callback can run in between), and transactions are queued one at a time besides.
 */
export function createSqliteStore(
  file: string,
  now: () => number = Date.now,
  options: SqliteStoreOptions = {},
): SqliteStore {
  const db = openDatabase(file);
  if (options.busyTimeoutMs !== undefined) db.pragma(`busy_timeout = ${Math.round(options.busyTimeoutMs)}`);
  const commits = { full: 0, relaxed: 0 };
  const health = new StoreHealth(options.unavailableAfterMs ?? 10_000, now);
  const tasks = createTaskStore(db, now);
  const operations = createOperationStore(db, now);
  const queries: StoreQueries = {
    tasks: settled(tasks),
    operations: settled(operations),
    events: settled(createEventStore(db, now)),
    alerts: settled(createAlertStore(db, now)),
    alertRoutes: settled(createAlertRouteStore(db)),
    bot: settled(createBotStateStore(db, now)),
    dispatchers: settled(createDispatcherStore(db, now)),
    reminders: settled(createReminderStore(db, now)),
  };
  const statements = {
    begin: db.prepare("BEGIN IMMEDIATE"),
    commit: db.prepare("COMMIT"),
    rollback: db.prepare("ROLLBACK"),
    probeRow: db.prepare("INSERT INTO store_probe (data) VALUES (zeroblob(16384))"),
    clearProbe: db.prepare("DELETE FROM store_probe"),
  };
  const exclusive = queue();
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
    ...queries,
    // A new task on its own is a synced commit of its own, in turn with the transactions.
    tasks: {
      ...queries.tasks,
      insertWithOperations: (...args) =>
        exclusive(async () => {
          commits.full += 1;
          return reported(() => tasks.insertWithOperations(...args));
        }),
    },
    db,
    description: `SQLite ${file}`,
    commits,
    roundTrips: 0,
    health,
    taskView(id) {
      return call(() => {
        const task = tasks.get(id);
        return task ? { task, operations: operations.forTask(id) } : undefined;
      });
    },
    transaction<T>(
      fn: (tx: StoreQueries) => Promise<T>,
      durability: "full" | "relaxed" = "full",
    ): Promise<T> {
      return exclusive(async () => {
        commits[durability] += 1;
        // Set each time: SQLite applies this pragma when the statement is compiled.
        if (durability === "relaxed") db.pragma("synchronous = NORMAL");
        try {
          statements.begin.run();
          let value: T;
          try {
            value = await fn(queries);
            statements.commit.run();
          } catch (error) {
            if (db.inTransaction) statements.rollback.run();
            throw error;
          }
          health.succeeded();
          return value;
        } catch (error) {
          health.failed(error);
          throw asStoreError(error);
        } finally {
          if (durability === "relaxed") db.pragma("synchronous = FULL");
        }
      });
    },
    probe() {
      return exclusive(async () => {
        try {
          reported(() =>
            db
              .transaction(() => {
                statements.probeRow.run();
                statements.clearProbe.run();
              })
              .immediate(),
          );
          return true;
        } catch {
          return false;
        }
      });
    },
    async close() {
      await exclusive(async () => {
        if (db.open) db.close();
      });
    },
  };
}

/** A synchronous call's result (or error) as a settled promise. */
function call<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (error) {
    return Promise.reject(error as Error);
  }
}

/** The synchronous table object `sync` with each method answering through a settled promise. */
type Settled<T> = {
  [K in keyof T]: T[K] extends (...args: infer A) => infer R ? (...args: A) => Promise<R> : Settled<T[K]>;
};

function settled<T extends object>(sync: T): Settled<T> {
  return wrapMethods(
    sync,
    (method) =>
      (...args) =>
        call(() => method(...args)),
  ) as Settled<T>;
}

/**
 * One at a time, in order: the next waits until the one before has finished. When nothing
 * runs, `fn` starts at once (in the caller's turn).
 */
function queue(): <T>(fn: () => Promise<T>) => Promise<T> {
  let busy = false;
  const waiting: Array<() => void> = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    if (busy) await new Promise<void>((resolve) => waiting.push(resolve));
    busy = true;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else busy = false;
    }
  };
}
