import Database from "better-sqlite3";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServerName } from "../../src/config/schema.js";
import { taskMarker, type Task } from "../../src/domain/task.js";
import { startHarness, type Harness } from "../core-harness.js";

// One real fleet of all ten servers over stdio, on a fresh DATA_DIR.
let h: Harness;
let task: Task;

const readJson = (...p: string[]) => JSON.parse(readFileSync(path.join(h.config.data_dir, ...p), "utf8"));

beforeAll(async () => {
  h = await startHarness();
  expect(h.core.started.filter((s) => !s.ok)).toEqual([]);
  const deadline = new Date(Date.now() + 3 * 86_400_000).toISOString();
  const id = await h.core.orchestrator.createTask({
    title: "Ship the quarterly report",
    description: "Numbers from finance, charts from the team",
    priority: 2,
    deadline,
    tags: ["work", "#report"],
  });
  const view = await h.core.orchestrator.waitForSettled(id, 30_000);
  task = view!.task;
});

afterAll(() => h?.stop());

describe("a task fanned out to the ten real servers", () => {
  it("settles done with a remote id per server", async () => {
    const view = (await h.core.orchestrator.getTask(task.id))!;
    expect(view.task.status).toBe("done");
    expect(view.operations).toHaveLength(10);
    for (const op of view.operations) {
      expect(op.status, `${op.server}: ${op.lastError}`).toBe("done");
      expect(op.remoteId).toBeTruthy();
      expect(op.attempts).toBe(1);
    }
  });

  it("runs backup after filesystem, notifications after the required servers, the rest at once", async () => {
    const ops = new Map((await h.core.orchestrator.getTask(task.id))!.operations.map((o) => [o.server, o]));
    const waits = Object.fromEntries([...ops].map(([s, o]) => [s, o.waitsFor]));
    expect(waits).toMatchObject({
      notifications: ["deltatask", "shrimp-task-manager"],
      backup: ["filesystem"],
      git: [],
      memory: [],
    });
    for (const [server, op] of ops) {
      for (const first of op.waitsFor) {
        expect(op.startedAt, `${server} after ${first}`).toBeGreaterThanOrEqual(ops.get(first)!.finishedAt!);
      }
    }
    // Nothing else waited: eight creates were under way before the first of them finished.
    const firstDone = h.started.findIndex((e) => e.server === h.finished[0]!.server);
    expect(h.started.slice(0, Math.max(firstDone + 1, 8)).map((e) => e.server)).not.toContain("backup");
    expect(
      h.started
        .slice(0, 8)
        .map((e) => e.server)
        .sort(),
    ).toEqual([...ops.keys()].filter((s) => ops.get(s)!.waitsFor.length === 0).sort());
  });

  it("is in each server's own data", async () => {
    const marker = taskMarker(task.id);
    const remote = Object.fromEntries(
      (await h.core.orchestrator.getTask(task.id))!.operations.map((o) => [o.server, o.remoteId]),
    ) as Record<ServerName, string>;

    const delta = readJson("deltatask", "tasks.json").tasks.filter((t: { tags: string[] }) =>
      t.tags.includes(marker),
    );
    expect(delta).toHaveLength(1);
    expect(delta[0]).toMatchObject({ id: remote.deltatask, urgency: 4, deadline: task.deadline });

    const shrimp = readJson("shrimp", "tasks.json").tasks.filter(
      (t: { id: string }) => t.id === remote["shrimp-task-manager"],
    );
    expect(shrimp).toHaveLength(1);
    expect(shrimp[0].name).toBe(`[${marker}] Ship the quarterly report`);

    const kv = new Database(path.join(h.config.data_dir, "hpkv-memory", "context.db"), { readonly: true });
    const items = kv
      .prepare("SELECT key, value FROM context_items WHERE key = ?")
      .all(remote["hpkv-memory"]) as Array<{ value: string }>;
    kv.close();
    expect(items).toHaveLength(1);
    expect(JSON.parse(items[0]!.value)).toMatchObject({ id: task.id, tags: ["work", "report"] });

    const graph = readFileSync(path.join(h.config.data_dir, "memory", "memory.jsonl"), "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(graph.filter((e) => e.name === remote.memory)).toHaveLength(1);

    const todos = readJson("calendar", "calendar.json").calendars["/taskfan/tasks/"];
    expect(todos.filter((t: { uid: string }) => t.uid === remote.calendar)).toEqual([
      expect.objectContaining({ summary: `Ship the quarterly report [${marker}]`, due: task.deadline }),
    ]);

    const messages = readJson("notifications", "messages.json").messages.filter(
      (m: { sequence_id: string }) => m.sequence_id === marker,
    );
    expect(messages).toHaveLength(1);

    const tracked = readJson("time-tracker", "time-tracker.json").tasks.filter((t: { tags: string[] }) =>
      t.tags.includes(marker),
    );
    expect(tracked).toHaveLength(1);

    const repo = path.join(h.config.data_dir, "git", "tasks");
    const log = execFileSync(
      "git",
      ["-C", repo, "log", "--format=%H %B", `--grep=Taskfan-Task: ${task.id}`],
      { encoding: "utf8" },
    );
    expect(log.startsWith(remote.git)).toBe(true);

    const file = path.join(h.config.data_dir, "files", "tasks", `${task.id}.md`);
    expect(remote.filesystem).toBe(file);
    expect(readFileSync(file, "utf8")).toContain("# Ship the quarterly report");

    const backupRoot = path.join(h.config.data_dir, "backup", "backups");
    const metas = readdirSync(backupRoot).flatMap((folder) =>
      readdirSync(path.join(backupRoot, folder)).map((stamp) =>
        JSON.parse(readFileSync(path.join(backupRoot, folder, stamp, "backup-metadata.json"), "utf8")),
      ),
    );
    const mine = metas.filter((m) => m.timestamp === remote.backup);
    expect(mine).toHaveLength(1);
    // The backup ran after the filesystem wrote the record, so the snapshot holds it.
    expect(mine[0].files).toEqual([`${task.id}.md`]);
    expect(mine[0].agent_context).toContain(marker);
  });

  it("finds the task again on every server, and each compensation removes it", async () => {
    const view = (await h.core.orchestrator.getTask(task.id))!;
    for (const op of view.operations) {
      const server = op.server as ServerName;
      const integration = h.core.fleet.integration(server);
      const byMarker = await h.core.fleet.execute(
        server,
        ({ call, signal }) => integration.verify(task, null, call, signal),
        AbortSignal.timeout(20_000),
      );
      expect(byMarker, server).toEqual({
        found: true,
        remoteId: op.remoteId,
        // Where the server keeps a state and fields whole, they read back as taskfan wrote
        // them: sync compares them.
        ...(server === "deltatask" || server === "hpkv-memory"
          ? {
              state: "open",
              fields: {
                title: task.title,
                description: task.description,
                priority: task.priority,
                deadline: task.deadline,
                tags: task.tags,
              },
            }
          : {}),
        ...(server === "calendar"
          ? {
              state: "open",
              fields: { title: task.title, ...(task.deadline ? { deadline: task.deadline } : {}) },
            }
          : {}),
      });
      await h.core.fleet.execute(
        server,
        ({ call, signal }) => integration.compensate(task, op.remoteId!, call, signal),
        AbortSignal.timeout(20_000),
      );
      if (server === "git") continue; // undo is a new commit; history keeps the original
      const after = await h.core.fleet.execute(
        server,
        ({ call, signal }) => integration.verify(task, op.remoteId, call, signal),
        AbortSignal.timeout(20_000),
      );
      expect(after, server).toEqual({ found: false });
    }
    const repo = path.join(h.config.data_dir, "git", "tasks");
    const log = execFileSync("git", ["-C", repo, "log", "-1", "--format=%B"], { encoding: "utf8" });
    expect(log).toContain(`Taskfan-Withdrawn: ${task.id}`);
    expect(existsSync(path.join(h.config.data_dir, "files", "tasks", `${task.id}.md`))).toBe(false);
  });
});
