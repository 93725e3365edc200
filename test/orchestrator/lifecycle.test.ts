import { afterAll, describe, expect, it } from "vitest";
import { taskMarker, type TaskView } from "../../src/domain/task.js";
import { ChangeRefusedError, IdempotencyConflictError, VersionMismatchError } from "../../src/errors.js";
import type { TaskChangeInput } from "../../src/orchestrator/orchestrator.js";
import { startHarness, type Harness } from "../core-harness.js";
import { expectDeletedFromServers, taskOnServers } from "../server-records.js";
import { storeEngines } from "../store-engines.js";
import { overHttp, serve, type Served } from "../served.js";
import { tempDir, terminate } from "../helpers.js";

/**
 * One task's whole life on the ten real servers over stdio, on each store: created, edited,
 * completed, reopened and deleted, each server's own data read back after every step.
 */
const engines = storeEngines();

/** Each store over stdio, and SQLite with every role served over Streamable HTTP. */
const setups = [
  ...engines.map((engine) => ({ engine, name: engine.name, transport: "stdio" as const })),
  { engine: engines[0]!, name: "SQLite", transport: "http" as const },
];

describe.each(setups)(
  "the task lifecycle on the ten real servers ($name, $transport)",
  ({ engine, transport }) => {
    let h: Harness;
    let id: string;
    let served: Served | undefined;
    let servedDir: { dir: string; remove: () => void } | undefined;
    /** Where the servers keep their data: taskfan's own, or that of the `servers serve` process. */
    let dataDir = "";

    const records = () => taskOnServers(dataDir, id);

    /** Changes the task and waits for every server to have it: each change done once there, or skipped. */
    const change = async (input: TaskChangeInput, key?: string): Promise<TaskView> => {
      const result = await h.core.orchestrator.changeTask(id, input, { source: "test", idempotencyKey: key });
      expect(result.changed).toBe(true);
      const view = (await h.core.orchestrator.waitForChanges(id, 60_000))!;
      const ops = view.operations.filter(
        (o) => o.kind === input.kind && o.idempotencyKey.endsWith(`:v${result.task.version}`),
      );
      expect(ops.map((o) => o.server).sort()).toEqual([...h.core.fleet.names].sort());
      for (const o of ops) {
        expect([o.server, o.status, o.attempts], o.lastError ?? "").toEqual([
          o.server,
          o.status === "skipped" ? "skipped" : "done",
          o.status === "skipped" && o.attempts === 0 ? 0 : 1,
        ]);
      }
      return view;
    };
    const statusOf = (view: TaskView, kind: string, server: string) =>
      view.operations.filter((o) => o.kind === kind && o.server === server).at(-1);

    const start = async () => {
      if (transport === "http") {
        servedDir = tempDir();
        served = await serve(servedDir.dir);
        h = await startHarness({ servers: overHttp(served.urls) }, undefined, { store: await engine.open() });
        dataDir = servedDir.dir;
      } else {
        h = await startHarness({}, undefined, { store: await engine.open() });
        dataDir = h.config.data_dir;
      }
      expect(h.core.started.filter((s) => !s.ok)).toEqual([]);
      id = await h.core.orchestrator.createTask(
        {
          title: "Buy milk",
          description: "Two litres",
          priority: 3,
          deadline: new Date(Date.now() + 3 * 86_400_000).toISOString(),
          tags: ["home"],
        },
        { owner: { chatId: "42", userId: 7 } },
      );
      const view = await h.core.orchestrator.waitForSettled(id, 60_000);
      expect(view?.task.status).toBe("done");
    };

    afterAll(async () => {
      await h?.stop();
      if (served) await terminate(served.child);
      servedDir?.remove();
    });

    /** Edits the task on every server, keeping one record on each. */
    const edit = async () => {
      const deadline = new Date(Date.now() + 5 * 86_400_000).toISOString();
      const view = await change(
        { kind: "update", fields: { title: "Buy oat milk", priority: 1, deadline, tags: ["home", "shop"] } },
        "edit-1",
      );
      expect(view.task).toMatchObject({
        title: "Buy oat milk",
        version: 2,
        state: "open",
        chatId: "42",
        userId: 7,
      });
      const r = records();
      expect(r.delta).toMatchObject([
        { title: "Buy oat milk", urgency: 5, deadline, tags: ["home", "shop", taskMarker(id)] },
      ]);
      expect(r.shrimp).toMatchObject([{ name: `[${taskMarker(id)}] Buy oat milk` }]);
      expect(r.saved).toMatchObject([{ title: "Buy oat milk", priority: 1, tags: ["home", "shop"] }]);
      expect(r.entities).toHaveLength(1);
      expect(r.entities[0]!.observations).toEqual(
        expect.arrayContaining(["title: Buy oat milk", "priority: 1", `deadline: ${deadline}`, "tag: shop"]),
      );
      expect(r.entities[0]!.observations).not.toContain("title: Buy milk");
      expect(r.todos).toMatchObject([
        { summary: `Buy oat milk [${taskMarker(id)}]`, due: deadline, sequence: 1 },
      ]);
      expect(r.messages).toHaveLength(1);
      expect(r.messages[0].message).toContain("Buy oat milk");
      expect(r.tracked).toMatchObject([{ name: "Buy oat milk", active: true }]);
      expect(r.subjects).toEqual([`Add task ${id}: Buy milk`, `Edit task ${id}: Buy oat milk`]);
      expect(r.file).toContain("# Buy oat milk");
      expect(r.snapshots).toBe(2);
      // The same key again answers with the change it made, and makes none.
      const again = await h.core.orchestrator.changeTask(
        id,
        { kind: "update", fields: { title: "Buy oat milk", priority: 1, deadline, tags: ["home", "shop"] } },
        { idempotencyKey: "edit-1" },
      );
      expect(again).toMatchObject({ changed: false, replayed: true });
      await expect(
        h.core.orchestrator.changeTask(
          id,
          { kind: "update", fields: { title: "Other" } },
          { idempotencyKey: "edit-1" },
        ),
      ).rejects.toBeInstanceOf(IdempotencyConflictError);
      // Made against version 1, the task is at 2 now.
      await expect(
        h.core.orchestrator.changeTask(id, { kind: "update", fields: { title: "Stale" } }, { ifVersion: 1 }),
      ).rejects.toEqual(new VersionMismatchError(id, 1, 2));
    };

    /** Completes it: done on every server that has a way to say so. */
    const complete = async () => {
      const view = await change({ kind: "complete" });
      expect(view.task).toMatchObject({ state: "done", version: 3 });
      expect(view.task.completedAt).toBeGreaterThan(0);
      // Done is a state, not a toggle: again, nothing changes.
      expect((await h.core.orchestrator.changeTask(id, { kind: "complete" })).changed).toBe(false);
      const r = records();
      expect(r.delta).toMatchObject([{ completed: true }]);
      expect(r.shrimp).toMatchObject([{ status: "completed" }]);
      expect(r.saved).toMatchObject([{ state: "done" }]);
      expect(r.entities[0]!.observations).toContain("state: done");
      expect(r.todos).toMatchObject([{ status: "COMPLETED", percentComplete: 100, sequence: 2 }]);
      expect(r.todos[0].completed).toEqual(expect.any(String));
      expect(r.messages).toMatchObject([{ cleared: true }]);
      expect(r.tracked).toMatchObject([{ active: false }]);
      expect(r.subjects.at(-1)).toBe(`Complete task ${id}: Buy oat milk`);
      expect(r.file).toContain("State: done");
      expect(r.snapshots).toBe(3);
    };

    /** Reopens it; shrimp, which cannot reopen, says so. */
    const reopen = async () => {
      const view = await change({ kind: "reopen" });
      expect(view.task).toMatchObject({ state: "open", version: 4, completedAt: null });
      expect(statusOf(view, "reopen", "shrimp-task-manager")).toMatchObject({
        status: "skipped",
        lastError: "shrimp-task-manager cannot reopen a completed task",
      });
      const r = records();
      expect(r.delta).toMatchObject([{ completed: false }]);
      expect(r.saved[0]).not.toHaveProperty("state");
      expect(r.entities[0]!.observations).not.toContain("state: done");
      expect(r.todos).toMatchObject([{ status: "NEEDS-ACTION", sequence: 3 }]);
      expect(r.todos[0]).not.toHaveProperty("completed");
      expect(r.messages).toHaveLength(1);
      expect(r.messages[0]).not.toHaveProperty("cleared");
      expect(r.tracked).toMatchObject([{ active: true }]);
      expect(r.subjects.at(-1)).toBe(`Reopen task ${id}: Buy oat milk`);
      expect(r.file).not.toContain("State:");
      expect(r.snapshots).toBe(4);
    };

    /** Deletes it everywhere; what stays is git's history, the trash, old snapshots and shrimp's completed task. */
    const remove = async () => {
      const view = await change({ kind: "delete" });
      expect(view.task).toMatchObject({ state: "deleted", version: 5 });
      const r = records();
      expectDeletedFromServers(r, id);
      expect(r.subjects.at(-1)).toBe(`Delete task ${id}: Buy oat milk`);
      expect(r.snapshots).toBe(4);
      expect(r.shrimp).toHaveLength(1);
      expect(statusOf(view, "delete", "shrimp-task-manager")?.lastError).toMatch(/keeps completed tasks/);
      // Final: no change is taken, and sync's read-back never brings the task back.
      await expect(h.core.orchestrator.changeTask(id, { kind: "reopen" })).rejects.toBeInstanceOf(
        ChangeRefusedError,
      );
      const report = await h.core.maintenance.sync();
      expect(report.repaired).toBe(0);
      expect(records().delta).toEqual([]);
      expect((await h.core.store.tasks.changes(id)).map((c) => [c.version, c.kind, c.source])).toEqual([
        [2, "update", "test"],
        [3, "complete", "test"],
        [4, "reopen", "test"],
        [5, "delete", "test"],
      ]);
    };

    it("creates, edits, completes, reopens and deletes a task, each step read back from every server", async () => {
      await start();
      await edit();
      await complete();
      await reopen();
      await remove();
    }, 300_000);
  },
);
