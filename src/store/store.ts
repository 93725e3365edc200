import { createAlertStore } from "./alerts.js";
import { createBotStateStore } from "./bot-state.js";
import { createDispatcherStore } from "./dispatchers.js";
import { createEventStore } from "./events.js";
import { openDatabase, type Db } from "./open-database.js";
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
  /**
   * Runs `fn` in one IMMEDIATE transaction. "full" (the default) is on disk when this
   * returns. "relaxed" skips the fsync (synchronous=NORMAL): it survives a crash of this
   * process, and a power cut may lose it until the next full commit syncs the log. Only
   * for writes that are found again after such a loss (an outcome the next claim re-verifies).
   */
  transaction<T>(fn: () => T, durability?: "full" | "relaxed"): T;
  /** Transactions begun through `transaction` (not nested in another), by durability. */
  readonly commits: { full: number; relaxed: number };
  close(): void;
}

/** Opens (and migrates) the database file; `now` is injectable for tests. */
export function createStore(file: string, now: () => number = Date.now): Store {
  const db = openDatabase(file);
  const commits = { full: 0, relaxed: 0 };
  return {
    db,
    tasks: createTaskStore(db, now),
    operations: createOperationStore(db, now),
    events: createEventStore(db, now),
    alerts: createAlertStore(db, now),
    bot: createBotStateStore(db, now),
    dispatchers: createDispatcherStore(db, now),
    commits,
    transaction<T>(fn: () => T, durability: "full" | "relaxed" = "full"): T {
      if (db.inTransaction) return db.transaction(fn).immediate();
      commits[durability] += 1;
      if (durability === "full") return db.transaction(fn).immediate();
      // Set each time: SQLite applies this pragma when the statement is compiled.
      db.pragma("synchronous = NORMAL");
      try {
        return db.transaction(fn).immediate();
      } finally {
        db.pragma("synchronous = FULL");
      }
    },
    close() {
      if (db.open) db.close();
    },
  };
}
