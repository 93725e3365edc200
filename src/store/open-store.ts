import path from "node:path";
import type { Config } from "../config/schema.js";
import { createSqliteStore } from "./sqlite/sqlite-store.js";
import type { Store } from "./store.js";

/** The SQLite file of a config's store. */
export function databasePath(config: Config): string {
  return path.join(config.data_dir, "taskfan.db");
}

/** Opens (and migrates) the store a config names. */
export async function openStore(config: Config, now: () => number = Date.now): Promise<Store> {
  return createSqliteStore(databasePath(config), now, {
    busyTimeoutMs: config.store.busy_timeout * 1000,
    unavailableAfterMs: config.store.unavailable_after * 1000,
  });
}
