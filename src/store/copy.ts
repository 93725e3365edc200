import pg from "pg";
import { TaskfanError, maskUrlCredentials } from "../errors.js";
import { migratePostgres } from "./postgres/migrate.js";
import { atomic } from "./postgres/sql.js";
import { openDatabase } from "./sqlite/open-database.js";

/** What moves, in an order the foreign keys accept. */
const tables = [
  "tasks",
  "task_changes",
  "operations",
  "events",
  "alerts",
  "alert_routes",
  "alert_deliveries",
  "conversations",
  "mutes",
  "user_settings",
  "dispatchers",
  "reminders",
] as const;
type Table = (typeof tables)[number];

/** The target was not empty: nothing was copied. */
export class TargetNotEmptyError extends TaskfanError {
  constructor(readonly counts: Partial<Record<Table, number>>) {
    super(
      `the target database already holds ${Object.entries(counts)
        .map(([t, n]) => `${n} ${t}`)
        .join(", ")}; copy into an empty one`,
    );
  }
}

/**
 * Copies a SQLite store (tasks and their changes, operations, events, alerts and their routes' deliveries, conversations, mutes, users'
 * settings, the running dispatchers, reminders) into an empty PostgreSQL database, migrating both
 * first, in one PostgreSQL transaction: all of it or nothing. Ids are kept, and the
 * sequences continue after them. Returns the rows copied per table.
 */
export async function copySqliteToPostgres(sqliteFile: string, url: string): Promise<Record<Table, number>> {
  const db = openDatabase(sqliteFile);
  const pool = new pg.Pool({ connectionString: url, max: 1 });
  pool.on("error", () => undefined);
  try {
    await migratePostgres(pool);
    return await atomic(pool, async (client) => {
      const present: Partial<Record<Table, number>> = {};
      for (const table of tables) {
        const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
        if (rows[0]!.n > 0) present[table] = rows[0]!.n;
      }
      if (Object.keys(present).length > 0) throw new TargetNotEmptyError(present);
      const copied = {} as Record<Table, number>;
      for (const table of tables) {
        const { rows: pgColumns } = await client.query<{ column_name: string }>(
          "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1",
          [table],
        );
        const known = new Set(pgColumns.map((c) => c.column_name));
        const columns = (db.pragma(`table_info(${table})`) as Array<{ name: string }>)
          .map((c) => c.name)
          .filter((c) => known.has(c));
        copied[table] = 0;
        let batch: unknown[][] = [];
        const flush = async () => {
          if (batch.length === 0) return;
          const values = batch.flat();
          const rows = batch
            .map((_, r) => `(${columns.map((__, c) => `$${r * columns.length + c + 1}`).join(", ")})`)
            .join(", ");
          await client.query(`INSERT INTO ${table} (${columns.join(", ")}) VALUES ${rows}`, values);
          copied[table] += batch.length;
          batch = [];
        };
        const select = db.prepare(`SELECT ${columns.join(", ")} FROM ${table}`).raw();
        for (const row of select.iterate() as Iterable<unknown[]>) {
          batch.push(row);
          if (batch.length * columns.length >= 30_000) await flush();
        }
        await flush();
      }
      for (const table of ["task_changes", "operations", "events", "alerts", "reminders"] as const) {
        await client.query(
          `SELECT setval(pg_get_serial_sequence('${table}', 'id'), coalesce(max(id), 1), max(id) IS NOT NULL) FROM ${table}`,
        );
      }
      return copied;
    });
  } finally {
    db.close();
    await pool.end();
  }
}

/** One line for a person: what was copied, and where to. */
export function describeCopy(counts: Record<Table, number>, from: string, url: string): string {
  const parts = tables.map((t) => `${counts[t]} ${t.replace("_", " ")}`);
  return `copied ${parts.join(", ")} from ${from} to ${maskUrlCredentials(url)}`;
}
