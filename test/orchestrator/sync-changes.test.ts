import { existsSync, readFileSync, unlinkSync } from "node:fs";
import path from "node:path";
import { describe, expect, it, vi } from "vitest";
import type { ServerName } from "../../src/config/schema.js";
import { taskMarker } from "../../src/domain/task.js";
import { formatInZone } from "../../src/time-zone.js";
import { owned, ownerChat } from "../bot/owner-chat.js";
import { startHarness } from "../core-harness.js";
import { onlyServers } from "../helpers.js";
import { storeEngines } from "../store-engines.js";

/**
 * Two-way sync of a task's state: finished in deltatask with deltatask's own tool, reopened
 * in the calendar with the calendar's, each is found by sync, becomes a change of the task on
 * the other servers, and is told to the task's chat, once. taskfan's own changes are never
 * read back as new ones.
 */
const engines = storeEngines();
const chat = owned;

/** The core on these servers, with a bot on a fake Bot API that tells the owner's chat. */
async function synced(engine: (typeof engines)[number], servers: ServerName[]) {
  const g = await startHarness({ servers: onlyServers(servers) }, undefined, { store: await engine.open() });
  const { tg, told, stop } = ownerChat(g.core);
  return {
    g,
    tg,
    told,
    async stop() {
      stop();
      await g.stop();
    },
  };
}

describe.each(engines)("a change made on a server, found by sync ($name)", (engine) => {
  it("finished in deltatask, reopened in the calendar: changed everywhere and told to the chat, once each", async () => {
    const s = await synced(engine, ["deltatask", "memory", "calendar", "time-tracker"]);
    const { g: h, tg, told } = s;
    const { orchestrator, maintenance, fleet } = h.core;
    try {
      const id = await orchestrator.createTask({ title: "Buy milk" }, chat);
      const created = (await orchestrator.waitForSettled(id, 30_000))!;
      const remote = (server: ServerName) => created.operations.find((o) => o.server === server)!.remoteId!;
      const data = (...p: string[]) => JSON.parse(readFileSync(path.join(h.config.data_dir, ...p), "utf8"));
      const delta = () =>
        data("deltatask", "tasks.json").tasks.find((t: { tags: string[] }) =>
          t.tags.includes(taskMarker(id)),
        );
      const todo = () =>
        data("calendar", "calendar.json").calendars["/taskfan/tasks/"].find(
          (t: { uid: string }) => t.uid === remote("calendar"),
        );
      const tracked = () =>
        data("time-tracker", "time-tracker.json").tasks.find((t: { tags: string[] }) =>
          t.tags.includes(taskMarker(id)),
        );
      const observations = () =>
        readFileSync(path.join(h.config.data_dir, "memory", "memory.jsonl"), "utf8")
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l) as { name?: string; observations?: string[] })
          .find((e) => e.name === `taskfan-task-${id}`)?.observations ?? [];
      const calendarUrl = "/taskfan/tasks/";

      // Nothing changed anywhere: sync finds nothing.
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0, repaired: 0, errors: 0 });

      // Finished in deltatask, with deltatask's own tool, behind taskfan's back.
      await fleet.execute(
        "deltatask",
        ({ call, signal }) => call("finish_task", { task_id: remote("deltatask") }, signal),
        AbortSignal.timeout(10_000),
      );
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1, errors: 0 });
      let view = (await orchestrator.waitForChanges(id, 30_000))!;
      expect(view.task).toMatchObject({ state: "done", version: 2 });
      expect(todo()).toMatchObject({ status: "COMPLETED", percentComplete: 100 });
      expect(tracked()).toMatchObject({ active: false });
      expect(observations()).toContain("state: done");
      await told(`✅ Done in deltatask: Buy milk (${id}). Marked done on the other servers too.`);
      // Once: the servers agree now, and the next sync finds nothing.
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });
      expect((await orchestrator.getTask(id))!.task.version).toBe(2);

      // Reopened in the calendar, with the calendar's own tool.
      await fleet.execute(
        "calendar",
        ({ call, signal }) =>
          call("update-todo", { uid: remote("calendar"), calendarUrl, status: "NEEDS-ACTION" }, signal),
        AbortSignal.timeout(10_000),
      );
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1 });
      view = (await orchestrator.waitForChanges(id, 30_000))!;
      expect(view.task).toMatchObject({ state: "open", version: 3 });
      expect(delta()).toMatchObject({ completed: false });
      expect(tracked()).toMatchObject({ active: true });
      expect(observations()).not.toContain("state: done");
      await told(`↩️ Reopened in calendar: Buy milk (${id}). Reopened on the other servers too.`);
      expect((await h.core.store.tasks.changes(id)).map((c) => [c.version, c.kind, c.source])).toEqual([
        [2, "complete", "sync:deltatask"],
        [3, "reopen", "sync:calendar"],
      ]);

      // taskfan's own change, on its way or landed, is never read back as a new one.
      await orchestrator.changeTask(id, { kind: "complete" }, { source: "test" });
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });
      await orchestrator.waitForChanges(id, 30_000);
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });
      expect((await orchestrator.getTask(id))!.task).toMatchObject({ state: "done", version: 4 });
      expect(
        tg.texts().filter((t) => t.includes(" in deltatask: ") || t.includes(" in calendar: ")),
      ).toHaveLength(2);
      // Counted: changes by kind and source, changes run per server, changes found by sync.
      const metrics = await h.core.metrics.registry.metrics();
      expect(metrics).toContain('taskfan_changes_found_total{server="deltatask"} 1');
      expect(metrics).toContain('taskfan_changes_found_total{server="calendar"} 1');
      expect(metrics).toContain('taskfan_task_changes_total{kind="complete",source="sync"} 1');
      expect(metrics).toContain('taskfan_task_changes_total{kind="complete",source="test"} 1');
      expect(metrics).toContain(
        'taskfan_change_operations_total{server="memory",kind="reopen",outcome="done"} 1',
      );
    } finally {
      await s.stop();
    }
  }, 120_000);

  it("renamed in deltatask: renamed everywhere and told once; renamed on two servers: the first kept, the other shown", async () => {
    const s = await synced(engine, ["deltatask", "memory", "calendar"]);
    const { g, told } = s;
    const { orchestrator, maintenance, fleet } = g.core;
    try {
      // Commas and semicolons: a calendar summary escapes them, and reads back the same.
      const id = await orchestrator.createTask({ title: "Buy milk, eggs; bread" }, chat);
      const created = (await orchestrator.waitForSettled(id, 30_000))!;
      const remote = (server: ServerName) => created.operations.find((o) => o.server === server)!.remoteId!;
      const summary = () =>
        JSON.parse(readFileSync(path.join(g.config.data_dir, "calendar", "calendar.json"), "utf8")).calendars[
          "/taskfan/tasks/"
        ].find((t: { uid: string }) => t.uid === remote("calendar")).summary as string;
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });
      const rename = (server: "deltatask" | "calendar", title: string) =>
        fleet.execute(
          server,
          ({ call, signal }) =>
            server === "deltatask"
              ? call("update_task", { task_id: remote("deltatask"), updates: { title } }, signal)
              : call(
                  "update-todo",
                  {
                    uid: remote("calendar"),
                    calendarUrl: "/taskfan/tasks/",
                    summary: `${title} [${taskMarker(id)}]`,
                  },
                  signal,
                ),
          AbortSignal.timeout(10_000),
        );
      await rename("deltatask", "Buy oat milk");
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1 });
      let view = (await orchestrator.waitForChanges(id, 30_000))!;
      expect(view.task).toMatchObject({ title: "Buy oat milk", version: 2 });
      expect(summary()).toBe(`Buy oat milk [${taskMarker(id)}]`);
      await told(
        `✏️ Changed in deltatask: Buy oat milk (${id}), now title "Buy oat milk". Changed on the other servers too.`,
      );
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });

      // Both renamed since the last sync: deltatask, first in the role order, wins.
      await rename("deltatask", "Buy soy milk");
      await rename("calendar", "Buy almond milk");
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1 });
      view = (await orchestrator.waitForChanges(id, 30_000))!;
      expect(view.task).toMatchObject({ title: "Buy soy milk", version: 3 });
      expect(summary()).toBe(`Buy soy milk [${taskMarker(id)}]`);
      await told(
        `⚠️ Task ${id}: calendar had title "Buy almond milk" and deltatask title "Buy soy milk", both changed since the last sync; deltatask's is kept everywhere.`,
      );
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });
      expect(await g.core.metrics.registry.metrics()).toContain(
        'taskfan_sync_conflicts_total{field="title"} 1',
      );
      expect((await g.core.store.tasks.changes(id)).map((c) => [c.kind, c.source, c.changed])).toEqual([
        ["update", "sync:deltatask", { title: "Buy oat milk" }],
        ["update", "sync:deltatask", { title: "Buy soy milk" }],
      ]);
    } finally {
      await s.stop();
    }
  }, 120_000);

  it("deadline, priority and tags changed in deltatask, the deadline moved in the calendar: each comes back everywhere; both moved: the first kept", async () => {
    const s = await synced(engine, ["deltatask", "memory", "calendar"]);
    const { g, told } = s;
    const { orchestrator, maintenance, fleet } = g.core;
    try {
      const day = (n: number) => new Date(Date.UTC(2031, 0, n, 9, 30)).toISOString();
      const id = await orchestrator.createTask(
        { title: "Pay rent", deadline: day(10), tags: ["home"], priority: 3 },
        chat,
      );
      const created = (await orchestrator.waitForSettled(id, 30_000))!;
      const remote = (server: ServerName) => created.operations.find((o) => o.server === server)!.remoteId!;
      const data = (...p: string[]) => JSON.parse(readFileSync(path.join(g.config.data_dir, ...p), "utf8"));
      const delta = () =>
        data("deltatask", "tasks.json").tasks.find((t: { id: string }) => t.id === remote("deltatask"));
      const todo = () =>
        data("calendar", "calendar.json").calendars["/taskfan/tasks/"].find(
          (t: { uid: string }) => t.uid === remote("calendar"),
        );
      const inDelta = (updates: Record<string, unknown>) =>
        fleet.execute(
          "deltatask",
          ({ call, signal }) => call("update_task", { task_id: remote("deltatask"), updates }, signal),
          AbortSignal.timeout(10_000),
        );
      const dueInCalendar = (due: string) =>
        fleet.execute(
          "calendar",
          ({ call, signal }) =>
            call("update-todo", { uid: remote("calendar"), calendarUrl: "/taskfan/tasks/", due }, signal),
          AbortSignal.timeout(10_000),
        );
      const shown = (iso: string) => formatInZone(iso, g.config.timezone);
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });

      // In deltatask, with its own tool: urgency 5 (our priority 1), a tag more, a later deadline.
      await inDelta({ urgency: 5, tags: ["home", "errand", taskMarker(id)], deadline: day(12) });
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1, errors: 0 });
      let view = (await orchestrator.waitForChanges(id, 30_000))!;
      expect(view.task).toMatchObject({
        priority: 1,
        tags: ["home", "errand"],
        deadline: day(12),
        version: 2,
      });
      expect(todo().due).toBe(day(12));
      await told(
        `✏️ Changed in deltatask: Pay rent (${id}), now priority p1, deadline ${shown(day(12))}, tags #home #errand. Changed on the other servers too.`,
      );
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });

      // In the calendar: the due date moved, into the past even (taken as the person set it).
      await dueInCalendar(day(1).replace("2031", "2020"));
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1 });
      view = (await orchestrator.waitForChanges(id, 30_000))!;
      expect(view.task).toMatchObject({ deadline: "2020-01-01T09:30:00.000Z", version: 3 });
      expect(delta()).toMatchObject({ deadline: "2020-01-01T09:30:00.000Z", urgency: 5 });
      expect(delta().tags).toEqual(["home", "errand", taskMarker(id)]);
      await told(
        `✏️ Changed in calendar: Pay rent (${id}), now deadline ${shown("2020-01-01T09:30:00.000Z")}. Changed on the other servers too.`,
      );

      // Moved on both since the last sync, and the priority in deltatask: deltatask, first in
      // the role order, wins the deadline; the calendar's is shown to the owner.
      await inDelta({ deadline: day(20), urgency: 2 });
      await dueInCalendar(day(25));
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1 });
      view = (await orchestrator.waitForChanges(id, 30_000))!;
      expect(view.task).toMatchObject({ deadline: day(20), priority: 4, version: 4 });
      expect(todo().due).toBe(day(20));
      await told(
        `⚠️ Task ${id}: calendar had deadline ${shown(day(25))} and deltatask deadline ${shown(day(20))}, both changed since the last sync; deltatask's is kept everywhere.`,
      );
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });

      // The deadline taken away in deltatask: none everywhere that can say none.
      await inDelta({ deadline: null });
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1 });
      view = (await orchestrator.waitForChanges(id, 30_000))!;
      expect(view.task).toMatchObject({ deadline: null, version: 5 });
      await told(
        `✏️ Changed in deltatask: Pay rent (${id}), now deadline none. Changed on the other servers too.`,
      );
      // The calendar keeps its due (it cannot clear one), and that is not read as a change.
      expect(todo().due).toBe(day(20));
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0 });

      expect(await g.core.metrics.registry.metrics()).toContain(
        'taskfan_sync_conflicts_total{field="deadline"} 1',
      );
      expect((await g.core.store.tasks.changes(id)).map((c) => [c.source, c.changed])).toEqual([
        ["sync:deltatask", { priority: 1, tags: ["home", "errand"], deadline: day(12) }],
        ["sync:calendar", { deadline: "2020-01-01T09:30:00.000Z" }],
        ["sync:deltatask", { deadline: day(20), priority: 4 }],
        ["sync:deltatask", { deadline: null }],
      ]);
    } finally {
      await s.stop();
    }
  }, 120_000);

  it("memory keeper's change feed: only the records it names are read back; done and edited there come back; a lost feed reads all once", async () => {
    const s = await synced(engine, ["deltatask", "hpkv-memory"]);
    const { g, told } = s;
    const { orchestrator, maintenance, fleet } = g.core;
    const kv = (tool: string, args: Record<string, unknown>) =>
      fleet.execute(
        "hpkv-memory",
        ({ call, signal }) => call(tool, args, signal),
        AbortSignal.timeout(10_000),
      );
    try {
      const ids: string[] = [];
      for (const title of ["Water plants", "Call mum", "Pay rent"])
        ids.push(await orchestrator.createTask({ title, priority: 3 }, chat));
      for (const id of ids) await orchestrator.waitForSettled(id, 30_000);
      const [plants, mum, rent] = ids as [string, string, string];
      const delta = (id: string) =>
        JSON.parse(readFileSync(path.join(g.config.data_dir, "deltatask", "tasks.json"), "utf8")).tasks.find(
          (t: { tags: string[] }) => t.tags.includes(taskMarker(id)),
        );
      const save = (id: string, value: Record<string, unknown>) =>
        kv("context_save", { key: `taskfan_task_${id}`, value: JSON.stringify(value), category: "task" });

      // The first sync opens the feed and reads every record: 3 there, 3 in deltatask.
      expect(await maintenance.sync()).toMatchObject({ checked: 6, changesFound: 0, unchangedByFeed: 0 });
      // Nothing changed in memory keeper since: its feed names nothing, nothing is read there.
      expect(await maintenance.sync()).toMatchObject({ checked: 3, changesFound: 0, unchangedByFeed: 3 });

      // Finished in memory keeper, and another one edited there, with its own tool.
      await save(plants, {
        id: plants,
        title: "Water plants",
        description: "",
        priority: 3,
        deadline: null,
        tags: [],
        state: "done",
      });
      await save(mum, {
        id: mum,
        title: "Call mum tonight",
        description: "",
        priority: 1,
        deadline: null,
        tags: ["family"],
      });
      expect(await maintenance.sync()).toMatchObject({
        checked: 5,
        changesFound: 2,
        unchangedByFeed: 1,
        errors: 0,
      });
      for (const id of [plants, mum]) await orchestrator.waitForChanges(id, 30_000);
      expect((await orchestrator.getTask(plants))!.task).toMatchObject({ state: "done", version: 2 });
      expect((await orchestrator.getTask(mum))!.task).toMatchObject({
        title: "Call mum tonight",
        priority: 1,
        tags: ["family"],
        version: 2,
      });
      expect(delta(plants)).toMatchObject({ completed: true });
      expect(delta(mum)).toMatchObject({ title: "Call mum tonight", urgency: 5 });
      await told(`✅ Done in hpkv-memory: Water plants (${plants}). Marked done on the other servers too.`);
      await told(
        `✏️ Changed in hpkv-memory: Call mum tonight (${mum}), now title "Call mum tonight", priority p1, tags #family.`,
      );
      expect((await g.core.store.tasks.changes(plants)).map((c) => [c.kind, c.source])).toEqual([
        ["complete", "sync:hpkv-memory"],
      ]);
      // taskfan's own saves of those two come through the feed: read, and found to be its own.
      expect(await maintenance.sync()).toMatchObject({ checked: 5, changesFound: 0, unchangedByFeed: 1 });
      expect(await maintenance.sync()).toMatchObject({ checked: 3, changesFound: 0, unchangedByFeed: 3 });

      // The feed stopped (as when it expires): the next sync opens another and reads all, once.
      const listed = JSON.parse(
        ((await kv("context_watch", { action: "list" })).content as Array<{ text: string }>)[0]!.text,
      ) as { watchers: Array<{ watcherId: string; active: boolean }> };
      for (const w of listed.watchers.filter((w) => w.active))
        await kv("context_watch", { action: "stop", watcherId: w.watcherId });
      expect(await maintenance.sync()).toMatchObject({ checked: 6, changesFound: 0, unchangedByFeed: 0 });
      expect(await maintenance.sync()).toMatchObject({ checked: 3, unchangedByFeed: 3 });

      // Deleted in memory keeper: the feed names it, and it is deleted everywhere.
      await kv("context_batch_delete", { keys: [`taskfan_task_${rent}`] });
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1, unchangedByFeed: 2 });
      await orchestrator.waitForChanges(rent, 30_000);
      expect((await orchestrator.getTask(rent))!.task.state).toBe("deleted");
      expect(delta(rent)).toBeUndefined();
    } finally {
      await s.stop();
    }
  }, 120_000);

  it("deleted in memory: deleted everywhere, told to the chat, never re-created; many gone at once are re-created", async () => {
    const s = await synced(engine, ["deltatask", "memory", "filesystem", "time-tracker"]);
    const { g, told } = s;
    const { orchestrator, maintenance, fleet } = g.core;
    try {
      const id = await orchestrator.createTask({ title: "Old plan" }, chat);
      await orchestrator.waitForSettled(id, 30_000);
      const file = (taskId: string) => path.join(g.config.data_dir, "files", "tasks", `${taskId}.md`);
      const inDeltatask = () =>
        JSON.parse(readFileSync(path.join(g.config.data_dir, "deltatask", "tasks.json"), "utf8")).tasks.some(
          (t: { tags: string[] }) => t.tags.includes(taskMarker(id)),
        );
      expect(existsSync(file(id)) && inDeltatask()).toBe(true);
      // Deleted in memory, with memory's own tool.
      await fleet.execute(
        "memory",
        ({ call, signal }) => call("delete_entities", { entityNames: [`taskfan-task-${id}`] }, signal),
        AbortSignal.timeout(10_000),
      );
      expect(await maintenance.sync()).toMatchObject({ changesFound: 1, repaired: 0, errors: 0 });
      const view = (await orchestrator.waitForChanges(id, 30_000))!;
      expect(view.task).toMatchObject({ state: "deleted", version: 2 });
      expect(existsSync(file(id))).toBe(false);
      expect(inDeltatask()).toBe(false);
      expect((await g.core.store.tasks.changes(id)).map((c) => [c.kind, c.source])).toEqual([
        ["delete", "sync:memory"],
      ]);
      await told(`🗑 Deleted in memory: Old plan (${id}). Deleted on the other servers too.`);
      // Never brought back, and told once.
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0, repaired: 0 });
      expect(readFileSync(path.join(g.config.data_dir, "memory", "memory.jsonl"), "utf8")).not.toContain(id);

      // Four files gone at once (more than sync_deletes, 3): the server lost them; made again.
      const ids: string[] = [];
      for (let i = 0; i < 4; i++) ids.push(await orchestrator.createTask({ title: `keep ${i}` }, chat));
      for (const t of ids) await orchestrator.waitForSettled(t, 30_000);
      for (const t of ids) unlinkSync(file(t));
      expect(await maintenance.sync()).toMatchObject({ changesFound: 0, repaired: 4 });
      await vi.waitFor(() => expect(ids.every((t) => existsSync(file(t)))).toBe(true), {
        timeout: 30_000,
        interval: 50,
      });
      for (const t of ids) expect((await orchestrator.getTask(t))!.task.state).toBe("open");
    } finally {
      await s.stop();
    }
  }, 120_000);
});
