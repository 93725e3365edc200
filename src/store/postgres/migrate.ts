import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import type pg from "pg";
import { packageDir } from "../../package-dir.js";
import { SchemaTooNewError } from "../../errors.js";
import { atomic } from "./sql.js";

export const postgresMigrationsDir = path.join(packageDir, "migrations", "postgres");

/** The advisory lock key the migrations are applied under ("tfan" in ASCII). */
const migrationLock = 0x7466616e;

/**
 * Applies the `NNNN_name.sql` files not yet in `schema_migrations`, in order, in one
 * transaction under a transaction-level advisory lock: processes starting together take
 * turns, and the second finds the work done. Forward only. Returns the applied versions.
 */
export async function migratePostgres(pool: pg.Pool, dir = postgresMigrationsDir): Promise<number[]> {
  const files = readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort();
  return atomic(pool, async (client) => {
    await client.query("SELECT pg_advisory_xact_lock($1)", [migrationLock]);
    await client.query(
      `CREATE TABLE IF NOT EXISTS schema_migrations (
         version integer PRIMARY KEY,
         name text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    const { rows } = await client.query<{ version: number }>("SELECT version FROM schema_migrations");
    const done = new Set(rows.map((r) => r.version));
    const known = Number(files.at(-1)?.slice(0, 4) ?? 0);
    const newest = Math.max(0, ...done);
    if (newest > known) throw new SchemaTooNewError(newest, known, "PostgreSQL");
    const applied: number[] = [];
    for (const file of files) {
      const version = Number(file.slice(0, 4));
      if (done.has(version)) continue;
      await client.query(readFileSync(path.join(dir, file), "utf8"));
      await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [version, file]);
      applied.push(version);
    }
    return applied;
  });
}
