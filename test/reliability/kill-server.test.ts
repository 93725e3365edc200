import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";
import { taskMarker } from "../../src/domain/task.js";
import { startHarness, type Harness } from "../core-harness.js";
import { onlyServers } from "../helpers.js";

let h: Harness | undefined;
afterAll(() => h?.stop());

describe("a server killed mid fan-out", () => {
  it("is restarted; its operations complete after the restart with no duplicate on it", async () => {
    h = await startHarness({ servers: onlyServers(["deltatask", "memory", "time-tracker"]) });
    const core = h.core;
    const before = core.fleet.pid("deltatask")!;
    let killed = false;
    core.orchestrator.on("operation.done", (e) => {
      if (!killed && e.server === "deltatask") {
        killed = true;
        process.kill(before, "SIGKILL");
      }
    });
    const ids = await Promise.all(
      Array.from({ length: 30 }, (_, i) => core.orchestrator.createTask({ title: `task ${i}` })),
    );
    await vi.waitFor(async () => expect(await core.store.tasks.countByStatus()).toEqual({ done: 30 }), {
      timeout: 30_000,
      interval: 50,
    });
    expect(killed).toBe(true);
    expect(core.fleet.pid("deltatask")).not.toBe(before);
    expect((await core.getStats()).restarts.deltatask).toBeGreaterThanOrEqual(1);
    const stored = JSON.parse(readFileSync(path.join(h.config.data_dir, "deltatask", "tasks.json"), "utf8"))
      .tasks as Array<{ tags: string[] }>;
    for (const id of ids)
      expect(
        stored.filter((t) => t.tags.includes(taskMarker(id))),
        id,
      ).toHaveLength(1);
    expect(stored).toHaveLength(30);
  });
});
