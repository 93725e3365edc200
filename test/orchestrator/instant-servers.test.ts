import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHarness, type Harness } from "../core-harness.js";
import { instantRoles } from "../helpers.js";

// The bench's store-bound case runs on these servers: if a reply stops having the shape an
// integration reads, its figures would measure failures, so the shapes are checked here.
let h: Harness;

beforeAll(async () => {
  h = await startHarness({ servers: instantRoles() });
});

afterAll(() => h?.stop());

describe("the instant servers of the bench", () => {
  it("start as all ten roles, with every tool taskfan needs", () => {
    expect(h.core.started.map((s) => [s.server, s.ok, s.error ?? null])).toEqual(
      h.core.started.map((s) => [s.server, true, null]),
    );
    expect(h.core.started).toHaveLength(10);
  });

  it("take a task with a deadline and tags on every server, each in one attempt", async () => {
    const id = await h.core.orchestrator.createTask({
      title: "Bench shape check",
      description: "two\nlines",
      priority: 2,
      deadline: new Date(Date.now() + 86_400_000).toISOString(),
      tags: ["bench"],
    });
    const view = (await h.core.orchestrator.waitForSettled(id, 20_000))!;
    expect(view.task.status).toBe("done");
    expect(view.operations.map((o) => [o.server, o.status, o.attempts, o.lastError ?? null])).toEqual(
      view.operations.map((o) => [o.server, "done", 1, null]),
    );
    expect(view.operations.every((o) => o.remoteId)).toBe(true);
  });
});
