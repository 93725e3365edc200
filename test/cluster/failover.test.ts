import { once } from "node:events";
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import type { Sent } from "../bot/fake-bot-api.js";
import { backendOf } from "../served.js";
import { onceEverywhere, recordsPerServer } from "../server-records.js";
import { groupAlertChat, groupSingletons, startServedGroup, type Instance } from "./instance.js";
import { allTasksDone, clusterPostgres } from "./hooks.js";

const postgres = clusterPostgres();

const alertChat = groupAlertChat;
const singletons = groupSingletons;
const toAlertChat = (c: Sent) =>
  c.method === "sendMessage" && c.accepted && String(c.payload.chat_id) === alertChat;

describe("three instances, the servers over HTTP, one PostgreSQL", () => {
  it(
    "kill -9 the instance holding the poller and alert delivery mid fan-out: 300 tasks done, each once on every server; polling and alerts move; an alert from before is delivered once",
    { timeout: 450_000 },
    async () => {
      const group = await startServedGroup(postgres(), {
        health_check_interval: 1,
        health: { probe_timeout: 1 },
        // A dead instance's claims come back after this. Not shorter: a live instance starved
        // of CPU (the whole suite runs beside it on two cores) must renew its leases in time,
        // or another may call a one-call-at-a-time server beside it.
        dispatcher: { lease_seconds: 20 },
        // One message per alert row, which the end checks (servers flapping under load
        // would otherwise share a grouped message).
        notifications: { telegram: { group_window: 0 } },
      });
      const { api, until, instances, start, dataDir } = group;
      const admin = new pg.Client({ connectionString: group.url });
      try {
        // A first: it takes every singleton; B and C join and dispatch.
        const a = start("a");
        await until(() => singletons.every((s) => a.holding.has(s)));
        const b = start("b");
        const c = start("c");
        const started = (i: Instance) => i.log.some((l) => l.msg === "taskfan started");
        await until(() => started(b) && started(c));
        const bases = await Promise.all(instances.map((i) => i.api));

        // An alert before the kill: the notifications server stops answering, then answers again.
        const notifications = backendOf(group.served, "notifications.js");
        process.kill(notifications, "SIGSTOP");
        const alertFor = (calls: Sent[]) =>
          calls.filter(toAlertChat).find((c) => /: notifications\b/.test(String(c.payload.text)));
        await api.until((calls) => alertFor(calls) !== undefined, 60_000);
        process.kill(notifications, "SIGCONT");
        const raised = String(alertFor(api.calls)!.payload.text).split("\n")[0]!;

        // 300 tasks, a hundred through each instance's API.
        const ids = await Promise.all(
          Array.from({ length: 300 }, async (_, i) => {
            const res = await fetch(`${bases[i % 3]}/api/tasks`, {
              method: "POST",
              headers: { "content-type": "application/json", "idempotency-key": `failover-${i}` },
              body: JSON.stringify({ title: `failover ${i}` }),
            });
            const body = (await res.json()) as { task: { id: string } };
            expect(res.status, JSON.stringify(body)).toBe(201);
            return body.task.id;
          }),
        );
        // Mid fan-out, kill -9 the holder of the poller and of alert delivery.
        const settled = () => instances.flatMap((i) => i.log).filter((l) => l.msg === "task settled").length;
        await until(() => settled() >= 30);
        a.child.kill("SIGKILL");
        await once(a.child, "exit");
        const pollsBefore = api.polls;
        expect(settled()).toBeLessThan(300);

        // Another instance takes the poller and alert delivery, and Telegram hears from it.
        await until(() => singletons.every((name) => b.holding.has(name) || c.holding.has(name)));
        await api.until(() => api.polls > pollsBefore);
        for (const name of singletons) expect(b.holding.has(name)).not.toBe(c.holding.has(name));

        // Every task ends done, each exactly once on every server (read from their own data).
        await admin.connect();
        await allTasksDone(admin, 300, 180_000);
        const records = recordsPerServer(dataDir, ids);
        for (const id of ids) expect(records.get(id)).toEqual(onceEverywhere);

        // The alert raised before the kill went out once, and so did its recovery.
        await api.until((calls) =>
          calls
            .filter(toAlertChat)
            .some((call) => String(call.payload.text).includes("recovered: notifications")),
        );
        const alertLines = api.calls
          .filter(toAlertChat)
          .map((call) => String(call.payload.text).split("\n")[0]!);
        expect(alertLines.filter((l) => l === raised)).toHaveLength(1);
        expect(alertLines.filter((l) => l.includes("recovered: notifications"))).toHaveLength(1);
        // Every alert of the outbox went out as one message (its repeats are edits of it),
        // whichever instance delivered it, before or after the kill. One the killed holder
        // had claimed waits for its claim to run out (2 minutes) before another sends it.
        await vi.waitFor(
          async () => {
            const { rows } = await admin.query<{ n: number; undelivered: number }>(
              "SELECT count(*)::int AS n, (count(*) FILTER (WHERE delivered_count < count))::int AS undelivered FROM alerts",
            );
            expect(rows[0]!.undelivered).toBe(0);
            const sent = api.calls
              .filter(toAlertChat)
              .filter((c) => !/^. storage/.test(String(c.payload.text)));
            expect(sent).toHaveLength(rows[0]!.n);
          },
          { timeout: 150_000, interval: 500 },
        );
      } finally {
        await admin.end().catch(() => undefined);
        await group.stop();
      }
    },
  );
});
