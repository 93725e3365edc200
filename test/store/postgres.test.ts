import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { completeConfig, printableConfig, secretsOf } from "../../src/config/load.js";
import { startCore } from "../../src/core.js";
import { startHttpServer } from "../../src/api/http-server.js";
import { ConfigError, StoreUnavailableError } from "../../src/errors.js";
import { migratePostgres, postgresMigrationsDir } from "../../src/store/postgres/migrate.js";
import { createPostgresStore } from "../../src/store/postgres/postgres-store.js";
import { sessionConfig } from "../../src/store/postgres/session.js";
import { freePort, onlyServers, repoRoot, silentLog, tempDir, testConfig } from "../helpers.js";
import { startPostgres, type TestPostgres } from "../postgres.js";
import { onceEverywhere, recordsPerServer } from "../server-records.js";

const run = promisify(execFile);
const bin = path.join(repoRoot, "bin", "taskfan.js");
let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(() => server?.remove());

async function appliedVersions(url: string): Promise<number[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (
      await client.query<{ version: number }>("SELECT version FROM schema_migrations ORDER BY version")
    ).rows.map((r) => r.version);
  } finally {
    await client.end();
  }
}

describe("PostgreSQL migrations", () => {
  it("migrate an empty database once, even when two processes start together", async () => {
    const url = await server.createDatabase();
    const [a, b] = await Promise.all([createPostgresStore(url), createPostgresStore(url)]);
    try {
      expect(await appliedVersions(url)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
      await a.tasks.insertWithOperations(
        "t1",
        { title: "a", description: "", priority: 1, deadline: null, tags: [] },
        null,
        [],
      );
      expect((await b.tasks.get("t1"))?.title).toBe("a");
    } finally {
      await a.close();
      await b.close();
    }
    // Opened again: nothing to apply, the data kept.
    const again = await createPostgresStore(url);
    expect(await again.tasks.count()).toBe(1);
    await again.close();
    expect(await appliedVersions(url)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("bring a database of each earlier version forward, keeping its data", async () => {
    const files = readdirSync(postgresMigrationsDir)
      .filter((f) => /^\d{4}_/.test(f))
      .sort();
    for (let upTo = 1; upTo < files.length; upTo++) {
      // A database as an earlier release left it: only the first `upTo` migrations.
      const earlier = mkdtempSync(path.join(tmpdir(), "taskfan-migrations-"));
      for (const f of files.slice(0, upTo))
        copyFileSync(path.join(postgresMigrationsDir, f), path.join(earlier, f));
      const url = await server.createDatabase();
      const pool = new pg.Pool({ connectionString: url });
      expect(await migratePostgres(pool, earlier)).toEqual(
        files.slice(0, upTo).map((f) => Number(f.slice(0, 4))),
      );
      await pool.query(
        "INSERT INTO tasks (id, title, priority, created_at, updated_at) VALUES ('old', 'from before', 3, 1, 1)",
      );
      await pool.end();
      rmSync(earlier, { recursive: true, force: true });
      const store = await createPostgresStore(url);
      try {
        expect(await appliedVersions(url)).toEqual(files.map((f) => Number(f.slice(0, 4))));
        expect(await store.tasks.get("old")).toMatchObject({
          title: "from before",
          state: "open",
          version: 1,
        });
        // The counts /stats reads start from the rows already stored.
        expect(await store.tasks.countByStatus()).toEqual({ pending: 1 });
      } finally {
        await store.close();
      }
    }
  });
});

describe("choosing PostgreSQL", () => {
  it("takes DATABASE_URL or store.url, and names the key when it is wrong", () => {
    const dir = "/tmp/taskfan-config-test";
    const fromEnv = completeConfig(
      {},
      { DATABASE_URL: "postgres://taskfan:s3cret-pass@db:5432/taskfan" },
      dir,
    );
    expect(fromEnv.store).toMatchObject({
      kind: "postgres",
      url: "postgres://taskfan:s3cret-pass@db:5432/taskfan",
    });
    expect(secretsOf(fromEnv)).toContain("s3cret-pass");
    // Printed as a reference to the environment; a URL from the file, with its password masked.
    const env = { DATABASE_URL: fromEnv.store.url };
    expect(printableConfig(fromEnv, env).store?.url).toBe("${DATABASE_URL}");
    const fromFile = completeConfig({ store: { url: "postgresql://me:hunter2-long@db/t" } }, {}, dir);
    expect(JSON.stringify(printableConfig(fromFile, {}))).not.toContain("hunter2-long");
    expect(
      completeConfig({ store: { url: "${PG_URL}" } }, { PG_URL: "postgres://db/x" }, dir).store.url,
    ).toBe("postgres://db/x");
    expect(completeConfig({}, {}, dir).store.kind).toBe("sqlite");
    expect(() => completeConfig({ store: { kind: "postgres" } }, {}, dir)).toThrowError(
      new ConfigError("store.url: a PostgreSQL store needs a URL (store.url or DATABASE_URL)"),
    );
    expect(() => completeConfig({ store: { url: "mysql://u:pw-secret@db/x" } }, {}, dir)).toThrowError(
      /^store\.url: expected postgres:\/\/user:password@host:port\/database, got mysql:\/\/\*\*\*:\*\*\*@db\/x$/,
    );
  });

  it("refuses to start on a database that does not answer, naming it without its password", async () => {
    const { dir, remove } = tempDir();
    try {
      const port = await freePort();
      const failed = await run(process.execPath, [bin, "start"], {
        cwd: dir,
        env: {
          ...process.env,
          DATA_DIR: path.join(dir, "data"),
          DATABASE_URL: `postgres://taskfan:s3cret-pass@127.0.0.1:${port}/taskfan`,
          LOG_LEVEL: "warn",
        },
      }).catch((error: { code: number; stderr: string; stdout: string }) => error);
      expect("code" in failed && failed.code).toBe(3);
      expect(failed.stderr).toContain(
        `taskfan: storage unavailable: the database server does not answer (postgres://***:***@127.0.0.1:${port}/taskfan)`,
      );
      expect(failed.stderr + failed.stdout).not.toContain("s3cret-pass");
    } finally {
      remove();
    }
  });

  it("refuses to start on a database a newer taskfan migrated, and changes nothing in it", async () => {
    const { dir, remove } = tempDir();
    const url = await server.createDatabase();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const store = await createPostgresStore(url);
      await store.close();
      const known = Math.max(...(await appliedVersions(url)));
      await admin.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'from_the_future.sql')", [
        known + 1,
      ]);
      const before = await appliedVersions(url);
      const failed = await run(process.execPath, [bin, "start"], {
        cwd: dir,
        env: { ...process.env, DATA_DIR: path.join(dir, "data"), DATABASE_URL: url, LOG_LEVEL: "warn" },
      }).catch((error: { code: number; stderr: string }) => error);
      expect("code" in failed && failed.code).toBe(2);
      expect(failed.stderr).toContain(
        `has schema version ${known + 1}, newer than this taskfan knows (${known}): run the taskfan that migrated it, or a newer one`,
      );
      expect(await appliedVersions(url)).toEqual(before);
      const { rows } = await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM instances");
      expect(rows[0]!.n).toBe(0);
    } finally {
      await admin.end();
      remove();
    }
  });

  it("counts the statements it sends: one a read, BEGIN and COMMIT around a transaction's", async () => {
    const url = await server.createDatabase();
    const store = await createPostgresStore(url);
    try {
      const start = store.roundTrips;
      await store.tasks.get("none");
      expect(store.roundTrips - start).toBe(1);
      const before = store.roundTrips;
      await store.transaction(async (tx) => {
        await tx.tasks.get("none");
        await tx.tasks.get("other");
      });
      // BEGIN with its SET LOCAL goes as one text, then the two reads, then COMMIT.
      expect(store.roundTrips - before).toBe(4);
      // A new task with ten operations, three stored claimed: one statement, and synced
      // (the session's synchronous_commit, whatever the server's default is).
      const lease = { owner: "me", expiresAt: Date.now() + 60_000 };
      const servers = ["deltatask", "memory", "git", "calendar", "backup", "filesystem", "time-tracker"];
      const atAck = store.roundTrips;
      const { claimed } = await store.tasks.insertWithOperations(
        "ack",
        { title: "one trip", description: "", priority: 3, deadline: null, tags: [] },
        null,
        servers.map((server, i) => ({
          server,
          priority: 3,
          waitsFor: server === "backup" ? ["git"] : [],
          idempotencyKey: `ack:${server}:create`,
          ...(i < 3 ? { lease } : {}),
        })),
      );
      expect(store.roundTrips - atAck).toBe(1);
      expect(claimed.map((o) => o.server)).toEqual(["deltatask", "memory", "git"]);
      expect(await store.operations.forTask("ack")).toHaveLength(servers.length);
    } finally {
      await store.close();
    }
  });

  it("writes a group commit's outcomes as one statement, each behind its own claim, and its events as one more", async () => {
    const url = await server.createDatabase();
    const store = await createPostgresStore(url);
    try {
      const lease = { owner: "me", expiresAt: Date.now() + 60_000 };
      const { claimed } = await store.tasks.insertWithOperations(
        "g",
        { title: "three outcomes", description: "", priority: 3, deadline: null, tags: [] },
        null,
        ["memory", "git", "backup"].map((server) => ({
          server,
          priority: 3,
          waitsFor: [],
          idempotencyKey: `g:${server}:create`,
          lease,
        })),
      );
      const before = store.roundTrips;
      const oks = await store.transaction(
        (tx) =>
          Promise.all(
            claimed.map(async (op, i) => {
              // The third holds a token another claim has replaced: refused.
              const claim = { owner: "me", token: i === 2 ? op.attempts + 1 : op.attempts };
              const ok = await tx.operations.finish(op.id, claim, {
                status: "done",
                remoteId: `r${i}`,
                durationMs: 5,
              });
              if (ok) await tx.events.append("operation.done", { taskId: "g", operationId: op.id });
              return ok;
            }),
          ),
        "relaxed",
      );
      expect(oks).toEqual([true, true, false]);
      // BEGIN, the three outcomes, the two events, COMMIT.
      expect(store.roundTrips - before).toBe(4);
      const ops = await store.operations.forTask("g");
      expect(ops.map((o) => [o.server, o.status, o.remoteId, o.leaseOwner])).toEqual([
        ["memory", "done", "r0", null],
        ["git", "done", "r1", null],
        ["backup", "running", null, "me"],
      ]);
      expect((await store.events.forTask("g")).map((e) => e.operationId)).toEqual([
        claimed[0]!.id,
        claimed[1]!.id,
      ]);
    } finally {
      await store.close();
    }
  });

  it("commits a statement of its own synced even where the database's default is not", async () => {
    const url = await server.createDatabase();
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    const session = new pg.Client(sessionConfig(url, {}));
    try {
      const db = new URL(url).pathname.slice(1);
      await admin.query(`ALTER DATABASE "${db}" SET synchronous_commit = off`);
      await session.connect();
      const { rows } = await session.query<{ synchronous_commit: string }>("SHOW synchronous_commit");
      expect(rows).toEqual([{ synchronous_commit: "on" }]);
    } finally {
      await session.end().catch(() => undefined);
      await admin.end();
    }
  });

  it("names its sessions and limits them: a statement blocked by an outside lock ends at the limit, and its slot is free again", async () => {
    const url = await server.createDatabase();
    const store = await createPostgresStore(url, Date.now, {
      instance: "limits-test",
      timeoutMs: 800,
      poolSize: 1,
    });
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      // Its pool, its group rows and its locks, each on sessions named for the instance.
      await store.tasks.count();
      await store.cluster!.instances();
      await store.locks!.tryAcquire("limits-test");
      const { rows } = await admin.query<{ application_name: string }>(
        `SELECT DISTINCT application_name FROM pg_stat_activity
         WHERE datname = current_database() AND application_name LIKE 'taskfan limits-test%' ORDER BY 1`,
      );
      expect(rows.map((r) => r.application_name)).toEqual([
        "taskfan limits-test",
        "taskfan limits-test group",
        "taskfan limits-test locks",
      ]);
      // What every such session is opened with.
      const probe = new pg.Client(sessionConfig(url, { instance: "probe", timeoutMs: 800 }));
      await probe.connect();
      const shown: string[] = [];
      for (const name of [
        "statement_timeout",
        "idle_in_transaction_session_timeout",
        "tcp_keepalives_idle",
        "application_name",
      ]) {
        shown.push((await probe.query<Record<string, string>>(`SHOW ${name}`)).rows[0]![name]!);
      }
      expect(shown).toEqual(["800ms", "800ms", "10", "taskfan probe"]);
      await probe.end();
      // Someone else holds the table: our statement waits only as long as the limit.
      await admin.query("BEGIN");
      await admin.query("LOCK TABLE tasks IN ACCESS EXCLUSIVE MODE");
      await expect(store.tasks.count()).rejects.toThrow(
        /storage unavailable: the database is busy \(a statement ran past its limit\)/,
      );
      await admin.query("COMMIT");
      // The pool's one slot was given back: the next statement runs.
      expect(await store.tasks.count()).toBe(0);
    } finally {
      await admin.end();
      await store.close();
    }
  });

  it("runs `taskfan create` end to end on PostgreSQL", async () => {
    const { dir, remove } = tempDir();
    try {
      const url = await server.createDatabase();
      const { stdout } = await run(process.execPath, [bin, "create", "--title", "on postgres", "--json"], {
        cwd: dir,
        env: { ...process.env, DATA_DIR: path.join(dir, "data"), DATABASE_URL: url, LOG_LEVEL: "warn" },
      });
      const { task: result } = JSON.parse(stdout) as { task: { status: string; id: string } };
      expect(result.status).toBe("done");
      const store = await createPostgresStore(url);
      try {
        expect((await store.tasks.get(result.id))?.status).toBe("done");
        expect(await store.operations.forTask(result.id)).toHaveLength(10);
      } finally {
        await store.close();
      }
    } finally {
      remove();
    }
  });
});

describe("PostgreSQL restarted mid fan-out", () => {
  it(
    "reconnects; every task ends done, each exactly once on every server",
    { timeout: 120_000 },
    async () => {
      const { dir, remove } = tempDir();
      const url = await server.createDatabase();
      const dataDir = path.join(dir, "data");
      const config = testConfig(dataDir, { store: { url, unavailable_after: 1 }, http: { port: 0 } });
      const core = await startCore(config, silentLog);
      try {
        const ids: string[] = [];
        for (let i = 0; i < 20; i++) ids.push(await core.orchestrator.createTask({ title: `restart ${i}` }));
        // The next outcome, with most of the fan-out still to come: PostgreSQL goes down.
        const down = new Promise<void>((resolve) =>
          core.orchestrator.once("operation.done", () => {
            server.stop(); // fast shutdown: every session is cut
            resolve();
          }),
        );
        await down;
        // While it is down: a health state, and new tasks refused with a 503, nothing created.
        await expect(core.orchestrator.createTask({ title: "while down" })).rejects.toThrow(
          StoreUnavailableError,
        );
        expect(core.store.health.state).toMatchObject({ ok: false, kind: "io" });
        const http = await startHttpServer(core, core.metrics, silentLog);
        try {
          const refused = await fetch(`${http.url}/api/tasks`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ title: "while down" }),
          });
          expect(refused.status).toBe(503);
          expect((await fetch(`${http.url}/readyz`)).status).toBe(503);
        } finally {
          await http.close();
        }
        server.start();
        await vi.waitFor(async () => expect(await core.store.tasks.countByStatus()).toEqual({ done: 20 }), {
          timeout: 90_000,
          interval: 200,
        });
        const records = recordsPerServer(dataDir, ids);
        for (const id of ids) expect(records.get(id), id).toEqual(onceEverywhere);
        expect(core.store.health.state.ok).toBe(true);
      } finally {
        await core.close(5000);
        remove();
      }
    },
  );
});

describe("wake-ups across processes", () => {
  it(
    "runs work another process stored at once, not on the next poll, and listens again after a restart",
    { timeout: 120_000 },
    async () => {
      const { dir, remove } = tempDir();
      const url = await server.createDatabase();
      const config = testConfig(path.join(dir, "data"), {
        store: { url },
        // Polls once a minute: only the announcement can wake it within the test's wait.
        dispatcher: { poll_interval: 60 },
        servers: onlyServers(["memory"]),
      });
      const core = await startCore(config, silentLog);
      const other = await createPostgresStore(url);
      try {
        // What another instance's API would store: a task and its pending operation.
        const storedElsewhere = async (id: string) => {
          await other.tasks.insertWithOperations(
            id,
            { title: id, description: "", priority: 3, deadline: null, tags: [] },
            null,
            [{ server: "memory", priority: 2, waitsFor: [], idempotencyKey: `${id}:memory:create` }],
          );
          const settled = await core.orchestrator.waitForSettled(id, 20_000);
          expect(settled?.task.status).toBe("done");
        };
        await storedElsewhere("elsewhere1");
        server.stop();
        server.start();
        // The listener's session is back (it connects again by itself) ...
        await vi.waitFor(
          async () => {
            const client = new pg.Client({ connectionString: url });
            await client.connect();
            try {
              const { rows } = await client.query<{ n: number }>(
                "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'LISTEN taskfan_due'",
              );
              expect(rows[0]!.n).toBe(1);
            } finally {
              await client.end();
            }
          },
          { timeout: 60_000, interval: 250 },
        );
        // ... and hears the next one.
        await storedElsewhere("elsewhere2");
      } finally {
        await other.close();
        await core.close(5000);
        remove();
      }
    },
  );
});

describe("moving a SQLite store to PostgreSQL", () => {
  it(
    "copies everything into an empty database, refuses a second time, and the copy carries on",
    { timeout: 120_000 },
    async () => {
      const { dir, remove } = tempDir();
      try {
        const env: NodeJS.ProcessEnv = {
          ...process.env,
          DATA_DIR: path.join(dir, "data"),
          LOG_LEVEL: "warn",
        };
        delete env.DATABASE_URL;
        const taskfan = (args: string[], extra: Record<string, string> = {}) =>
          run(process.execPath, [bin, ...args], { cwd: dir, env: { ...env, ...extra } });
        const created = JSON.parse(
          (await taskfan(["create", "--title", "made on SQLite", "--json"])).stdout,
        ) as {
          task: { id: string };
          results: Array<{ server: string; remoteId?: string }>;
        };
        const url = await server.createDatabase();
        const copy = await taskfan(["store", "copy", "--to", url]);
        expect(copy.stdout).toMatch(
          /^copied 1 tasks, 0 task changes, 10 operations, \d+ events, 0 alerts, 0 alert routes, 0 alert deliveries, 0 conversations, 0 mutes, 0 user settings, 0 dispatchers, 0 reminders from .*taskfan\.db to postgres:\/\//,
        );
        // The same task, read from PostgreSQL.
        const onPg = JSON.parse(
          (await taskfan(["task", created.task.id, "--json"], { DATABASE_URL: url })).stdout,
        ) as {
          task: { status: string };
          results: Array<{ server: string; remoteId?: string }>;
        };
        expect(onPg.task.status).toBe("done");
        expect(onPg.results).toEqual(created.results);
        // Not into a database that holds data.
        const again = await taskfan(["store", "copy", "--to", url]).catch(
          (e: { code: number; stderr: string }) => e,
        );
        expect("code" in again && again.code).toBe(1);
        expect(again.stderr).toMatch(/already holds 1 tasks, 10 operations.*nothing was copied/);
        // New rows continue after the copied ids.
        const next = JSON.parse(
          (await taskfan(["create", "--title", "made on PostgreSQL", "--json"], { DATABASE_URL: url }))
            .stdout,
        ) as { task: { status: string } };
        expect(next.task.status).toBe("done");
        // The counts /stats reads hold the copied rows and the new ones.
        const store = await createPostgresStore(url);
        try {
          expect(await store.operations.countByServerStatus()).toEqual(
            expect.arrayContaining([{ server: "git", status: "done", n: 2 }]),
          );
          expect(await store.operations.countByServerStatus()).toHaveLength(10);
          expect(await store.tasks.countByStatus()).toEqual({ done: 2 });
        } finally {
          await store.close();
        }
      } finally {
        remove();
      }
    },
  );
});
