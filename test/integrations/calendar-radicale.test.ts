import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { taskMarker } from "../../src/domain/task.js";
import { startHarness, type Harness } from "../core-harness.js";
import { freePort, onlyServers } from "../helpers.js";
import { owned, ownerChat } from "../bot/owner-chat.js";

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
    ).toEqual({ found: true, remoteId: uid, state: "open", fields: { title: task.title, deadline } });
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

/**
 * A task completed in Radicale's own calendar, as a CalDAV client (a phone's task app) does
 * it: the VTODO fetched, STATUS:COMPLETED with COMPLETED and PERCENT-COMPLETE:100 set and
 * SEQUENCE raised, and put back over the item's ETag. Sync reads it through caldav-mcp.
 */
describe("a change made in Radicale's calendar, found by sync", () => {
  it("completed there: done on the other servers and told to the chat, once; a moved due date comes back", async () => {
    const port = await freePort();
    const g = await startHarness({
      servers: onlyServers(["deltatask", "memory", "calendar"], {
        calendar: { settings: { caldav: { radicale: true, port } } },
      }),
    });
    const chat = ownerChat(g.core);
    try {
      const { orchestrator, maintenance } = g.core;
      const deadline = "2031-03-01T09:00:00.000Z";
      const id = await orchestrator.createTask({ title: "Renew passport", deadline }, owned);
      const created = (await orchestrator.waitForSettled(id, 30_000))!;
      expect(created.task.status).toBe("done");
      const remote = (server: string) => created.operations.find((o) => o.server === server)!.remoteId!;
      const delta = () =>
        JSON.parse(readFileSync(path.join(g.config.data_dir, "deltatask", "tasks.json"), "utf8")).tasks.find(
          (t: { id: string }) => t.id === remote("deltatask"),
        );
      const observations = () =>
        readFileSync(path.join(g.config.data_dir, "memory", "memory.jsonl"), "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { name?: string; observations?: string[] })
          .find((e) => e.name === `taskfan-task-${id}`)?.observations ?? [];

      // The item as Radicale serves it, found by its UID.
      const base = `http://127.0.0.1:${port}`;
      const auth = { authorization: `Basic ${Buffer.from("taskfan:x").toString("base64")}` };
      const collection = path.join(
        g.config.data_dir,
        "radicale",
        "collections",
        "collection-root",
        "taskfan",
        "tasks",
      );
      const file = readdirSync(collection).find(
        (f) =>
          f.endsWith(".ics") &&
          readFileSync(path.join(collection, f), "utf8").includes(`UID:${remote("calendar")}`),
      )!;
      const href = `${base}/taskfan/tasks/${file}`;
      /** Fetches the item, rewrites its VTODO's lines, and puts it back over its ETag. */
      const edit = async (change: (lines: string[]) => string[]) => {
        const got = await fetch(href, { headers: auth });
        expect(got.status).toBe(200);
        const etag = got.headers.get("etag")!;
        const lines = (await got.text()).replace(/\r\n[ \t]/g, "").split(/\r\n/);
        const end = lines.indexOf("END:VTODO");
        const todo = change(lines.slice(0, end));
        const sequence = Number(lines.find((l) => l.startsWith("SEQUENCE:"))?.slice(9) ?? 0);
        const body = [
          ...todo.filter((l) => !l.startsWith("SEQUENCE:")),
          `SEQUENCE:${sequence + 1}`,
          ...lines.slice(end),
        ];
        const put = await fetch(href, {
          method: "PUT",
          headers: { ...auth, "content-type": "text/calendar; charset=utf-8", "if-match": etag },
          body: body.join("\r\n"),
        });
        expect(put.status).toBeLessThan(300);
      };
      const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\.\d+/, "");
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0, errors: 0 });

      // Completed in the calendar, as RFC 5545 asks: all three set together.
      await edit((lines) => [
        ...lines.filter((l) => !/^(STATUS|COMPLETED|PERCENT-COMPLETE)[:;]/.test(l)),
        "STATUS:COMPLETED",
        `COMPLETED:${stamp}`,
        "PERCENT-COMPLETE:100",
      ]);
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1, errors: 0 });
      let view = (await orchestrator.waitForChanges(id, 30_000))!;
      expect(view.task).toMatchObject({ state: "done", version: 2 });
      expect(delta()).toMatchObject({ completed: true });
      expect(observations()).toContain("state: done");
      await chat.told(`✅ Done in calendar: Renew passport (${id}). Marked done on the other servers too.`);
      // Once: the next sync finds nothing, and the chat heard it once.
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });
      expect(chat.tg.texts().filter((t) => t.includes("Done in calendar"))).toHaveLength(1);

      // The due date moved in the calendar: the deadline moves everywhere.
      await edit((lines) => [...lines.filter((l) => !/^DUE[:;]/.test(l)), "DUE:20310315T170000Z"]);
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1 });
      view = (await orchestrator.waitForChanges(id, 30_000))!;
      expect(view.task).toMatchObject({ deadline: "2031-03-15T17:00:00.000Z", state: "done", version: 3 });
      expect(delta()).toMatchObject({ deadline: "2031-03-15T17:00:00.000Z", completed: true });
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });
      expect((await g.core.store.tasks.changes(id)).map((c) => [c.kind, c.source])).toEqual([
        ["complete", "sync:calendar"],
        ["update", "sync:calendar"],
      ]);
    } finally {
      chat.stop();
      await g.stop();
    }
  }, 120_000);
});
