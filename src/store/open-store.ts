import path from "node:path";
import type { Config } from "../config/schema.js";
import { createPostgresStore } from "./postgres/postgres-store.js";
import { createSqliteStore } from "./sqlite/sqlite-store.js";
import type { Store } from "./store.js";

/** The SQLite file of a config's store. */
export function databasePath(config: Config): string {
  return path.join(config.data_dir, "taskfan.db");
}

/**
 * Opens (and migrates) the store a config names: PostgreSQL at `store.url`, or the SQLite
 * file under `data_dir`. A PostgreSQL that does not answer is a StoreUnavailableError
 * naming the URL without its credentials. `instance` names this process's sessions.
 */
export async function openStore(
  config: Config,
  now: () => number = Date.now,
  instance?: string,
): Promise<Store> {
  const options = { unavailableAfterMs: config.store.unavailable_after * 1000 };
  if (config.store.kind === "postgres" && config.store.url) {
    return createPostgresStore(config.store.url, now, {
      ...options,
      poolSize: config.store.pool_size,
      instance,
      // No statement runs, and no transaction sits open, longer than a lease.
      timeoutMs: config.dispatcher.lease_seconds * 1000,
    });
  }
  return createSqliteStore(databasePath(config), now, {
    ...options,
    busyTimeoutMs: config.store.busy_timeout * 1000,
  });
}
