/**
 * `npm run bench -- --instances N`: a group of `taskfan start` processes on one PostgreSQL
 * (a throwaway cluster), the ten servers served over HTTP by `taskfan servers serve`.
 *
 * - Throughput with 1 … N instances: the same number of tasks posted across their HTTP
 *   APIs, timed until every one is done in the database; each run on a fresh database and
 *   fresh server data; as ratios to one instance in the same run. Twice: against servers
 *   that answer at once (each instance's own stdio processes of
 *   test/fixtures/instant-server.mjs, four calls at a time: the store and the orchestrator
 *   are the bound), then against the real servers served over HTTP. With each rate, the CPU
 *   one task costs in the taskfan processes (their servers not counted) and in PostgreSQL's
 *   processes, from /proc: what N instances on C cores can give, on paper.
 * - Failover: two instances polling a fake Bot API; the poller's holder is killed with
 *   SIGKILL (`--kills K`), or stopped with SIGSTOP (`--pauses K`), and the time to the next
 *   getUpdates (from the other) is taken; the killed one starts again, the stopped one goes
 *   on, and the next round follows. p50 and p95 over the rounds.
 */
import { once } from "node:events";
import { availableParallelism } from "node:os";
import pg from "pg";
import { percentile } from "../src/monitoring/health-rules.js";
import { startGroup, startServedGroup, type Group, type Instance } from "../test/cluster/instance.js";
import { instantRoles } from "../test/helpers.js";
import { processCpu, startPostgres, type TestPostgres } from "../test/postgres.js";

type Say = (text: string) => void;

const isStarted = (i: Instance) => i.log.some((l) => l.msg === "taskfan started");

type Servers = "instant" | "served";

function startBenchGroup(server: TestPostgres, servers: Servers): Promise<Group> {
  if (servers === "served") return startServedGroup(server);
  return startGroup(server, () => ({
    servers: instantRoles(),
    security: { rate_limiting: { enabled: false } },
  }));
}

async function throughput(
  server: TestPostgres,
  servers: Servers,
  instances: number,
  tasks: number,
): Promise<{ perSecond: number; taskfanCpuMs: number; postgresCpuMs: number }> {
  const group = await startBenchGroup(server, servers);
  const db = new pg.Client({ connectionString: group.url });
  try {
    for (let i = 0; i < instances; i++) group.start(`i${i}`);
    await group.until(() => group.instances.every(isStarted));
    const bases = await Promise.all(group.instances.map((i) => i.api));
    await db.connect();
    // CPU of the taskfan processes themselves (not their servers) and of PostgreSQL's.
    const taskfanCpu = () =>
      group.instances.reduce((sum, i) => sum + (processCpu(i.child.pid!)?.ownMs ?? 0), 0);
    const cpuBefore = { taskfan: taskfanCpu(), postgres: server.cpuMs() };
    const begun = performance.now();
    let next = 0;
    // Twenty clients at a time, each posting to the instances in turn.
    await Promise.all(
      Array.from({ length: 20 }, async () => {
        while (next < tasks) {
          const n = next++;
          const res = await fetch(`${bases[n % bases.length]}/api/tasks`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ title: `bench ${n}` }),
          });
          if (res.status !== 201) throw new Error(`POST /api/tasks: ${res.status} ${await res.text()}`);
        }
      }),
    );
    for (;;) {
      const { rows } = await db.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM tasks WHERE settled_at IS NOT NULL",
      );
      if (rows[0]!.n >= tasks) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const seconds = (performance.now() - begun) / 1000;
    const cpu = { taskfan: taskfanCpu() - cpuBefore.taskfan, postgres: server.cpuMs() - cpuBefore.postgres };
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM tasks WHERE status <> 'done'",
    );
    if (rows[0]!.n > 0) throw new Error(`${rows[0]!.n} tasks did not end done`);
    return {
      perSecond: tasks / seconds,
      taskfanCpuMs: cpu.taskfan / tasks,
      postgresCpuMs: cpu.postgres / tasks,
    };
  } finally {
    await db.end().catch(() => undefined);
    await group.stop();
  }
}

/**
 * The time from the end of the poller's holder to the next getUpdates from another: killed
 * (SIGKILL; it starts again for the next round) or paused (SIGSTOP until another polls,
 * then SIGCONT: it finds its lock session ended, stops its singletons and goes on as one of
 * the group), `rounds` times.
 */
async function failover(server: TestPostgres, rounds: number, how: "kill" | "pause"): Promise<number[]> {
  const group = await startServedGroup(server);
  const times: number[] = [];
  try {
    const live = new Map<string, Instance>([
      ["a", group.start("a")],
      ["b", group.start("b")],
    ]);
    for (let k = 0; k < rounds; k++) {
      await group.until(
        () =>
          [...live.values()].every(isStarted) &&
          [...live.values()].some((i) => i.holding.has("telegram-polling")),
      );
      const [id, holder] = [...live.entries()].find(([, i]) => i.holding.has("telegram-polling"))!;
      const polls = group.api.polls;
      if (how === "kill") {
        const exited = once(holder.child, "exit");
        const killed = performance.now();
        holder.child.kill("SIGKILL");
        await group.api.until(() => group.api.polls > polls, 60_000);
        times.push(performance.now() - killed);
        await exited;
        live.set(id, group.start(id));
        continue;
      }
      const lost = holder.log.filter((l) => l.msg === "lost the lock session; stopping singletons").length;
      const paused = performance.now();
      process.kill(holder.child.pid!, "SIGSTOP");
      try {
        await group.api.until(() => group.api.polls > polls, 60_000);
        times.push(performance.now() - paused);
      } finally {
        process.kill(holder.child.pid!, "SIGCONT");
      }
      await group.until(
        () =>
          holder.log.filter((l) => l.msg === "lost the lock session; stopping singletons").length > lost &&
          !holder.holding.has("telegram-polling"),
      );
    }
    return times;
  } finally {
    await group.stop();
  }
}

export async function benchInstances(
  max: number,
  options: { tasks: number; kills: number; pauses: number; say: Say; progress: Say },
): Promise<Record<string, number>> {
  const { say, progress } = options;
  const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;
  const result: Record<string, number> = {};
  const server = await startPostgres({ durable: true });
  try {
    result.cores = availableParallelism();
    say(`instances: 1 to ${max} · ${options.tasks} tasks a run · PostgreSQL · ${result.cores} cores`);
    const cases = [
      ["instant", "store-bound: servers that answer at once"],
      ["served", "the real servers, served over HTTP"],
    ] as const;
    for (const [servers, title] of cases) {
      say(`${title}:`);
      const key = (n: number) => `${servers}_throughput_${n}`;
      for (let n = 1; n <= max; n++) {
        progress(`${title}: ${n} instance(s), ${options.tasks} tasks`);
        const run = await throughput(server, servers, n, options.tasks);
        const perSecond = round(run.perSecond);
        result[`${key(n)}_tasks_per_s`] = perSecond;
        result[`${key(n)}_ratio`] = round(perSecond / result[`${key(1)}_tasks_per_s`]!, 2);
        result[`${key(n)}_taskfan_cpu_ms_per_task`] = round(run.taskfanCpuMs, 2);
        result[`${key(n)}_postgres_cpu_ms_per_task`] = round(run.postgresCpuMs, 2);
        say(
          `  with ${n}: ${perSecond} tasks/s (${result[`${key(n)}_ratio`]} of one instance); CPU a task: taskfan ${result[`${key(n)}_taskfan_cpu_ms_per_task`]} ms, PostgreSQL ${result[`${key(n)}_postgres_cpu_ms_per_task`]} ms`,
        );
      }
    }
    for (const [how, rounds, key, what] of [
      ["kill", options.kills, "failover", "kill -9"],
      ["pause", options.pauses, "pause_failover", "kill -STOP"],
    ] as const) {
      if (rounds <= 0) continue;
      progress(`failover: ${rounds} rounds of ${what} of the poller's holder`);
      const times = await failover(server, rounds, how);
      result[`${key}_p50_ms`] = round(percentile(times, 0.5) ?? NaN, 0);
      result[`${key}_p95_ms`] = round(percentile(times, 0.95) ?? NaN, 0);
      say(
        `failover (${what} of the poller's holder to the next getUpdates): p50 ${result[`${key}_p50_ms`]} ms, p95 ${result[`${key}_p95_ms`]} ms over ${times.length} rounds (goal: p95 at most 10 000 ms)`,
      );
    }
    return result;
  } finally {
    server.remove();
  }
}
