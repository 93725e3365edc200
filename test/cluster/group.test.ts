import { readdirSync } from "node:fs";
import { describe, expect, it, vi } from "vitest";
import { postgresMigrationsDir } from "../../src/store/postgres/migrate.js";
import type { InstanceView } from "../../src/cluster/membership.js";
import type { ServerHealth } from "../../src/monitoring/health-monitor.js";
import type { Sent } from "../bot/fake-bot-api.js";
import { freePort, onlyServers, terminate } from "../helpers.js";
import { groupOwner, startGroup, type Instance } from "./instance.js";
import { clusterPostgres } from "./hooks.js";

const postgres = clusterPostgres();

const owner = groupOwner;
const secret = "the-group-webhook-secret";
let update = 1;

/** Posts an update to an instance's webhook, as Telegram (or a load balancer) would. */
async function deliver(hook: string, body: Record<string, unknown>): Promise<void> {
  const res = await fetch(hook, {
    method: "POST",
    headers: { "content-type": "application/json", "x-telegram-bot-api-secret-token": secret },
    body: JSON.stringify({ update_id: update++, ...body }),
  });
  expect(res.status).toBe(200);
}
const text = (body: string) => ({
  message: {
    message_id: update,
    date: Math.floor(Date.now() / 1000),
    chat: { id: owner.id, type: "private", first_name: owner.first_name },
    from: owner,
    text: body,
    entities: [{ type: "bot_command", offset: 0, length: body.indexOf(" ") }],
  },
});
const press = (data: string) => ({
  callback_query: {
    id: String(update),
    from: owner,
    chat_instance: "group",
    data,
    message: {
      message_id: 1,
      date: 0,
      chat: { id: owner.id, type: "private", first_name: "Owner" },
      text: "",
    },
  },
});
const toOwner = (c: Sent) =>
  c.accepted &&
  (c.method === "sendMessage" || c.method === "editMessageText") &&
  String(c.payload.chat_id) === String(owner.id);

interface HealthAnswer {
  servers: ServerHealth[];
  ratedBy: string;
  instances: InstanceView[];
}

describe("two taskfan instances started together on an empty PostgreSQL (webhook mode)", () => {
  it(
    "migrate once, both serve one picture of health and of the group, and a conversation begun on one and finished on the other creates one task",
    { timeout: 120_000 },
    async () => {
      // Probes every second: a reader sees the holder's ratings soon after it starts.
      const group = await startGroup(postgres(), () => ({
        servers: onlyServers(["memory", "time-tracker"]),
        health_check_interval: 1,
      }));
      const { api, until, instances } = group;
      const hooks: string[] = [];
      try {
        for (const id of ["a", "b"]) {
          const port = await freePort();
          hooks.push(`http://127.0.0.1:${port}/telegram/updates`);
          group.start(id, {
            WEBHOOK_URL: hooks.at(-1)!,
            WEBHOOK_PORT: String(port),
            WEBHOOK_SECRET: secret,
          });
        }
        const [a, b] = instances as [Instance, Instance];
        const [apiA, apiB] = await Promise.all([a.api, b.api]);
        await api.until((calls) => calls.filter((c) => c.method === "setWebhook").length === 2);

        // The schema was applied by one of them; the other found it done.
        const migrated = instances.flatMap((i) => i.log.filter((l) => l.msg === "migrated the database"));
        expect(migrated).toHaveLength(1);
        expect(migrated[0]!.versions).toEqual(
          readdirSync(postgresMigrationsDir)
            .filter((f) => /^\d{4}_/.test(f))
            .sort()
            .map((f) => Number(f.slice(0, 4))),
        );

        // Both list both, with each singleton held once; both show the same ratings, by
        // the instance that holds the health monitor.
        const health = async (base: string) => {
          const res = await fetch(`${base}/api/health`);
          if (!res.ok) throw new Error(`GET /api/health: ${res.status} ${await res.text()}`);
          return (await res.json()) as HealthAnswer;
        };
        const singletons = ["alert-delivery", "health-monitor", "metrics-snapshot"];
        await until(() => singletons.every((name) => a.holding.has(name) || b.holding.has(name)));
        const [seenA, seenB] = await vi.waitFor(
          async () => {
            const views = await Promise.all([health(apiA), health(apiB)]);
            for (const view of views) {
              expect(view.instances.map((i) => i.id).sort()).toEqual(["a", "b"]);
              expect(view.instances.flatMap((i) => i.singletons).sort()).toEqual(singletons);
              expect(view.servers.every((s) => s.checkedAt !== undefined)).toBe(true);
            }
            return views;
          },
          // Their rows follow at the next beat; few looks, under the API's rate limit.
          { timeout: 60_000, interval: 1000 },
        );
        const monitor = seenA.instances.find((i) => i.singletons.includes("health-monitor"))!.id;
        expect(seenA.ratedBy).toBe(monitor);
        expect(seenB.ratedBy).toBe(monitor);
        // A reader never probes: its ratings carry a probe time only as the holder wrote them.
        const statuses = (v: HealthAnswer) => v.servers.map((s) => [s.server, s.status]);
        expect(statuses(seenB)).toEqual(statuses(seenA));
        expect(seenA.instances[0]!).toMatchObject({ id: "a", self: true, pid: a.child.pid });
        expect(seenB.instances[0]!).toMatchObject({ id: "b", self: true, pid: b.child.pid });
        const page = await (await fetch(`${apiA}/`)).text();
        expect(page).toContain('<table id="instances">');
        expect(page).toMatch(/<td>a \(this one\)<\/td>/);
        expect(page).toMatch(/<td>b<\/td>/);
        const metrics = await (await fetch(`${apiB}/metrics`)).text();
        expect(metrics).toMatch(/^taskfan_instances 2$/m);

        // A conversation: begun through A's webhook, finished through B's.
        await deliver(hooks[0]!, text("/newtask Ship it | the release | p1 | #release"));
        await api.until((calls) =>
          calls.filter(toOwner).some((c) => String(c.payload.text).includes("• Title: Ship it")),
        );
        await deliver(hooks[1]!, press("nt:create"));
        await api.until((calls) =>
          calls.filter(toOwner).some((c) => String(c.payload.text).includes("Done: every server has it.")),
        );
        const tasks = (await (await fetch(`${apiA}/api/tasks`)).json()) as {
          tasks: Array<{ title: string }>;
        };
        expect(tasks.tasks.map((t) => t.title)).toEqual(["Ship it"]);

        // /health in the chat lists the group.
        await deliver(hooks[0]!, text("/health now"));
        await api.until((calls) =>
          calls.filter(toOwner).some((c) => String(c.payload.text).includes("Instances: 2")),
        );

        // A clean stop takes the instance's row with it.
        expect(await terminate(b.child)).toBe(0);
        const after = await health(apiA);
        expect(after.instances.map((i) => i.id)).toEqual(["a"]);
      } finally {
        await group.stop();
      }
    },
  );
});
