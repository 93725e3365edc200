import { EventEmitter, once } from "node:events";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpServer } from "../../src/api/http-server.js";
import { StoreUnavailableError } from "../../src/errors.js";
import { startCore, type Core } from "../../src/core.js";
import type { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { StoreState } from "../../src/store/store-health.js";
import { tempDir, testConfig } from "../helpers.js";
import { onceEverywhere, recordsPerServer } from "../server-records.js";
import path from "node:path";

// The real core on the ten servers, its database made full with SQLite's max_page_count
// (a real SQLITE_FULL, without a small disk) while tasks fan out.
let core: Core;
let remove: () => void;
const lines: string[] = [];
const logged = new EventEmitter<{ line: [string] }>();

/** Resolves when a line holding `text` is (or was) logged. */
function untilLogged(text: string): Promise<void> {
  return new Promise((resolve) => {
    if (lines.some((l) => l.includes(text))) return resolve();
    const look = (line: string) => {
      if (!line.includes(text)) return;
      logged.off("line", look);
      resolve();
    };
    logged.on("line", look);
  });
}

beforeAll(async () => {
  const tmp = tempDir();
  remove = tmp.remove;
  const log = pino(
    { level: "info" },
    new Writable({
      write(chunk, _encoding, done) {
        lines.push(String(chunk));
        logged.emit("line", String(chunk));
        done();
      },
    }),
  );
  core = await startCore(testConfig(path.join(tmp.dir, "data"), {}), log);
});
afterAll(async () => {
  await core?.close(5000);
  remove?.();
});

const nextState = () => once(core.store.health, "change") as Promise<[StoreState]>;

describe("a full database", () => {
  it("refuses new tasks with the reason, keeps the outcomes in flight, and settles everything once it has room", async () => {
    const { db } = core.store as SqliteStore;
    const ids = await Promise.all(
      [0, 1, 2].map((i) => core.orchestrator.createTask({ title: `before the disk filled ${i}` })),
    );
    // Packed pages and no room to grow: the outcomes now on their way cannot be written.
    db.exec("VACUUM");
    const pages = db.pragma("page_count", { simple: true }) as number;
    db.pragma(`max_page_count = ${pages}`);

    const down = nextState();
    await expect(
      core.orchestrator.createTask({ title: "no room", description: "x".repeat(4000) }),
    ).rejects.toThrowError(
      new StoreUnavailableError({
        code: "SQLITE_FULL",
        kind: "full",
        reason: "the database or its disk is full",
      }),
    );
    expect((await down)[0]).toMatchObject({ ok: false, code: "SQLITE_FULL" });
    expect((await core.store.tasks.recent(10)).map((t) => t.title)).not.toContain("no room");

    const http = await startHttpServer(core, core.metrics, pino({ level: "silent" }));
    try {
      const refused = await fetch(`${http.url}/api/tasks`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ title: "no room either", description: "y".repeat(4000) }),
      });
      expect(refused.status).toBe(503);
      expect(((await refused.json()) as { error: { message: string } }).error.message).toBe(
        "storage unavailable: the database or its disk is full, nothing was created",
      );
      expect((await fetch(`${http.url}/readyz`)).status).toBe(503);
    } finally {
      await http.close();
    }
    // An outcome could not be committed (it is kept); then there is room again.
    await untilLogged('"loop":"outcome commit"');
    const up = nextState();
    db.pragma("max_page_count = 1073741823");
    expect((await up)[0]).toEqual({ ok: true });
    for (const id of ids) {
      expect((await core.orchestrator.waitForSettled(id, 30_000))?.task.status, id).toBe("done");
    }
    const records = recordsPerServer(core.config.data_dir, ids);
    for (const id of ids) expect(records.get(id), id).toEqual(onceEverywhere);
  });
});
