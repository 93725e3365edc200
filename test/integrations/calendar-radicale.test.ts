import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { taskMarker } from "../../src/domain/task.js";
import { startHarness, type Harness } from "../core-harness.js";
import { freePort, onlyServers } from "../helpers.js";

// caldav-mcp from npm against Debian's Radicale, started by taskfan itself (.ci/run installs it).
let h: Harness;
beforeAll(async () => {
  const port = await freePort();
  h = await startHarness({
    servers: onlyServers(["calendar"], { calendar: { settings: { caldav: { radicale: true, port } } } }),
  });
});
afterAll(() => h?.stop());

describe("calendar through caldav-mcp and Radicale", () => {
  it("launches caldav-mcp, not the local stand-in", async () => {
    expect(h.config.servers.calendar.args[0]).toMatch(/caldav-mcp[/\\]dist[/\\]index\.js$/);
    expect(h.core.started).toEqual([expect.objectContaining({ server: "calendar", ok: true })]);
  });

  it("stores the task as a VTODO in Radicale, due at the deadline, and deletes it on undo", async () => {
    const deadline = "2030-06-01T09:30:00.000Z";
    const id = await h.core.orchestrator.createTask({ title: "Book the venue, catering; music", deadline });
    const view = await h.core.orchestrator.waitForSettled(id, 20_000);
    expect(view?.task.status).toBe("done");
    const uid = view!.operations[0]!.remoteId!;

    const collection = path.join(
      h.config.data_dir,
      "radicale",
      "collections",
      "collection-root",
      "taskfan",
      "tasks",
    );
    const ics = readdirSync(collection).filter((f) => f.endsWith(".ics"));
    const mine = ics
      .map((f) => readFileSync(path.join(collection, f), "utf8"))
      .filter((t) => t.includes(`UID:${uid}`));
    expect(mine).toHaveLength(1);
    // RFC 5545 escapes commas and semicolons in text.
    expect(mine[0]).toContain(`SUMMARY:Book the venue\\, catering\\; music [${taskMarker(id)}]`);
    expect(mine[0]).toMatch(/DUE(;[^:]*)?:20300601T093000Z/);

    const task = view!.task;
    const integration = h.core.fleet.integration("calendar");
    // Read back as written: sync sees no change a person did not make.
    expect(
      await h.core.fleet.execute(
        "calendar",
        ({ call, signal }) => integration.verify(task, uid, call, signal),
        AbortSignal.timeout(10_000),
      ),
    ).toEqual({ found: true, remoteId: uid, state: "open", title: task.title });
    await h.core.fleet.execute(
      "calendar",
      ({ call, signal }) => integration.compensate(task, uid, call, signal),
      AbortSignal.timeout(10_000),
    );
    const after = await h.core.fleet.execute(
      "calendar",
      ({ call, signal }) => integration.verify(task, null, call, signal),
      AbortSignal.timeout(10_000),
    );
    expect(after).toEqual({ found: false });
  });
});
