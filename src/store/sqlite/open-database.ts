import Database from "better-sqlite3";
import { mkdirSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { SchemaTooNewError } from "../../errors.js";
import { packageDir } from "../../package-dir.js";

export type Db = Database.Database;

export const migrationsDir = path.join(packageDir, "migrations");

/** Opens the database file with the pragmas we rely on and applies pending migrations. */
export function openDatabase(file: string, dir = migrationsDir): Db {
  if (file !== ":memory:") mkdirSync(path.dirname(file), { recursive: true });
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  db.pragma("busy_timeout = 5000");
  db.pragma("foreign_keys = ON");
  // Sorts and statement journals in memory: on disk each one created and removed a file.
  db.pragma("temp_store = MEMORY");
  migrate(db, dir);
  return db;
}

/** Applies `NNNN_name.sql` files above `PRAGMA user_version`, each in its own transaction. */
export function migrate(db: Db, dir = migrationsDir): number {
  const files = readdirSync(dir)
    .filter((f) => /^\d{4}_[\w-]+\.sql$/.test(f))
    .sort();
  let version = db.pragma("user_version", { simple: true }) as number;
  const known = Number(files.at(-1)?.slice(0, 4) ?? 0);
  if (version > known) throw new SchemaTooNewError(version, known, db.name);
  for (const file of files) {
    const target = Number(file.slice(0, 4));
    if (target <= version) continue;
    const sql = readFileSync(path.join(dir, file), "utf8");
    db.transaction(() => {
      db.exec(sql);
      db.pragma(`user_version = ${target}`);
    }).immediate();
    version = target;
  }
  return version;
}
