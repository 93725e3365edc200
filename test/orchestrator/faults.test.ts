import { once } from "node:events";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { ConfigFile } from "../../src/config/schema.js";
import { faultServerPath, startHarness, type Harness } from "../core-harness.js";
import { onlyServers } from "../helpers.js";

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.stop();
});

/** deltatask played by the fault server, next to a well-behaved memory server. */
async function withFault(fault: string, extra: NonNullable<ConfigFile["servers"]>["deltatask"] = {}) {
  const h = await startHarness({
    servers: onlyServers(["deltatask", "memory"], {
      deltatask: {
        command: process.execPath,
        args: [faultServerPath],
        env: {
          FAULT: fault,
          CALLS_FILE: "${DATA_DIR}/calls.txt",
          CANCELS_FILE: "${DATA_DIR}/cancels.txt",
          ROOTS_FILE: "${DATA_DIR}/roots.json",
        },
        // Not required here: these tests watch one failure, not the rollback it would cause.
        required: false,
        ...extra,
      },
    }),
  });
  harnesses.push(h);
  return h;
}

function lines(h: Harness, file: string): string[] {
  try {
    return readFileSync(path.join(h.config.data_dir, file), "utf8").split("\n").filter(Boolean);
  } catch {
    return [];
  }
}
const calls = (h: Harness) => lines(h, "calls.txt");

describe("a misbehaving server", () => {
  it("reports a failure inside a normal reply as that server's message, without retrying", async () => {
    const h = await withFault("error-payload");
    const id = await h.core.orchestrator.createTask({ title: "payload error" });
    const view = await h.core.orchestrator.waitForSettled(id, 20_000);
    expect(view?.task.status).toBe("partial");
    const [delta, memory] = view!.operations;
    expect(delta).toMatchObject({ server: "deltatask", status: "failed", retryable: false, attempts: 1 });
    expect(delta!.lastError).toBe("deltatask: create_task failed: disk full");
    expect(memory).toMatchObject({ server: "memory", status: "done" });
    expect(calls(h)).toHaveLength(1);
  });

  it("records garbage as an unreadable reply, never a crash", async () => {
    const h = await withFault("garbage");
    const id = await h.core.orchestrator.createTask({ title: "garbage" });
    const view = await h.core.orchestrator.waitForSettled(id, 20_000);
    expect(view!.operations[0]).toMatchObject({ status: "failed", retryable: false });
    expect(view!.operations[0]!.lastError).toMatch(/unreadable reply: expected JSON/);
  });

  it("records a reply that breaks the tool's own output schema as that server's error", async () => {
    const h = await withFault("bad-structure");
    const id = await h.core.orchestrator.createTask({ title: "wrong shape" });
    const view = await h.core.orchestrator.waitForSettled(id, 20_000);
    expect(view!.operations[0]).toMatchObject({ server: "deltatask", status: "failed", retryable: false });
    expect(view!.operations[0]!.lastError).toBe(
      "deltatask: create_task returned an unreadable reply: Structured content does not match the tool's output schema: data/id must be string",
    );
    expect(view!.operations[1]).toMatchObject({ server: "memory", status: "done" });
  });

  it("turns an isError result into a failure with the server's text", async () => {
    const h = await withFault("is-error");
    const id = await h.core.orchestrator.createTask({ title: "denied" });
    const view = await h.core.orchestrator.waitForSettled(id, 20_000);
    expect(view!.operations[0]!.lastError).toBe("deltatask: create_task failed: Access denied");
  });

  it("times out a slow call with our own timeout, then finds the record instead of creating it twice", async () => {
    const h = await withFault("slow-first", { timeout: 0.5, retry_attempts: 2 });
    const id = await h.core.orchestrator.createTask({ title: "slow" });
    const view = await h.core.orchestrator.waitForSettled(id, 20_000);
    expect(view?.task.status).toBe("done");
    expect(view!.operations[0]).toMatchObject({ status: "done", attempts: 2 });
    expect(calls(h)).toEqual(["slow"]);
    // The server hears of the call we gave up on, and of no call it answered.
    expect(lines(h, "cancels.txt")).toHaveLength(1);
  });

  it("sends no cancellation for calls that were answered", async () => {
    const h = await withFault("none");
    for (const title of ["one", "two", "three"]) {
      const id = await h.core.orchestrator.createTask({ title });
      expect((await h.core.orchestrator.waitForSettled(id, 20_000))?.task.status).toBe("done");
    }
    await h.core.checkHealth();
    expect(calls(h)).toHaveLength(3);
    expect(lines(h, "cancels.txt")).toEqual([]);
    // Asked for roots, taskfan answers that it has none to offer (not "unsupported").
    expect(JSON.parse(lines(h, "roots.json")[0]!)).toEqual({ roots: [] });
  });

  it("parks the operations of a server that cannot start; the task is partial and says why", async () => {
    const h = await startHarness({
      servers: onlyServers(["deltatask", "memory"], {
        deltatask: { command: process.execPath, args: ["/nonexistent/server.js"] },
      }),
    });
    harnesses.push(h);
    expect(h.core.started.find((s) => s.server === "deltatask")?.ok).toBe(false);
    const id = await h.core.orchestrator.createTask({ title: "one server down" });
    const view = await h.core.orchestrator.waitForSettled(id, 20_000);
    expect(view?.task.status).toBe("partial");
    const delta = view!.operations.find((o) => o.server === "deltatask")!;
    expect(delta.status).toBe("pending");
    expect(delta.waiting).toMatch(/deltatask is unavailable|server unavailable/);
    expect(view!.operations.find((o) => o.server === "memory")!.status).toBe("done");
  });
});

describe("circuit breaker and restarts", async () => {
  it("opens a server's breaker after repeated faults; later operations wait instead of failing", async () => {
    const h = await startHarness({
      circuit_breaker_threshold: 2,
      circuit_breaker_half_open_after: 600,
      servers: onlyServers(["deltatask", "memory"], {
        deltatask: {
          command: process.execPath,
          args: [faultServerPath],
          env: { FAULT: "garbage" },
          required: false,
        },
      }),
    });
    harnesses.push(h);
    const states: string[] = [];
    h.core.fleet.on("breaker", (e) => states.push(`${e.server}:${e.state}`));
    for (const title of ["one", "two"]) {
      const id = await h.core.orchestrator.createTask({ title });
      const view = await h.core.orchestrator.waitForSettled(id, 20_000);
      expect(view!.operations[0]!.status).toBe("failed");
    }
    expect(states).toEqual(["deltatask:open"]);
    const id = await h.core.orchestrator.createTask({ title: "three" });
    const view = await h.core.orchestrator.waitForSettled(id, 20_000);
    expect(view?.task.status).toBe("partial");
    const delta = view!.operations.find((o) => o.server === "deltatask")!;
    expect(delta).toMatchObject({ status: "pending", attempts: 0 });
    expect(delta.waiting).toMatch(/circuit open/);
    expect(view!.operations.find((o) => o.server === "memory")!.status).toBe("done");
  });

  it("restarts a server whose process died, and the next operation succeeds", async () => {
    const h = await startHarness({ servers: onlyServers(["memory"]) });
    harnesses.push(h);
    const before = h.core.fleet.pid("memory")!;
    const restarted = once(h.core.fleet, "restarted");
    process.kill(before, "SIGKILL");
    const [event] = await restarted;
    expect(event).toMatchObject({ server: "memory", restarts: 1 });
    const id = await h.core.orchestrator.createTask({ title: "after the crash" });
    const view = await h.core.orchestrator.waitForSettled(id, 20_000);
    expect(view?.task.status).toBe("done");
    const after = h.core.fleet.pid("memory");
    expect(after).toBeDefined();
    expect(after).not.toBe(before);
  });
});
