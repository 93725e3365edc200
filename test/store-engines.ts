import path from "node:path";
import pg from "pg";
import { afterAll, afterEach, beforeAll, expect } from "vitest";
import { createPostgresStore } from "../src/store/postgres/postgres-store.js";
import { createSqliteStore } from "../src/store/sqlite/sqlite-store.js";
import type { Store } from "../src/store/store.js";
import { tempDir } from "./helpers.js";
import { startPostgres, type TestPostgres } from "./postgres.js";

export interface Engine {
  name: "SQLite" | "PostgreSQL";
  /** A fresh, empty store on this engine, with `now` as its clock; closed after the test. */
  open(now?: () => number): Promise<Store>;
  /** Two stores (as two processes would have) on one fresh database. */
  openTwo(now?: () => number): Promise<[Store, Store]>;
  /**
   * Resolves once a statement of the last opened store's database, and only one, waits for
   * a row lock another transaction holds. On SQLite a transaction waits before it begins (they queue
   * in the process), so there is no statement to wait for and it resolves at once.
   */
  lockWaitSeen(): Promise<void>;
}

/**
 * The two engines a store test runs on: SQLite in a temporary file, and PostgreSQL on a
 * throwaway cluster started for the test file (a new database per store). Call at the top
 * of a test file; use with `describe.each(engines)`.
 */
export function storeEngines(): Engine[] {
  let server: TestPostgres | undefined;
  const cleanups: Array<() => unknown> = [];
  let lastUrl = "";
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(() => server?.remove());
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const kept = (store: Store) => {
    cleanups.push(() => store.close());
    return store;
  };
  const sqliteFile = () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    return path.join(dir, "taskfan.db");
  };
  return [
    {
      name: "SQLite",
      async open(now = Date.now) {
        return kept(createSqliteStore(sqliteFile(), now));
      },
      async openTwo(now = Date.now) {
        const file = sqliteFile();
        return [kept(createSqliteStore(file, now)), kept(createSqliteStore(file, now))];
      },
      async lockWaitSeen() {},
    },
    {
      name: "PostgreSQL",
      async open(now = Date.now) {
        lastUrl = await server!.createDatabase();
        return kept(await createPostgresStore(lastUrl, now));
      },
      async openTwo(now = Date.now) {
        const url = await server!.createDatabase();
        return [kept(await createPostgresStore(url, now)), kept(await createPostgresStore(url, now))];
      },
      async lockWaitSeen() {
        const client = new pg.Client({ connectionString: lastUrl });
        await client.connect();
        try {
          await expect
            .poll(
              async () =>
                (
                  await client.query<{ n: number }>(
                    `SELECT count(*)::int AS n FROM pg_stat_activity
                     WHERE datname = current_database() AND wait_event_type = 'Lock'`,
                  )
                ).rows[0]!.n,
              { timeout: 10_000, interval: 20 },
            )
            .toBe(1);
        } finally {
          await client.end();
        }
      },
    },
  ];
}
