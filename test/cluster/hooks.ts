import type pg from "pg";
import { afterAll, beforeAll, expect, vi } from "vitest";
import { stopSpawned } from "../helpers.js";
import { startPostgres, type TestPostgres } from "../postgres.js";

/**
 * A throwaway PostgreSQL for a cluster test file, started before its tests and removed
 * after them (with whatever a failed test left running); call at the top of the file.
 */
export function clusterPostgres(): () => TestPostgres {
  let server: TestPostgres | undefined;
  beforeAll(async () => {
    server = await startPostgres();
  }, 60_000);
  afterAll(() => {
    stopSpawned();
    server?.remove();
  });
  return () => server!;
}

/** Resolves once all `count` tasks of the database `admin` reads are done. */
export async function allTasksDone(admin: pg.Client, count: number, timeoutMs: number): Promise<void> {
  const statuses = async () =>
    (
      await admin.query<{ status: string; n: number }>(
        "SELECT status, count(*)::int AS n FROM tasks GROUP BY status",
      )
    ).rows;
  await vi.waitFor(async () => expect(await statuses()).toEqual([{ status: "done", n: count }]), {
    timeout: timeoutMs,
    interval: 500,
  });
}
