import { once } from "node:events";
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { formatAlert } from "../../src/bot/alert-format.js";
import { Singletons } from "../../src/cluster/singletons.js";
import { createPostgresStore } from "../../src/store/postgres/postgres-store.js";
import type { Store } from "../../src/store/store.js";
import { startHarness } from "../core-harness.js";
import { onlyServers, silentLog, terminate } from "../helpers.js";
import { conditions, groupAlertChat, groupOwner, groupSingletons, startGroup } from "./instance.js";
import { clusterPostgres } from "./hooks.js";

const postgres = clusterPostgres();

describe("singletons on PostgreSQL advisory locks", () => {
  it(
    "one instance at a time holds each; a holder whose lock session ends stops at once; when it is gone, the other takes over",
    { timeout: 60_000 },
    async () => {
      const url = await postgres().createDatabase();
      const stores: Store[] = [await createPostgresStore(url), await createPostgresStore(url)];
      let running = 0;
      let most = 0;
      const events: string[] = [];
      const { until, changed } = conditions();
      const groups = stores.map((store, i) => {
        const s = new Singletons(store.locks, silentLog, { retryMs: 200, instance: `i${i}` });
        s.add("poller", () => {
          running += 1;
          most = Math.max(most, running);
          events.push(`i${i} started`);
          // Looked at once the group has recorded the start too.
          setImmediate(changed);
          return Promise.resolve(() => {
            running -= 1;
            events.push(`i${i} stopped`);
            setImmediate(changed);
            return Promise.resolve();
          });
        });
        return s;
      });
      const admin = new pg.Client({ connectionString: url });
      await admin.connect();
      try {
        await groups[0]!.start();
        await groups[1]!.start();
        expect(groups[0]!.held()).toEqual(["poller"]);
        expect(groups[1]!.held()).toEqual([]);
        expect(most).toBe(1);
        // The holder's lock session is cut (its connection dropped): it stops as soon as it
        // hears of it (the other may take the lock in that moment), and the lock goes to
        // whichever instance tries first.
        const { rows } = await admin.query<{ pid: number }>(
          "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted",
        );
        expect(rows).toHaveLength(1);
        await admin.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
        await until(() => events.includes("i0 stopped"));
        await until(() => running === 1 && groups.some((g) => g.held().length === 1));
        // The holder goes away for good: the other instance takes over.
        const holder = groups[0]!.held().length > 0 ? 0 : 1;
        const other = 1 - holder;
        await groups[holder]!.stop();
        await stores[holder]!.close();
        await until(() => events.at(-1) === `i${other} started`);
        await until(() => groups[other]!.held().length === 1);
        expect(running).toBe(1);
      } finally {
        await admin.end();
        for (const g of groups) await g.stop();
        for (const s of stores) await s.close().catch(() => undefined);
      }
    },
  );
});

describe("alerts in a group of instances", () => {
  it("say which instance saw the problem, on a store instances share", { timeout: 60_000 }, async () => {
    const url = await postgres().createDatabase();
    const store = await createPostgresStore(url);
    const h = await startHarness(
      {
        servers: onlyServers(["memory", "deltatask"], {
          deltatask: { command: process.execPath, args: ["/nonexistent/server.js"], required: false },
        }),
      },
      undefined,
      { store, instance: "taskfan-b" },
    );
    try {
      expect(h.core.instance).toBe("taskfan-b");
      await h.core.checkHealth();
      const alert = await vi.waitFor(
        async () => {
          const open = (await store.alerts.open()).find((a) => a.server === "deltatask");
          if (!open) throw new Error("no alert yet");
          return open;
        },
        { timeout: 20_000 },
      );
      expect(alert.details.instance).toBe("taskfan-b");
      const t = (key: string, vars?: Record<string, unknown>) => `${key}${vars ? JSON.stringify(vars) : ""}`;
      expect(formatAlert(alert, t)).toContain('alert-seen-by{"instance":"taskfan-b"}');
    } finally {
      await h.stop();
      await store.close();
    }
  });
});

describe("PostgreSQL restarted under a group", () => {
  it(
    "the alert chat hears once that storage is unavailable and once that it answers again, though the lock session that held alert delivery ended",
    { timeout: 120_000 },
    async () => {
      const server = postgres();
      const group = await startGroup(server, () => ({
        servers: onlyServers(["memory"]),
        store: { unavailable_after: 1 },
      }));
      const toChat = (text: RegExp) => () =>
        group.api.calls.filter(
          (c) =>
            c.method === "sendMessage" &&
            String(c.payload.chat_id) === groupAlertChat &&
            text.test(String(c.payload.text)),
        );
      const down = toChat(/^⛔ storage unavailable/);
      const back = toChat(/^✅ storage answers again/);
      let stopped = false;
      try {
        const a = group.start("a");
        await group.until(() => a.holding.has("alert-delivery"));
        server.stop();
        stopped = true;
        await group.api.until(() => down().length > 0, 60_000);
        // Its lock session ended with the database: delivery stops, and starts again once
        // the lock is taken anew.
        await group.until(() => !a.holding.has("alert-delivery"));
        server.start();
        stopped = false;
        await group.until(() => a.holding.has("alert-delivery"));
        await group.api.until(() => back().length > 0, 60_000);
        // One more round of delivery after it, and nothing more was said.
        await group.until(() => a.log.filter((l) => l.msg === "storage answers again").length > 0);
        expect(down()).toHaveLength(1);
        expect(back()).toHaveLength(1);
      } finally {
        if (stopped) server.start();
        await group.stop();
      }
    },
  );
});

describe("two taskfan instances on one PostgreSQL", () => {
  it(
    "hold each singleton once; kill -9 the poller: the other takes over all of them and answers the chat",
    { timeout: 120_000 },
    async () => {
      const group = await startGroup(postgres(), () => ({ servers: onlyServers(["memory"]) }));
      const { api, until, start } = group;
      const all = groupSingletons;
      try {
        const a = start("a");
        const b = start("b");
        // Every singleton is held, each by one instance.
        await until(() => all.every((name) => a.holding.has(name) || b.holding.has(name)));
        for (const name of all) expect(a.holding.has(name)).not.toBe(b.holding.has(name));
        // Both front ends are up: each registered its commands in English and in Russian.
        await api.until((calls) => calls.filter((c) => c.method === "setMyCommands").length === 4);
        const [held, other] = a.holding.has("telegram-polling") ? [a, b] : [b, a];
        // kill -9 the poller: the instance left takes over everything it held.
        held.child.kill("SIGKILL");
        await once(held.child, "exit");
        await until(() => all.every((name) => other.holding.has(name)));
        // The chat works again, answered by the instance left.
        api.push({
          message: {
            message_id: 1,
            date: Math.floor(Date.now() / 1000),
            chat: { id: groupOwner.id, type: "private", first_name: groupOwner.first_name },
            from: groupOwner,
            text: "/help",
            entities: [{ type: "bot_command", offset: 0, length: 5 }],
          },
        });
        await api.until((calls) =>
          calls.some(
            (c) => c.method === "sendMessage" && String(c.payload.chat_id) === String(groupOwner.id),
          ),
        );
        expect(await terminate(other.child)).toBe(0);
      } finally {
        await group.stop();
      }
    },
  );
});
