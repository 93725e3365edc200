import { createAlertStore } from "./alerts.js";
import { createBotStateStore } from "./bot-state.js";
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
  /** Runs `fn` in one IMMEDIATE transaction. */
  transaction<T>(fn: () => T): T;
  close(): void;
}

/** Opens (and migrates) the database file; `now` is injectable for tests. */
export function createStore(file: string, now: () => number = Date.now): Store {
  const db = openDatabase(file);
  return {
    db,
    tasks: createTaskStore(db, now),
    operations: createOperationStore(db, now),
    events: createEventStore(db, now),
    alerts: createAlertStore(db, now),
    bot: createBotStateStore(db, now),
    transaction<T>(fn: () => T): T {
      return db.transaction(fn).immediate();
    },
    close() {
      if (db.open) db.close();
    },
  };
}
