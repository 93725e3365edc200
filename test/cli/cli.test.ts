import { execFile } from "node:child_process";
import Database from "better-sqlite3";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot, tempDir } from "../helpers.js";

const run = promisify(execFile);
const bin = path.join(repoRoot, "bin", "taskfan.js");
const token = "987654321:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ";

// The built command, as a user runs it: `taskfan ...` in a folder of their own.
async function taskfan(args: string[], cwd: string, env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, [bin, ...args], {
      cwd,
      env: { ...process.env, DATA_DIR: path.join(cwd, "data"), HTTP_PORT: "0", LOG_LEVEL: "warn", ...env },
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

let dir: string;
let remove: () => void;
beforeAll(() => ({ dir, remove } = tempDir()));
afterAll(() => remove());

describe("taskfan create --json", () => {
  let created: { task: { id: string; status: string }; results: Array<Record<string, unknown>> };

  it("prints ten results, all ok, and exits 0", async () => {
    const deadline = new Date(Date.now() + 86_400_000).toISOString();
    const r = await taskfan(
      ["create", "--title", "Hello", "--priority", "1", "--deadline", deadline, "--tags", "a,b", "--json"],
      dir,
      { BOT_TOKEN: token },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    created = JSON.parse(r.stdout);
    expect(created.task.status).toBe("done");
    expect(created.results).toHaveLength(10);
    for (const line of created.results) {
      expect(line).toMatchObject({ ok: true, remoteId: expect.any(String), ms: expect.any(Number) });
      expect(Object.keys(line).sort()).toEqual(["ms", "ok", "remoteId", "server"]);
    }
  });

  it("shows the stored task with `taskfan task <id> --json`", async () => {
    const r = await taskfan(["task", created.task.id, "--json"], dir);
    expect(r.code).toBe(0);
    const shown = JSON.parse(r.stdout);
    expect(shown.task).toEqual(created.task);
    expect(shown.results.map((l: { server: string }) => l.server).sort()).toEqual(
      created.results.map((l) => l.server).sort(),
    );
  });

  it("answers an unknown task with exit 1", async () => {
    const r = await taskfan(["task", "nosuchtask"], dir);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no task nosuchtask");
  });

  it("refuses invalid input with the field named and exit 2, creating nothing", async () => {
    const r = await taskfan(["create", "--title", "Late", "--deadline", "2001-01-01T00:00:00Z"], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("deadline: the deadline is in the past");
    const p = await taskfan(["create", "--title", "x", "--priority", "7"], dir);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain("priority");
  });
});

describe("taskfan edit, done, reopen and delete", () => {
  let id: string;
  type Change = {
    task: { id: string; state: string; version: number };
    changed: boolean;
    results: Array<{ server: string; ok: boolean; skipped?: string; error?: string }>;
  };
  const change = async (args: string[]) => {
    const r = await taskfan([...args, "--json"], dir);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    return JSON.parse(r.stdout) as Change;
  };

  it("changes the task on all ten servers, waiting for them, and says what each did", async () => {
    const made = await taskfan(["create", "--title", "Change me", "--json"], dir);
    id = (JSON.parse(made.stdout) as { task: { id: string } }).task.id;

    const edited = await change(["edit", id, "--title", "Changed", "--tags", "x,y", "--if-version", "1"]);
    expect(edited.task).toEqual({ id, state: "open", version: 2 });
    expect(edited.changed).toBe(true);
    expect(edited.results).toHaveLength(10);
    expect(edited.results.filter((r) => !r.ok)).toEqual([]);

    const done = await change(["done", id]);
    expect(done.task).toMatchObject({ state: "done", version: 3 });
    expect(done.results.map((r) => r.server).sort()).toEqual(edited.results.map((r) => r.server).sort());
    expect(done.results.filter((r) => !r.ok)).toEqual([]);
    // Done is a state: done again changes nothing, calls no server, and shows how the
    // completion went on each.
    const again = await change(["done", id]);
    expect(again).toMatchObject({ changed: false, task: { state: "done", version: 3 } });
    expect(again.results.map((r) => r.server)).toEqual(done.results.map((r) => r.server));
  });

  it("refuses a stale --if-version with exit 1, and a bad field with exit 2 naming it", async () => {
    const stale = await taskfan(["edit", id, "--title", "Lost", "--if-version", "1"], dir);
    expect(stale.code).toBe(1);
    expect(stale.stderr).toContain(`task ${id} is at version 3, not 1`);
    const bad = await taskfan(["edit", id, "--deadline", "2001-01-01T00:00:00Z"], dir);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("deadline: the deadline is in the past");
    const none = await taskfan(["edit", id], dir);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("edit needs a field");
  });

  it("deletes once and everywhere; a deleted task cannot be reopened", async () => {
    const deleted = await change(["delete", id]);
    expect(deleted.task).toMatchObject({ state: "deleted", version: 4 });
    expect(deleted.results.filter((r) => !r.ok)).toEqual([]);
    // Backup keeps its snapshots after a delete, and says so.
    expect(deleted.results.find((r) => r.server === "backup")?.skipped).toBe(
      "snapshots are kept after a delete, for recovery",
    );
    const reopen = await taskfan(["reopen", id], dir);
    expect(reopen.code).toBe(1);
    expect(reopen.stderr).toContain(`task ${id} was deleted; it cannot be changed`);
  });
});

describe("taskfan config", () => {
  it("prints the effective config with secrets masked", async () => {
    const r = await taskfan(["config", "print"], dir, { BOT_TOKEN: token });
    expect(r.code).toBe(0);
    expect(r.stdout).not.toContain(token);
    const printed = JSON.parse(r.stdout);
    expect(r.stderr).toContain("the embedded default");
    expect(printed.notifications.telegram.bot_token).toBe("********");
    expect(Object.keys(printed.servers)).toHaveLength(10);
  });

  it("prints a config that taskfan accepts and prints again the same, masking secrets only", async () => {
    const { dir: other, remove: rm } = tempDir();
    try {
      const secrets = {
        BOT_TOKEN: token,
        CALDAV_PASSWORD: "caldav-secret-1234",
        NTFY_URL: "https://alice:ntfy-pass-5678@ntfy.example/team",
      };
      writeFileSync(
        path.join(other, "taskfan.config.json"),
        JSON.stringify({
          servers: {
            calendar: { settings: { caldav: { url: "https://dav.example/", username: "me" } } },
            notifications: { env: { DATA_DIR: "${DATA_DIR}/notifications", NTFY_BASE_URL: "${NTFY_URL}" } },
          },
        }),
      );
      const first = await taskfan(["config", "print"], other, secrets);
      expect(first.code).toBe(0);
      for (const secret of [token, "caldav-secret-1234", "ntfy-pass-5678"])
        expect(first.stdout).not.toContain(secret);
      const printed = JSON.parse(first.stdout);
      expect(printed.source).toBeUndefined();
      expect(printed.servers.git.name).toBeUndefined();
      // Names that merely contain AUTH are not secrets: git needs them as they are.
      expect(printed.servers.git.env).toMatchObject({
        GIT_AUTHOR_NAME: "taskfan",
        GIT_AUTHOR_EMAIL: "bot@taskfan.local",
      });
      // A server's secret from the environment is printed as a reference the loader reads back.
      expect(printed.servers.calendar.env.CALDAV_PASSWORD).toBe("${CALDAV_PASSWORD}");
      expect(printed.servers.notifications.env.NTFY_BASE_URL).toBe("https://***:***@ntfy.example/team");
      writeFileSync(path.join(other, "printed.json"), first.stdout);
      const again = await taskfan(["--config", "printed.json", "config", "print"], other, secrets);
      expect(again.code).toBe(0);
      expect(again.stdout).toBe(first.stdout);
    } finally {
      rm();
    }
  });

  it("exits 2 naming the key of an invalid file, before touching anything", async () => {
    const { dir: other, remove: rm } = tempDir();
    try {
      writeFileSync(
        path.join(other, "taskfan.config.json"),
        JSON.stringify({ servers: { git: { timeout: "soon" } } }),
      );
      const r = await taskfan(["create", "--title", "never"], other);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("servers.git.timeout");
      const started = await taskfan(["task", "x"], other);
      expect(started.stderr).toContain("servers.git.timeout");
      const { existsSync } = await import("node:fs");
      expect(existsSync(path.join(other, "data"))).toBe(false);
    } finally {
      rm();
    }
  });
});

describe("a database a newer taskfan migrated", () => {
  it("is refused with the versions named (exit 2), and left as it was", async () => {
    const { dir: own, remove: removeOwn } = tempDir();
    try {
      const file = path.join(own, "data", "taskfan.db");
      mkdirSync(path.dirname(file), { recursive: true });
      const db = new Database(file);
      db.pragma("user_version = 999");
      db.close();
      const r = await taskfan(["task", "abcdefghij"], own);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /^taskfan: the database \(.*taskfan\.db\) has schema version 999, newer than this taskfan knows \(\d+\): run the taskfan that migrated it, or a newer one\n$/,
      );
      const again = new Database(file, { readonly: true });
      expect(again.pragma("user_version", { simple: true })).toBe(999);
      expect(again.prepare("SELECT count(*) AS n FROM sqlite_master").get()).toEqual({ n: 0 });
      again.close();
    } finally {
      removeOwn();
    }
  });
});
