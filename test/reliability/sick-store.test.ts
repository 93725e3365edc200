import Database from "better-sqlite3";
import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { faultServerPath } from "../core-harness.js";
import { repoRoot, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";
import { onceEverywhere, recordsPerServer } from "../server-records.js";

// A real `taskfan start` whose database another process locks (BEGIN IMMEDIATE held past
// the busy timeout): idle, and in the middle of a fan-out.
const bin = path.join(repoRoot, "bin", "taskfan.js");
let dir: string;
let remove: () => void;
let child: ChildProcess;
let base: string;
const log: string[] = [];
const chat: string[] = [];
const data = () => path.join(dir, "data");
const deltaTasks = () => path.join(dir, "delta-tasks.json");

beforeAll(async () => {
  ({ dir, remove } = tempDir());
  writeFileSync(
    path.join(dir, "taskfan.config.json"),
    JSON.stringify({
      store: { busy_timeout: 0.1, unavailable_after: 0.5 },
      dispatcher: { poll_interval: 0.1, lease_seconds: 3 },
      health_check_interval: 1,
      sync_interval: 5,
      // deltatask answers each create a second after storing it: its outcomes arrive while
      // the database is locked.
      servers: {
        deltatask: {
          command: process.execPath,
          args: [faultServerPath],
          env: { FAULT: "slow", SLOW_MS: "1000", TASKS_FILE: deltaTasks() },
        },
      },
    }),
  );
  child = spawnTracked(process.execPath, [bin, "start"], {
    cwd: dir,
    env: { ...process.env, DATA_DIR: data(), HTTP_PORT: "0", LOG_LEVEL: "info" },
    // stdin stays open: the console chat runs, and is the alert chat.
    stdio: ["pipe", "pipe", "pipe"],
  });
  createInterface({ input: child.stdout! }).on("line", (line) => chat.push(line));
  base = await new Promise<string>((resolve) =>
    createInterface({ input: child.stderr! }).on("line", (line) => {
      log.push(line);
      const url = /"msg":"http server listening"/.test(line) ? JSON.parse(line).url : undefined;
      if (url) resolve(url as string);
    }),
  );
  await vi.waitFor(async () => expect(log.some((l) => l.includes('"msg":"taskfan started"'))).toBe(true), {
    timeout: 30_000,
    interval: 50,
  });
});
afterAll(() => {
  stopSpawned(); // only what a failed or timed-out test left running
  remove();
});

/** Another process's write lock on taskfan's database, held until released. */
function lockDatabase(): { release(): void } {
  const db = new Database(path.join(data(), "taskfan.db"));
  db.exec("BEGIN IMMEDIATE");
  return {
    release() {
      db.exec("COMMIT");
      db.close();
    },
  };
}

const json = { "content-type": "application/json" };
const ready = async () => (await fetch(`${base}/readyz`)).status;
const logged = (text: string) => log.some((l) => l.includes(text));

describe("a database locked by another process", () => {
  it("while idle: the process lives, says storage is unavailable, refuses new tasks with 503, and recovers", async () => {
    const lock = lockDatabase();
    try {
      // The background loops meet SQLITE_BUSY; past `unavailable_after` the store is a health state.
      await vi.waitFor(async () => expect(await ready()).toBe(503), { timeout: 20_000, interval: 100 });
      const readyz = (await (await fetch(`${base}/readyz`)).json()) as { reasons: string[] };
      expect(readyz.reasons).toContain(
        "storage unavailable: the database is busy (another process holds its write lock)",
      );
      const refused = await fetch(`${base}/api/tasks`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ title: "while locked" }),
      });
      expect(refused.status).toBe(503);
      expect(await refused.json()).toEqual({
        error: {
          code: "storage_unavailable",
          message:
            "storage unavailable: the database is busy (another process holds its write lock), nothing was created",
        },
      });
      const health = (await (await fetch(`${base}/api/health`)).json()) as { store: { ok: boolean } };
      expect(health.store).toMatchObject({ ok: false, code: "SQLITE_BUSY" });
      expect(await (await fetch(`${base}/`)).text()).toContain(
        '<p id="storage" class="banner">Storage unavailable',
      );
      // The alert chat (the console here) is told, though the alert outbox is in the locked database.
      await vi.waitFor(
        async () => expect(chat.some((l) => l.includes("⛔ storage unavailable"))).toBe(true),
        {
          timeout: 20_000,
          interval: 50,
        },
      );
      expect(child.exitCode).toBeNull();
    } finally {
      lock.release();
    }
    await vi.waitFor(async () => expect(await ready()).toBe(200), { timeout: 20_000, interval: 100 });
    await vi.waitFor(
      async () => expect(chat.some((l) => l.includes("✅ storage answers again"))).toBe(true),
      {
        timeout: 20_000,
        interval: 50,
      },
    );
    const tasks = (await (await fetch(`${base}/api/tasks`)).json()) as { tasks: Array<{ title: string }> };
    expect(tasks.tasks.map((t) => t.title)).not.toContain("while locked");
  });

  it("mid fan-out: outcomes wait in memory and are recorded once it answers; each task exactly once everywhere", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) {
      const res = await fetch(`${base}/api/tasks`, {
        method: "POST",
        headers: json,
        body: JSON.stringify({ title: `locked mid fan-out ${i}` }),
      });
      expect(res.status).toBe(201);
      ids.push(((await res.json()) as { task: { id: string } }).task.id);
    }
    const lock = lockDatabase();
    try {
      // Held until an outcome could not be committed (deltatask's arrive a second later).
      await vi.waitFor(async () => expect(logged("outcome commit: the database is busy")).toBe(true), {
        timeout: 20_000,
        interval: 50,
      });
      await vi.waitFor(async () => expect(await ready()).toBe(503), { timeout: 20_000, interval: 100 });
      expect(child.exitCode).toBeNull();
    } finally {
      lock.release();
    }
    await vi.waitFor(
      async () => {
        for (const id of ids) {
          const view = (await (await fetch(`${base}/api/tasks/${id}`)).json()) as {
            task: { status: string };
          };
          expect(view.task.status, id).toBe("done");
        }
      },
      { timeout: 60_000, interval: 200 },
    );
    const records = recordsPerServer(data(), ids, { deltatask: deltaTasks() });
    for (const id of ids) expect(records.get(id), id).toEqual(onceEverywhere);
  });

  it("never reached the last-resort handler, and stops cleanly", async () => {
    expect(logged("unhandled error")).toBe(false);
    expect(child.exitCode).toBeNull();
    expect(await terminate(child)).toBe(0);
  });
});
