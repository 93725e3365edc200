import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { completeConfig, printableConfig, secretsOf } from "../../src/config/load.js";
import { startCore } from "../../src/core.js";
import { ConfigError } from "../../src/errors.js";
import { createPostgresStore } from "../../src/store/postgres/postgres-store.js";
import { freePort, repoRoot, silentLog, tempDir, testConfig } from "../helpers.js";
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
      expect(await appliedVersions(url)).toEqual([1]);
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
    expect(await appliedVersions(url)).toEqual([1]);
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
      const config = testConfig(dataDir, { store: { url, unavailable_after: 1 } });
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
