import { createServer, connect, type Socket } from "node:net";
import pg from "pg";
import { describe, expect, it, vi } from "vitest";
import { onceEverywhere, recordsPerServer } from "../server-records.js";
import { groupSingletons, startServedGroup } from "./instance.js";
import { allTasksDone, clusterPostgres } from "./hooks.js";

const postgres = clusterPostgres();

/**
 * A TCP hop to PostgreSQL that can be cut: every connection through it is dropped, and new
 * ones are dropped at once, until it is restored. One instance's network to the database.
 */
async function cuttable(
  target: string,
): Promise<{ url: string; cut(): void; restore(): void; close(): void }> {
  const to = new URL(target);
  const sockets = new Set<Socket>();
  let cut = false;
  const hop = createServer((inbound) => {
    if (cut) return inbound.destroy();
    const outbound = connect(Number(to.port), to.hostname);
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on("error", () => undefined);
      s.on("close", () => {
        sockets.delete(s);
        inbound.destroy();
        outbound.destroy();
      });
    }
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve) => hop.listen(0, "127.0.0.1", resolve));
  const url = new URL(target);
  url.port = String((hop.address() as { port: number }).port);
  return {
    url: url.toString(),
    cut() {
      cut = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      cut = false;
    },
    close() {
      for (const s of sockets) s.destroy();
      hop.close();
    },
  };
}

const singletons = groupSingletons;

describe("an instance cut off from PostgreSQL", () => {
  it(
    "stops taking work; its leases are taken over and its singletons move; it rejoins when the database is back; every task once on every server",
    { timeout: 240_000 },
    async () => {
      const group = await startServedGroup(postgres(), { dispatcher: { lease_seconds: 10 } });
      const { until, start, dataDir } = group;
      const hop = await cuttable(group.url);
      const admin = new pg.Client({ connectionString: group.url });
      try {
        await admin.connect();
        // B first, through the hop: it holds every singleton; A joins.
        const b = start("b", { DATABASE_URL: hop.url });
        await until(() => singletons.every((s) => b.holding.has(s)));
        const a = start("a");
        await until(() => a.log.some((l) => l.msg === "taskfan started"));
        const [baseA, baseB] = await Promise.all([a.api, b.api]);
        const post = async (title: string): Promise<string> => {
          const res = await fetch(`${baseB}/api/tasks`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ title }),
          });
          expect(res.status).toBe(201);
          return ((await res.json()) as { task: { id: string } }).task.id;
        };
        // 100 tasks through B's API: B claims a share of them at once.
        const ids = await Promise.all(Array.from({ length: 100 }, (_, i) => post(`cut ${i}`)));
        const settled = () =>
          group.instances.flatMap((i) => i.log).filter((l) => l.msg === "task settled").length;
        await until(() => settled() >= 10);

        // B loses the database while it holds claims: one more task through B, whose ack
        // claims the servers B has room on (or B is busy with others), then the cut at once.
        ids.push(await post("the last before the cut"));
        hop.cut();
        const { rows: held } = await admin.query<{ id: number }>(
          "SELECT id FROM operations WHERE status = 'running' AND lease_owner LIKE $1",
          [`${b.child.pid}-%`],
        );
        expect(held.length).toBeGreaterThan(0);
        // A takes every singleton, and B stops them.
        await until(() => singletons.every((s) => a.holding.has(s)) && b.holding.size === 0);
        expect(b.log.some((l) => l.msg === "lost the lock session; stopping singletons")).toBe(true);
        // B's claims come back to A once their leases expire: every task ends done.
        await allTasksDone(admin, ids.length, 120_000);
        // Each one B held was claimed again by A once its lease expired (a second attempt,
        // which looks on the server before creating).
        const { rows } = await admin.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM operations WHERE id = ANY($1::bigint[]) AND attempts > 1",
          [held.map((r) => r.id)],
        );
        expect(rows[0]!.n).toBe(held.length);
        // B answers that its storage is unavailable instead of taking a task.
        const refused = await fetch(`${baseB}/api/tasks`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ title: "while cut off" }),
        });
        expect(refused.status).toBe(503);

        // The database is back for B: it beats again and A lists it.
        hop.restore();
        await vi.waitFor(
          async () => {
            const health = (await (await fetch(`${baseA}/api/health`)).json()) as {
              instances: Array<{ id: string }>;
            };
            expect(health.instances.map((i) => i.id).sort()).toEqual(["a", "b"]);
          },
          { timeout: 90_000, interval: 1000 },
        );
        const records = recordsPerServer(dataDir, ids);
        for (const id of ids) expect(records.get(id)).toEqual(onceEverywhere);
      } finally {
        await admin.end().catch(() => undefined);
        await group.stop();
        hop.close();
      }
    },
  );
});
