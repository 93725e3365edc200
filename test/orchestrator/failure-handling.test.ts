import { once } from "node:events";
import { existsSync, readFileSync, unlinkSync } from "node:fs";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ConfigFile } from "../../src/config/schema.js";
import { taskMarker } from "../../src/domain/task.js";
import { faultServerPath, startHarness, type Harness } from "../core-harness.js";
import { storeEngines, type Engine } from "../store-engines.js";
import { onlyServers } from "../helpers.js";

// First: the stores close after the cores that use them (hooks run in reverse).
const engines = storeEngines();
/** The store engine of the test that runs. */
let engine: Engine;
const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.stop();
});

async function harness(file: ConfigFile): Promise<Harness> {
  const h = await startHarness(file, undefined, { store: await engine.open() });
  harnesses.push(h);
  return h;
}

/** deltatask played by the fault server, its tasks and calls kept in files under DATA_DIR. */
function faulty(fault: string, extra: Record<string, unknown> = {}, env: Record<string, string> = {}) {
  return {
    command: process.execPath,
    args: [faultServerPath],
    env: {
      FAULT: fault,
      CALLS_FILE: "${DATA_DIR}/calls.txt",
      TASKS_FILE: "${DATA_DIR}/fault-tasks.json",
      ...env,
    },
    ...extra,
  };
}

const lines = (h: Harness, file: string) =>
  existsSync(path.join(h.config.data_dir, file))
    ? readFileSync(path.join(h.config.data_dir, file), "utf8").split("\n").filter(Boolean)
    : [];
const faultTasks = (h: Harness): Array<{ tags: string[] }> =>
  existsSync(path.join(h.config.data_dir, "fault-tasks.json"))
    ? JSON.parse(readFileSync(path.join(h.config.data_dir, "fault-tasks.json"), "utf8"))
    : [];

function settledAs(h: Harness, id: string, status: string) {
  return new Promise<void>((resolve, reject) => {
    const on = (v: { task: { id: string; status: string } }) => {
      if (v.task.id === id && v.task.status === status) {
        h.core.orchestrator.off("task.settled", on);
        resolve();
      }
    };
    // Listening first: a task that settles while it is read is heard either way.
    h.core.orchestrator.on("task.settled", on);
    h.core.orchestrator.getTask(id).then((view) => {
      if (view?.task.status === status && view.task.settledAt !== null) {
        h.core.orchestrator.off("task.settled", on);
        resolve();
      }
    }, reject);
  });
}

describe.each(engines)("on $name", (e) => {
  beforeEach(() => {
    engine = e;
  });

  describe("transient failures", () => {
    it("retries a call that hangs twice (our timeout each time) and succeeds on the third attempt", async () => {
      const h = await harness({
        servers: onlyServers(["deltatask"], {
          deltatask: faulty("hang-n", { timeout: 0.3, retry_attempts: 3 }, { N: "2" }),
        }),
      });
      const id = await h.core.orchestrator.createTask({ title: "third time" });
      const view = await h.core.orchestrator.waitForSettled(id, 20_000);
      expect(view?.task.status).toBe("done");
      expect(view!.operations[0]).toMatchObject({ status: "done", attempts: 3 });
      expect(faultTasks(h).filter((t) => t.tags.includes(taskMarker(id)))).toHaveLength(1);
    });

    it("survives a server that exits mid-call: restarted, looked up, no second copy", async () => {
      const h = await harness({
        servers: onlyServers(["deltatask", "memory"], { deltatask: faulty("exit-first") }),
      });
      const restarted = once(h.core.fleet, "restarted");
      const id = await h.core.orchestrator.createTask({ title: "exit mid-call" });
      await restarted;
      await settledAs(h, id, "done");
      expect(faultTasks(h).filter((t) => t.tags.includes(taskMarker(id)))).toHaveLength(1);
      expect(lines(h, "calls.txt")).toEqual(["exit mid-call"]);
      expect((await h.core.getStats()).restarts.deltatask).toBe(1);
    });

    it("recovers an operation that failed on a transient error once the server answers again", async () => {
      const h = await harness({
        recovery: { delay: 0.2 },
        dispatcher: { poll_interval: 0.1 },
        servers: onlyServers(["deltatask"], {
          deltatask: faulty("hang-n", { timeout: 0.3, retry_attempts: 1 }, { N: "2" }),
        }),
      });
      const id = await h.core.orchestrator.createTask({ title: "later" });
      const first = await h.core.orchestrator.waitForSettled(id, 20_000);
      expect(first?.task.status).toBe("failed");
      expect(first!.operations[0]).toMatchObject({ status: "failed", retryable: true });
      await settledAs(h, id, "done");
      expect(faultTasks(h).filter((t) => t.tags.includes(taskMarker(id)))).toHaveLength(1);
    });

    it("gives up on an operation older than the configured age", async () => {
      const h = await harness({
        recovery: { delay: 0.1, give_up_after: 0.5 },
        dispatcher: { poll_interval: 0.1 },
        servers: onlyServers(["deltatask"], {
          deltatask: faulty("hang-n", { timeout: 0.2, retry_attempts: 0, required: false }, { N: "1000" }),
        }),
      });
      const id = await h.core.orchestrator.createTask({ title: "never" });
      await vi.waitFor(
        async () =>
          expect((await h.core.orchestrator.getTask(id))!.operations[0]).toMatchObject({
            status: "failed",
            retryable: false,
          }),
        { timeout: 10_000, interval: 50 },
      );
      expect((await h.core.orchestrator.getTask(id))!.operations[0]!.lastError).toMatch(
        /^gave up after 0 h: /,
      );
    });
  });

  describe("noisy servers", async () => {
    it("drains a server that floods stderr; its tasks and the others' finish", async () => {
      const h = await harness({
        servers: onlyServers(["deltatask", "memory"], { deltatask: faulty("flood-stderr") }),
      });
      const ids = await Promise.all(
        Array.from({ length: 10 }, (_, i) => h.core.orchestrator.createTask({ title: `noisy ${i}` })),
      );
      for (const id of ids)
        expect((await h.core.orchestrator.waitForSettled(id, 20_000))?.task.status).toBe("done");
      expect(lines(h, "calls.txt")).toHaveLength(10);
    });
  });

  describe("rollback", async () => {
    it("undoes a task everywhere when a required server rejects it", async () => {
      const h = await harness({
        servers: onlyServers(["deltatask", "memory", "filesystem", "time-tracker", "notifications"], {
          deltatask: faulty("error-payload"),
        }),
      });
      const id = await h.core.orchestrator.createTask({ title: "doomed" });
      await settledAs(h, id, "rolled_back");
      const view = (await h.core.orchestrator.getTask(id))!;
      expect(view.task.statusReason).toBe(
        "deltatask failed for good: deltatask: create_task failed: disk full",
      );
      const creates = view.operations.filter((o) => o.kind === "create");
      expect(creates.find((o) => o.server === "notifications")!.status).toBe("skipped");
      for (const undo of view.operations.filter((o) => o.kind === "compensate"))
        expect(undo.status).toBe("done");
      // Nothing of the task is left on any server.
      const data = h.config.data_dir;
      expect(readFileSync(path.join(data, "memory", "memory.jsonl"), "utf8")).not.toContain(id);
      expect(existsSync(path.join(data, "files", "tasks", `${id}.md`))).toBe(false);
      const tracked = existsSync(path.join(data, "time-tracker", "time-tracker.json"))
        ? JSON.parse(readFileSync(path.join(data, "time-tracker", "time-tracker.json"), "utf8")).tasks
        : [];
      expect(tracked.filter((t: { tags: string[] }) => t.tags.includes(taskMarker(id)))).toEqual([]);
      expect(existsSync(path.join(data, "notifications", "messages.json"))).toBe(false);
      expect(await h.core.store.alerts.recent(10)).toContainEqual(
        expect.objectContaining({
          kind: "rolled_back",
          taskId: id,
          details: { reason: view.task.rollbackReason },
        }),
      );
    });
  });

  describe("sync", async () => {
    it("re-creates a record that vanished from its server and counts the repair (sync_deletes: 0)", async () => {
      // 0: a record gone is never taken for a delete made there (see sync-changes.test.ts).
      const h = await harness({ servers: onlyServers(["memory", "filesystem"]), sync_deletes: 0 });
      const id = await h.core.orchestrator.createTask({ title: "drifts away" });
      expect((await h.core.orchestrator.waitForSettled(id, 20_000))?.task.status).toBe("done");
      const file = path.join(h.config.data_dir, "files", "tasks", `${id}.md`);
      unlinkSync(file);
      const report = await h.core.maintenance.sync();
      const again = settledAs(h, id, "done");
      expect(report).toMatchObject({ repaired: 1, errors: 0 });
      expect(report.checked).toBeGreaterThanOrEqual(2);
      await again;
      expect(existsSync(file)).toBe(true);
      expect((await h.core.getStats()).drift_repairs).toBe(1);
    });
  });

  describe("health", async () => {
    it("declares a crash loop after repeated restarts, rates it ERROR and raises an alert", async () => {
      const h = await harness({
        restart: { max_delay: 0.1, crash_loop_restarts: 2, crash_loop_window: 60 },
        servers: onlyServers(["deltatask", "memory"], {
          deltatask: faulty("exit-on-start", { required: false }),
        }),
      });
      const [loop] = await once(h.core.fleet, "crash-loop");
      expect(loop).toMatchObject({ server: "deltatask", restarts: 2 });
      const health = h.core.getHealth().find((s) => s.server === "deltatask")!;
      expect(health).toMatchObject({ status: "ERROR", reason: "crash loop: 2 restarts in 60 s" });
      expect(h.core.getHealth().find((s) => s.server === "memory")!.status).toBe("ONLINE");
      // Both are recorded in the order they happened, each once the one before is stored.
      await vi.waitFor(async () =>
        expect((await h.core.store.alerts.open()).map((a) => `${a.server}:${a.kind}`)).toEqual(
          expect.arrayContaining(["deltatask:error", "deltatask:crash_loop"]),
        ),
      );
    });

    it("refuses a server that lacks a tool its role needs, naming the tool", async () => {
      const h = await harness({
        servers: onlyServers(["deltatask"], { deltatask: faulty("missing-tool", { required: false }) }),
      });
      expect(h.core.started[0]).toMatchObject({
        ok: false,
        error: "deltatask does not offer the tools taskfan needs: list_tasks",
      });
      const [health] = await h.core.checkHealth();
      expect(health).toMatchObject({ status: "ERROR" });
      expect(health!.reason).toContain("list_tasks");
    });

    it("reports every server ONLINE with latency after a probe, and the stats add up", async () => {
      const h = await harness({ servers: onlyServers(["memory", "time-tracker"]) });
      const id = await h.core.orchestrator.createTask({ title: "counted" });
      await h.core.orchestrator.waitForSettled(id, 20_000);
      const health = await h.core.checkHealth();
      expect(health.map((s) => [s.server, s.status])).toEqual([
        ["memory", "ONLINE"],
        ["time-tracker", "ONLINE"],
      ]);
      expect(health[0]!.lastResponseMs).toBeGreaterThan(0);
      const stats = await h.core.getStats();
      expect(stats).toMatchObject({
        server_health: { memory: "ONLINE", "time-tracker": "ONLINE" },
        total_operations: 2,
        error_rates: { memory: 0, "time-tracker": 0 },
        queue_size: 0,
        tasks_by_status: { done: 1 },
        drift_repairs: 0,
      });
      // One call each: its p50 and p95 are that call's stored duration.
      const view = (await h.core.orchestrator.getTask(id))!;
      const ms = (server: string) => view.operations.find((o) => o.server === server)!.durationMs;
      expect(stats.latency_ms).toEqual({
        memory: { p50: ms("memory"), p95: ms("memory") },
        "time-tracker": { p50: ms("time-tracker"), p95: ms("time-tracker") },
      });
    });
  });
});
