import pg from "pg";
import { describe, expect, it } from "vitest";
import { terminate } from "../helpers.js";
import { onceEverywhere, recordsPerServer } from "../server-records.js";
import { groupSingletons, startServedGroup } from "./instance.js";
import { allTasksDone, clusterPostgres } from "./hooks.js";

const postgres = clusterPostgres();

/** How long the holder stands still: three leases, well past the time its claims run out. */
const pauseMs = 90_000;

describe("an instance that stops for a while and goes on (two instances, the servers over HTTP)", () => {
  it(
    "kill -STOP the holder of every singleton for 90 s mid fan-out of 100 tasks: the other polls Telegram while it is stopped; resumed, it doubles nothing and loses nothing, and rejoins",
    { timeout: 420_000 },
    async () => {
      const group = await startServedGroup(postgres(), {
        // A stopped peer is noticed by its heartbeat; the probes need not run often.
        health_check_interval: 5,
      });
      const { api, until, start, dataDir } = group;
      const admin = new pg.Client({ connectionString: group.url });
      try {
        const a = start("a");
        await until(() => groupSingletons.every((s) => a.holding.has(s)));
        const b = start("b");
        await until(() => b.log.some((l) => l.msg === "taskfan started"));
        const base = await a.api;

        // All through `a`: it hears of them first and claims them, the serial servers' turns
        // included, which `b` then finds busy (it passes a server another live instance is
        // calling).
        const post = async (key: string) => {
          const res = await fetch(`${base}/api/tasks`, {
            method: "POST",
            headers: { "content-type": "application/json", "idempotency-key": key },
            body: JSON.stringify({ title: key }),
          });
          expect(res.status).toBe(201);
          return ((await res.json()) as { task: { id: string } }).task.id;
        };
        const ids = await Promise.all(Array.from({ length: 100 }, (_, i) => post(`pause ${i}`)));
        // Mid fan-out, with operations of its own claimed and under way, `a` stands still.
        const settled = () =>
          group.instances.flatMap((i) => i.log).filter((l) => l.msg === "task settled").length;
        await until(() => settled() >= 20);
        await admin.connect();
        // Its claims at a moment (its dispatcher's row names its pid).
        const heldByA = async () =>
          (
            await admin.query<{ n: number }>(
              `SELECT count(*)::int AS n FROM operations o JOIN dispatchers d ON d.owner = o.lease_owner
               WHERE o.status = 'running' AND split_part(d.process, ' ', 2) = $1`,
              [String(a.child.pid)],
            )
          ).rows[0]!.n;
        // Stop it at a moment when it holds claims: seen holding one, it is stopped, and a stop
        // that finds it between claims after all is undone at once and tried again. Seen
        // holding none, it is given one more task (its ack or the pass after claims it).
        let stoppedAt = 0;
        for (;;) {
          expect(ids.length, "`a` was never caught holding a claim").toBeLessThan(150);
          if ((await heldByA()) === 0) {
            ids.push(await post(`pause more ${ids.length}`));
            continue;
          }
          process.kill(a.child.pid!, "SIGSTOP");
          stoppedAt = Date.now();
          const held = await heldByA().catch((err: unknown) => {
            process.kill(a.child.pid!, "SIGCONT");
            throw err;
          });
          if (held > 0) break;
          process.kill(a.child.pid!, "SIGCONT");
        }
        try {
          // The other instance ends the stopped one's sessions and takes every singleton:
          // Telegram hears from it while `a` is still stopped.
          const pollsBefore = api.polls;
          await until(() => groupSingletons.every((s) => b.holding.has(s)));
          await api.until(() => api.polls > pollsBefore, pauseMs);
          process.stdout.write(
            `pause test: ${Date.now() - stoppedAt} ms from SIGSTOP to the other instance's poll\n`,
          );
          expect(b.log.some((l) => String(l.msg).startsWith("ended the database sessions"))).toBe(true);
          // The pause itself: what is tested is what the stopped process does afterwards.
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, stoppedAt + pauseMs - Date.now())));
        } finally {
          process.kill(a.child.pid!, "SIGCONT");
        }
        // Resumed, `a` finds its lock session gone and stops its singletons.
        await until(() => a.log.some((l) => l.msg === "lost the lock session; stopping singletons"));
        await until(() => a.holding.size === 0);

        await allTasksDone(admin, ids.length, 180_000);
        // Resumed, `a` meets the claims it held when it stopped, which the other instance has
        // taken over and finished: it sends none of them and writes no outcome of theirs.
        await until(() =>
          a.log.some(
            (l) =>
              l.msg === "lease lost; leaving the operation to its next holder" ||
              String(l.msg).startsWith("outcome not recorded"),
          ),
        );
        const records = recordsPerServer(dataDir, ids);
        for (const id of ids) expect(records.get(id), id).toEqual(onceEverywhere);
        // It is one of the group again.
        await expect
          .poll(
            async () => (await admin.query<{ id: string }>("SELECT id FROM instances ORDER BY id")).rows,
            {
              timeout: 10_000,
            },
          )
          .toEqual([{ id: "a" }, { id: "b" }]);
        // And it stops cleanly when asked, its sessions ended under it and all.
        expect(await terminate(a.child)).toBe(0);
      } finally {
        await admin.end().catch(() => undefined);
        await group.stop();
      }
    },
  );
});
