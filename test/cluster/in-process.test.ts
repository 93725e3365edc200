import pg from "pg";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createBot } from "../../src/bot/create-bot.js";
import { Reminders } from "../../src/bot/reminders.js";
import { Membership } from "../../src/cluster/membership.js";
import { botDepsOf } from "../../src/bot/front-end.js";
import { createPostgresStore } from "../../src/store/postgres/postgres-store.js";
import { botInfo, chatWith, fakeTelegram } from "../bot/fake-telegram.js";
import { startHarness } from "../core-harness.js";
import { onlyServers, silentLog } from "../helpers.js";
import { startPostgres, type TestPostgres } from "../postgres.js";

let server: TestPostgres;
beforeAll(async () => {
  server = await startPostgres();
}, 60_000);
afterAll(() => server?.remove());

describe("live progress across instances", () => {
  it(
    "a task created in the chat of one instance, its operations run by another: the progress message follows it to Done",
    { timeout: 90_000 },
    async () => {
      const url = await server.createDatabase();
      // Each instance its own store (its own sessions), as two processes would have.
      const storeA = await createPostgresStore(url);
      const storeB = await createPostgresStore(url);
      const servers = onlyServers(["memory", "time-tracker"]);
      // A takes no work: everything the task needs runs on B.
      const a = await startHarness({ servers }, undefined, { store: storeA, instance: "a", dispatch: false });
      const b = await startHarness({ servers }, undefined, { store: storeB, instance: "b", dispatch: false });
      const tg = fakeTelegram();
      const bot = createBot(
        botDepsOf(a.core, silentLog),
        {
          allowedUserIds: new Set([7]),
          alertChatId: undefined,
          rateLimitPerMinute: 100,
          progressEditIntervalMs: 50,
        },
        { token: "42:TEST", botInfo, fetch: tg.fetch },
      );
      const me = chatWith(7);
      try {
        await bot.bot.handleUpdate(me.text("/newtask Ship it | the release | p1 | #release"));
        await bot.bot.handleUpdate(me.press("nt:create"));
        // The progress message is out, the task not started: B begins the work only now.
        const sent = await vi.waitFor(() => {
          const progress = tg.sent().find((c) => /^Task \w+: Ship it/.test(String(c.payload.text)));
          if (!progress) throw new Error("no progress message yet");
          return String(progress.payload.text);
        });
        expect(sent).not.toContain("Done");
        await b.core.orchestrator.start();
        const done = await vi.waitFor(
          () => {
            const text = tg.texts().find((t) => t.includes("Done: every server has it."));
            if (!text) throw new Error(`no Done yet: ${tg.texts().at(-1)}`);
            return text;
          },
          { timeout: 30_000, interval: 50 },
        );
        expect(done.match(/^✅ /gm)).toHaveLength(2);
        // The progress message was sent by A and edited by A, for work B did.
        const edits = tg.calls.filter((c) => c.method === "editMessageText");
        expect(edits.length).toBeGreaterThan(0);
        expect(a.started).toHaveLength(0);
        expect(new Set(b.finished.map((e) => e.server))).toEqual(new Set(["memory", "time-tracker"]));
      } finally {
        bot.progress.stop();
        await a.stop();
        await b.stop();
        await storeA.close();
        await storeB.close();
      }
    },
  );
});

describe("the instances table", () => {
  it(
    "each instance renews its row with the singletons it holds; a row that stops beating is removed by the others; a clean stop removes its own",
    { timeout: 60_000 },
    async () => {
      const url = await server.createDatabase();
      let clock = 1_000_000;
      const now = () => clock;
      const stores = [await createPostgresStore(url, now), await createPostgresStore(url, now)];
      const held = [["telegram-polling"], ["health-monitor"]];
      const options = { beatMs: 60_000, staleAfterMs: 30_000, now };
      const [a, b] = stores.map(
        (store, i) =>
          new Membership(
            store.cluster,
            { id: `i${i}`, version: "0.1.0", startedAt: clock },
            () => held[i]!,
            store.health,
            silentLog,
            options,
          ),
      ) as [Membership, Membership];
      try {
        await a.start();
        await b.start();
        const seen = await a.list();
        expect(seen.map((i) => [i.id, i.self, i.singletons])).toEqual([
          ["i0", true, ["telegram-polling"]],
          ["i1", false, ["health-monitor"]],
        ]);
        expect(seen[1]).toMatchObject({ pid: process.pid, version: "0.1.0", heartbeatAt: clock });
        // A takes over a singleton: its next beat says so.
        held[0]!.push("alert-delivery");
        await a.beat();
        expect((await b.list())[1]!.singletons).toEqual(["alert-delivery", "telegram-polling"]);
        // B stops beating (its process is gone); past the stale bound, A's next beat removes it.
        clock += 29_000;
        await a.beat();
        expect((await a.list()).map((i) => i.id)).toEqual(["i0", "i1"]);
        clock += 2_000;
        expect((await a.list()).map((i) => i.id)).toEqual(["i0"]);
        await a.beat();
        expect((await stores[0]!.cluster!.instances()).map((i) => i.id)).toEqual(["i0"]);
        // B was only cut off: it comes back with its next beat.
        await b.beat();
        expect((await a.list()).map((i) => i.id)).toEqual(["i0", "i1"]);
        await a.stop();
        expect((await stores[1]!.cluster!.instances()).map((i) => i.id)).toEqual(["i1"]);
      } finally {
        await a.stop();
        await b.stop();
        for (const s of stores) await s.close();
      }
    },
  );
});

describe("a hung instance", () => {
  it(
    "whose heartbeat is older than the bound has its sessions ended by another: its locks go free and it hears it lost them",
    { timeout: 60_000 },
    async () => {
      const url = await server.createDatabase();
      let clock = 1_000_000;
      const now = () => clock;
      const a = await createPostgresStore(url, now, { instance: "a" });
      const b = await createPostgresStore(url, now, { instance: "b" });
      const replaced: string[][] = [];
      const membership = (store: typeof a, id: string) =>
        new Membership(
          store.cluster,
          { id, version: "0.1.0", startedAt: clock },
          () => store.locks!.held(),
          store.health,
          silentLog,
          {
            beatMs: 60_000,
            staleAfterMs: 30_000,
            hungAfterMs: 6000,
            now,
            replaced: (ids) => replaced.push(ids),
          },
        );
      const [ma, mb] = [membership(a, "a"), membership(b, "b")];
      try {
        await ma.start();
        await mb.start();
        expect(await b.locks!.tryAcquire("telegram-polling")).toBe(true);
        expect(await a.locks!.tryAcquire("telegram-polling")).toBe(false);
        const lost = new Promise<string[]>((resolve) => b.locks!.onLost(resolve));
        // b stops beating (stopped, frozen): within the bound nothing happens...
        clock += 6000;
        await ma.beat();
        expect(replaced).toEqual([]);
        // ...past it, a's next beat ends b's sessions: b hears its locks are gone, a takes them.
        clock += 1;
        await ma.beat();
        expect(replaced).toEqual([["b"]]);
        expect(await lost).toEqual(["telegram-polling"]);
        expect(await a.locks!.tryAcquire("telegram-polling")).toBe(true);
        // b runs again: its pool connects anew, it beats and is one of the group again. Its
        // first beat may meet a pooled connection that was ended and not yet dropped (a busy
        // machine): the row shows when a beat has landed.
        await vi.waitFor(
          async () => {
            await mb.beat();
            const row = (await a.cluster!.instances()).find((i) => i.id === "b");
            expect(row?.heartbeatAt).toBe(clock);
          },
          { timeout: 10_000, interval: 50 },
        );
        expect((await ma.list()).map((i) => i.id)).toEqual(["a", "b"]);
        expect(await b.locks!.tryAcquire("telegram-polling")).toBe(false);
        await ma.beat();
        expect(replaced).toHaveLength(1);
      } finally {
        await ma.stop();
        await mb.stop();
        await a.close();
        await b.close();
      }
    },
  );
});

describe("the shared health picture", () => {
  it(
    "a rating the store would not take is written again after a backoff, not left stale until the next probe",
    { timeout: 60_000 },
    async () => {
      const url = await server.createDatabase();
      const store = await createPostgresStore(url, Date.now, { instance: "rater", timeoutMs: 300 });
      const h = await startHarness({ servers: onlyServers(["memory"]) }, undefined, {
        store,
        instance: "rater",
      });
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      const writtenAt = async () =>
        Number(
          (await admin.query<{ w: string }>("SELECT max(written_at) AS w FROM server_health")).rows[0]?.w ??
            0,
        );
      try {
        await vi.waitFor(() => expect(h.core.singletons.held()).toContain("health-monitor"), {
          timeout: 20_000,
        });
        await vi.waitFor(async () => expect(await writtenAt()).toBeGreaterThan(0), { timeout: 20_000 });
        const before = await writtenAt();
        // Someone holds the table while the monitor probes: its write waits past the limit and fails.
        await admin.query("BEGIN");
        await admin.query("LOCK TABLE server_health IN ACCESS EXCLUSIVE MODE");
        const waiting = async () =>
          (
            await admin.query(
              `SELECT 1 FROM pg_stat_activity WHERE application_name = 'taskfan rater group'
                 AND wait_event_type = 'Lock' AND query LIKE '%server_health%'`,
            )
          ).rowCount;
        await h.core.checkHealth();
        await expect.poll(waiting, { timeout: 10_000, interval: 20 }).toBe(1);
        await expect.poll(waiting, { timeout: 10_000, interval: 20 }).toBe(0);
        await admin.query("COMMIT");
        // The next probe is a minute away: the write comes again well before.
        await vi.waitFor(async () => expect(await writtenAt()).toBeGreaterThan(before), {
          timeout: 10_000,
          interval: 100,
        });
      } finally {
        await admin.end().catch(() => undefined);
        await h.stop();
        await store.close();
      }
    },
  );
});

describe("reminders across instances", () => {
  it(
    "three instances on one database send a reminder once, whichever of them looks first",
    { timeout: 90_000 },
    async () => {
      const url = await server.createDatabase();
      const servers = onlyServers(["memory", "time-tracker"]);
      const stores = await Promise.all([1, 2, 3].map(() => createPostgresStore(url)));
      const cores = await Promise.all(
        stores.map((store, i) => startHarness({ servers }, undefined, { store, instance: `i${i}` })),
      );
      const clock = { t: Date.now() };
      const instances = cores.map((h) => {
        const tg = fakeTelegram();
        const deps = botDepsOf(h.core, silentLog);
        const bot = createBot(
          deps,
          { allowedUserIds: new Set([7]), alertChatId: undefined, rateLimitPerMinute: 100 },
          { token: "42:TEST", botInfo, fetch: tg.fetch },
        );
        const reminders = new Reminders(bot.bot.api, deps.reminders!, deps, {
          defaults: [60, 0],
          t: bot.translator("en"),
          now: () => clock.t,
        });
        return { tg, bot, reminders };
      });
      const me = chatWith(7);
      try {
        const [first] = instances;
        await first!.bot.bot.handleUpdate(me.text("/newtask Renew the lease | in 5 days | remind 2h 0"));
        await first!.bot.bot.handleUpdate(me.press("nt:create"));
        const task = (await cores[0]!.core.store.tasks.recent(1))[0]!;
        const deadline = Date.parse(task.deadline!);
        const reminded = () =>
          instances.flatMap((i) =>
            i.tg.sent().filter((c) => String(c.payload.text).startsWith("⏰ Reminder: Renew the lease")),
          );
        // All three plan and look at once, again and again.
        const together = async (at: number) => {
          clock.t = at;
          for (let round = 0; round < 3; round++) await Promise.all(instances.map((i) => i.reminders.pass()));
        };
        await together(Date.now());
        await together(deadline - 2 * 3_600_000);
        expect(reminded()).toHaveLength(1);
        await together(deadline);
        expect(reminded()).toHaveLength(2);
        await together(deadline + 3_600_000);
        expect(reminded()).toHaveLength(2);
      } finally {
        for (const i of instances) {
          await i.reminders.stop();
          i.bot.progress.stop();
        }
        for (const h of cores) await h.stop();
        for (const s of stores) await s.close();
      }
    },
  );
});
