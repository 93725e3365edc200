import type pg from "pg";

/** A pool (each call its own transaction) or one client inside a transaction. */
export type Queryable = pg.Pool | pg.PoolClient;

/** Runs `fn` in one transaction: on a pool, a client of its own; on a client, inside the caller's. */
export async function atomic<T>(q: Queryable, fn: (client: Queryable) => Promise<T>): Promise<T> {
  if (!("totalCount" in q)) return fn(q);
  const client = await q.connect();
  let broken: Error | undefined;
  try {
    await client.query("BEGIN");
    const value = await fn(client);
    await client.query("COMMIT");
    return value;
  } catch (error) {
    await client.query("ROLLBACK").catch((rollbackFailed: Error) => (broken = rollbackFailed));
    throw error;
  } finally {
    // A client whose connection failed is closed, not handed out again.
    client.release(broken);
  }
}

/** A statement's rows, and the number of rows a statement changed, on `q`. */
export function statementsOn(q: Queryable): {
  rows: <T>(sql: string, values?: unknown[]) => Promise<T[]>;
  changes: (sql: string, values?: unknown[]) => Promise<number>;
} {
  return {
    rows: async <T>(sql: string, values: unknown[] = []): Promise<T[]> =>
      (await q.query<T & pg.QueryResultRow>(sql, values)).rows,
    changes: async (sql: string, values: unknown[] = []): Promise<number> =>
      (await q.query(sql, values)).rowCount ?? 0,
  };
}
