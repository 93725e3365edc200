/**
 * npm run bench [-- --json] [--full] [--tasks N] [--sequential N] [--warmup N] [--seed N]
 *               [--store sqlite|postgres] [--transport stdio|http] [--instances N [--kills K] [--pauses K]]
 *
 * Measures, on the embedded default's ten local servers and a fresh DATA_DIR: cold start
 * against the same ten servers started bare, the time until a task is durable, the fan-out
 * of one task against the same ten tool calls made directly with the SDK (the floor),
 * throughput against the servers' own ceiling (two runs of N tasks a side, each on fresh
 * server data), commits per outcome under that load, memory, and how fast /health and
 * /stats answer with 1 000 000 operations stored (`--seed N`). About five minutes on a 2-core machine
 * (`--full`: 2 000 tasks a run and 100 one at a time, about a quarter of an hour).
 * Progress goes to stderr. `--store postgres`: the same on PostgreSQL, a fresh database
 * per core on the server DATABASE_URL names (its user may create databases), or on a
 * throwaway cluster this run starts from Debian's package. `--transport http`: every role
 * over Streamable HTTP, each data folder's servers served by a `taskfan servers serve`
 * process, and the floor's SDK clients over HTTP too. `--instances N`: throughput with 1 to N
 * `taskfan start` processes on one PostgreSQL and the failover time (see ./instances.ts)
 * instead of the above.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ListRootsRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { bulkhead } from "cockatiel";
import pg from "pg";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { completeConfig } from "../src/config/load.js";
import { defaultDataFolders } from "../src/config/default.js";
import {
  serverNames,
  type Config,
  type ConfigFile,
  type ServerConfig,
  type ServerName,
} from "../src/config/schema.js";
import { openServer } from "../src/fleet/transport.js";
import { createIntegration } from "../src/integrations/index.js";
import { dependencies, type CallTool, type Integration } from "../src/integrations/integration.js";
import { createLogger } from "../src/log.js";
import { startCore, type Core } from "../src/core.js";
import type { SqliteStore } from "../src/store/sqlite/sqlite-store.js";
import { percentile } from "../src/monitoring/health-rules.js";
import { lastHourActivity } from "../src/monitoring/stats.js";
import { newTaskId, type ChangeKind, type Task } from "../src/domain/task.js";
import { startPostgres } from "../test/postgres.js";
import { terminate } from "../test/helpers.js";
import { serve, type Served } from "../test/served.js";
import { benchInstances } from "./instances.js";

const { values } = parseArgs({
  options: {
    json: { type: "boolean", default: false },
    full: { type: "boolean", default: false },
    tasks: { type: "string" },
    sequential: { type: "string" },
    seed: { type: "string", default: "1000000" },
    warmup: { type: "string", default: "5" },
    store: { type: "string", default: "sqlite" },
    transport: { type: "string", default: "stdio" },
    instances: { type: "string" },
    kills: { type: "string", default: "10" },
    pauses: { type: "string", default: "5" },
  },
});
const throughputTasks = Number(values.tasks ?? (values.full ? 2000 : 600));
const sequential = Number(values.sequential ?? (values.full ? 100 : 50));
const seedOps = Number(values.seed);
const warmup = Number(values.warmup);
const log = createLogger({ level: "silent", stderr: false });
const say = (text: string) => {
  if (!values.json) process.stdout.write(`${text}\n`);
};
const started = Date.now();
/** A line on stderr, so a long run shows it is alive (stdout keeps the results). */
const progress = (text: string) =>
  process.stderr.write(`bench ${String(Math.round((Date.now() - started) / 1000)).padStart(4)} s: ${text}\n`);
const p = (xs: number[], q: number) => percentile(xs, q) ?? NaN;
const rssMb = () => Math.round((process.memoryUsage().rss / 1024 / 1024) * 10) / 10;
const round = (n: number, d = 1) => Math.round(n * 10 ** d) / 10 ** d;

if (values.store !== "sqlite" && values.store !== "postgres")
  throw new Error("--store is sqlite or postgres");
if (values.transport !== "stdio" && values.transport !== "http")
  throw new Error("--transport is stdio or http");
/** Over HTTP: the served servers of each data folder, stopped with it. */
const served = new Map<string, Served>();

async function release(config: Config): Promise<void> {
  const front = served.get(config.data_dir);
  served.delete(config.data_dir);
  if (front) await terminate(front.child);
}
let postgres: { url(db?: string): string; createDatabase(): Promise<string>; remove(): void } | undefined;

/** Time spent making a database for a run (the cluster, CREATE DATABASE): no part of a start. */
let storeSetupMs = 0;

/** A store for one core: SQLite under its DATA_DIR, or a fresh PostgreSQL database. */
async function storeFor(): Promise<ConfigFile["store"]> {
  if (values.store === "sqlite") return {};
  const begun = performance.now();
  try {
    return await newDatabase();
  } finally {
    storeSetupMs += performance.now() - begun;
  }
}

async function newDatabase(): Promise<ConfigFile["store"]> {
  if (!postgres) {
    const server = process.env.DATABASE_URL;
    if (server) {
      const base = new URL(server);
      postgres = {
        url: (db = base.pathname.slice(1)) => Object.assign(new URL(base), { pathname: `/${db}` }).toString(),
        async createDatabase() {
          const name = `taskfan_bench_${Date.now().toString(36)}${Math.floor(Math.random() * 1e6)}`;
          const client = new pg.Client({ connectionString: server });
          await client.connect();
          await client.query(`CREATE DATABASE ${name}`).finally(() => client.end());
          return this.url(name);
        },
        remove: () => undefined,
      };
    } else postgres = await startPostgres({ durable: true });
  }
  return { url: await postgres.createDatabase() };
}

async function freshConfig(root: string, withStore = true): Promise<Config> {
  const dataDir = path.join(root, "data");
  const file: ConfigFile = {
    http: { enabled: false },
    monitoring_enabled: false,
    store: withStore ? await storeFor() : {},
  };
  if (values.transport === "http") {
    // A process of its own, as in use: its front does not share this process's event loop.
    const front = await serve(dataDir);
    served.set(dataDir, front);
    file.servers = Object.fromEntries(serverNames.map((r) => [r, { url: front.urls[r] }]));
  }
  const config = completeConfig(file, { DATA_DIR: dataDir }, root);
  for (const dir of defaultDataFolders(config.data_dir)) mkdirSync(dir, { recursive: true });
  return config;
}

function fakeTask(title: string): Task {
  const now = Date.now();
  return {
    id: newTaskId(),
    title,
    description: "",
    priority: 3,
    deadline: null,
    tags: [],
    status: "pending",
    statusReason: null,
    createdAt: now,
    updatedAt: now,
    settledAt: null,
    rollbackReason: null,
    state: "open",
    version: 1,
    completedAt: null,
    deletedAt: null,
    chatId: null,
    userId: null,
  };
}

/** The floor: each server behind a bare SDK client, no store, no policies. */
async function rawFleet(config: Config) {
  const servers = Object.values(config.servers).filter((s) => s.enabled);
  const members = await Promise.all(
    servers.map(async (s: ServerConfig) => {
      // Reached the way taskfan reaches it (a child over stdio, its stderr drained and
      // dropped, or the served URL over Streamable HTTP).
      const transport = openServer(s, {
        onStderr: () => undefined,
        onRetryAfter: () => undefined,
        onTooLarge: () => undefined,
      });
      // The same client capabilities as taskfan's (roots answered with none), so the floor
      // differs from taskfan by the store and the policies only.
      const client = new Client(
        { name: "bench", version: "0" },
        { capabilities: { roots: { listChanged: false } } },
      );
      client.setRequestHandler(ListRootsRequestSchema, () => ({ roots: [] }));
      await client.connect(transport);
      const integration: Integration = createIntegration(s);
      const call: CallTool = async (name, args) => {
        const result = (await client.callTool({ name, arguments: args })) as Awaited<ReturnType<CallTool>>;
        if (result.isError) throw new Error(`${s.name}: ${name} failed`);
        return result;
      };
      await integration.prepare?.(call, AbortSignal.timeout(30_000));
      const tools = new Set((await client.listTools()).tools.map((t) => t.name));
      return {
        name: s.name,
        integration,
        call,
        tools,
        queue: bulkhead(s.concurrency, Number.MAX_SAFE_INTEGER),
        client,
      };
    }),
  );
  const order = dependencies(servers, new Map(members.map((m) => [m.name, m.integration])));
  return {
    members,
    /** The ten create calls of one task, in parallel, each through its server's queue. */
    async fanOut(task: Task) {
      await Promise.all(
        members.map((m) =>
          m.queue.execute(() => m.integration.create(task, m.call, AbortSignal.timeout(60_000))),
        ),
      );
    },
    /** The same calls in taskfan's order: each waits for the calls it depends on (backup for filesystem, notifications for the required servers). */
    async fanOutOrdered(task: Task) {
      const calls = new Map<ServerName, Promise<unknown>>();
      const start = (m: (typeof members)[number]): Promise<unknown> => {
        let call = calls.get(m.name);
        if (!call) {
          const first = order.get(m.name) ?? [];
          call = Promise.all(first.map((d) => start(members.find((x) => x.name === d)!))).then(() =>
            m.queue.execute(() => m.integration.create(task, m.call, AbortSignal.timeout(60_000))),
          );
          calls.set(m.name, call);
        }
        return call;
      };
      await Promise.all(members.map(start));
    },
    /** The ten creates of one task, in parallel; each server's record id (none where skipped). */
    async create(task: Task) {
      const ids = new Map<ServerName, string>();
      await Promise.all(
        members.map(async (m) => {
          const made = await m.queue.execute(() =>
            m.integration.create(task, m.call, AbortSignal.timeout(60_000)),
          );
          if ("remoteId" in made) ids.set(m.name, made.remoteId);
        }),
      );
      return ids;
    },
    /** One change of a task on each server that holds it, in parallel, with the tools taskfan uses. */
    async change(task: Task, kind: ChangeKind, ids: Map<ServerName, string>) {
      await Promise.all(
        members.map(async (m) => {
          const remoteId = ids.get(m.name);
          if (!remoteId || !m.integration.change) return;
          const req = {
            kind,
            remoteId,
            key: `${task.id}:${m.name}:${kind}:${task.version}`,
            recheck: false,
            has: (tool: string) => m.tools.has(tool),
          };
          const out = await m.queue.execute(() =>
            m.integration.change!(req, task, m.call, AbortSignal.timeout(60_000)),
          );
          if (out.remoteId) ids.set(m.name, out.remoteId);
        }),
      );
    },
    /** One MCP ping of each server, in parallel. */
    ping: () => Promise.all(members.map((m) => m.client.ping())),
    close: () => Promise.all(members.map((m) => m.client.close())),
  };
}

async function main() {
  const root = mkdtempSync(path.join(tmpdir(), "taskfan-bench-"));
  const rawRoot = mkdtempSync(path.join(tmpdir(), "taskfan-bench-raw-"));
  const targets: Record<string, string> = {};
  const result: Record<string, number> = {};
  try {
    say(`taskfan bench · ${new Date().toISOString()} · node ${process.version}`);
    // Cold start: process start to all ten connected and probed ONLINE, less the time the
    // bench took to make the run's database (a throwaway cluster's initdb and start, CREATE
    // DATABASE), which a start of taskfan finds made.
    say(`store: ${values.store} · transport: ${values.transport}`);
    const config = await freshConfig(root);
    const core: Core = await startCore(config, log);
    const health = await core.checkHealth();
    result.cold_start_ms = round(performance.now() - storeSetupMs);
    if (storeSetupMs > 0) result.store_setup_ms = round(storeSetupMs);
    const notOnline = health.filter((h) => h.status !== "ONLINE");
    if (notOnline.length > 0)
      throw new Error(`not ONLINE: ${notOnline.map((h) => `${h.server} ${h.reason}`).join(", ")}`);
    progress(`cold start ${result.cold_start_ms} ms; the same ten servers started bare`);
    // The floor of a start: the same ten servers spawned in parallel with bare SDK clients,
    // connected, set up and pinged once each (after taskfan's start, so with warm caches).
    const rawStart = performance.now();
    const raw = await rawFleet(await freshConfig(rawRoot, false));
    await raw.ping();
    result.raw_cold_start_ms = round(performance.now() - rawStart);
    result.cold_start_ratio = round(result.cold_start_ms / result.raw_cold_start_ms, 2);

    // One task at a time: durable (ack), then settled (fan-out); after each, the same ten
    // calls straight through SDK clients (the floor), all ten at once and in taskfan's order.
    // Taking them in turn keeps a drift in the machine's load out of the ratios.
    progress(`${sequential} tasks one at a time, taking turns with the floor`);
    const acks: number[] = [];
    const fans: number[] = [];
    const rawFans: number[] = [];
    const ordered: number[] = [];
    // The orchestrator's own CPU per task against the floor clients': what the store and
    // the policies cost, on a machine whose cores the servers share.
    let cpuOurs = 0;
    let cpuRaw = 0;
    // Statements sent to PostgreSQL while one task is acked, and until it settled (the
    // background loops' in that time included); SQLite runs in the process: 0.
    let ackTrips = 0;
    let taskTrips = 0;
    const cpuMs = (since: NodeJS.CpuUsage) => {
      const used = process.cpuUsage(since);
      return (used.user + used.system) / 1000;
    };
    // A few rounds first, not counted: both sides warm up (JIT, caches, first files).
    for (let i = 0; i < warmup; i++) {
      await core.orchestrator.waitForSettled(
        await core.orchestrator.createTask({ title: `warm-up ${i}` }),
        60_000,
      );
      await raw.fanOut(fakeTask(`raw warm-up ${i}`));
      await raw.fanOutOrdered(fakeTask(`raw ordered warm-up ${i}`));
    }
    // Each side follows each of the others equally often: whatever a round leaves behind
    // (a server finishing its writes after it answered) falls on all three alike.
    const rounds = [
      async (i: number) => {
        const cpu = process.cpuUsage();
        const trips0 = core.store.roundTrips;
        const t0 = performance.now();
        const id = await core.orchestrator.createTask({ title: `sequential ${i}` });
        acks.push(performance.now() - t0);
        ackTrips += core.store.roundTrips - trips0;
        const view = await core.orchestrator.waitForSettled(id, 60_000);
        fans.push(performance.now() - t0);
        taskTrips += core.store.roundTrips - trips0;
        if (view?.task.status !== "done") throw new Error(`task ${id} ended ${view?.task.status}`);
        cpuOurs += cpuMs(cpu);
      },
      async (i: number) => {
        const cpu = process.cpuUsage();
        const t0 = performance.now();
        await raw.fanOut(fakeTask(`raw ${i}`));
        rawFans.push(performance.now() - t0);
        cpuRaw += cpuMs(cpu);
      },
      async (i: number) => {
        const t0 = performance.now();
        await raw.fanOutOrdered(fakeTask(`raw ordered ${i}`));
        ordered.push(performance.now() - t0);
      },
    ];
    for (let i = 0; i < sequential; i++) {
      for (let r = 0; r < rounds.length; r++) await rounds[(i + r) % rounds.length]!(i);
    }
    Object.assign(result, {
      ack_p50_ms: round(p(acks, 0.5), 2),
      ack_p95_ms: round(p(acks, 0.95), 2),
      fanout_p50_ms: round(p(fans, 0.5)),
      fanout_p95_ms: round(p(fans, 0.95)),
      raw_fanout_p50_ms: round(p(rawFans, 0.5)),
      raw_fanout_p95_ms: round(p(rawFans, 0.95)),
    });
    result.overhead_ratio = round(result.fanout_p50_ms! / result.raw_fanout_p50_ms!, 2);
    result.cpu_ms_per_task = round(cpuOurs / sequential, 2);
    result.store_round_trips_per_ack = round(ackTrips / sequential, 1);
    result.store_round_trips_per_task = round(taskTrips / sequential, 1);
    result.raw_cpu_ms_per_task = round(cpuRaw / sequential, 2);
    result.raw_ordered_fanout_p50_ms = round(p(ordered, 0.5));
    result.ordered_overhead_ratio = round(result.fanout_p50_ms! / result.raw_ordered_fanout_p50_ms, 2);

    // The lifecycle: an edit, then done, of one task at a time (made first, not counted),
    // against the same change calls straight through SDK clients on records the floor made.
    progress(`lifecycle: edit and done of ${sequential} tasks, taking turns with the floor`);
    const lifecycle = {
      edit: [] as number[],
      complete: [] as number[],
      rawEdit: [] as number[],
      rawComplete: [] as number[],
    };
    for (let i = 0; i < sequential; i++) {
      const id = await core.orchestrator.createTask({ title: `lifecycle ${i}` });
      await core.orchestrator.waitForSettled(id, 60_000);
      const made = fakeTask(`raw lifecycle ${i}`);
      const ids = await raw.create(made);
      const ourTurn = async () => {
        for (const [kind, input] of [
          ["edit", { kind: "update", fields: { title: `lifecycle ${i}, edited` } }],
          ["complete", { kind: "complete" }],
        ] as const) {
          const t0 = performance.now();
          await core.orchestrator.changeTask(id, input, { source: "bench" });
          const view = await core.orchestrator.waitForChanges(id, 60_000);
          lifecycle[kind].push(performance.now() - t0);
          if (
            view?.operations.some((o) => o.kind !== "create" && o.status !== "done" && o.status !== "skipped")
          )
            throw new Error(`a change of task ${id} did not land`);
        }
      };
      const floorTurn = async () => {
        let t0 = performance.now();
        const edited = { ...made, title: `${made.title}, edited`, version: 2 };
        await raw.change(edited, "update", ids);
        lifecycle.rawEdit.push(performance.now() - t0);
        t0 = performance.now();
        await raw.change({ ...edited, state: "done", version: 3, completedAt: Date.now() }, "complete", ids);
        lifecycle.rawComplete.push(performance.now() - t0);
      };
      // Turns alternate which side goes first.
      if (i % 2 === 0) await ourTurn().then(floorTurn);
      else await floorTurn().then(ourTurn);
    }
    Object.assign(result, {
      edit_p50_ms: round(p(lifecycle.edit, 0.5)),
      edit_p95_ms: round(p(lifecycle.edit, 0.95)),
      raw_edit_p50_ms: round(p(lifecycle.rawEdit, 0.5)),
      complete_p50_ms: round(p(lifecycle.complete, 0.5)),
      complete_p95_ms: round(p(lifecycle.complete, 0.95)),
      raw_complete_p50_ms: round(p(lifecycle.rawComplete, 0.5)),
    });
    result.edit_overhead_ratio = round(result.edit_p50_ms! / result.raw_edit_p50_ms!, 2);
    result.complete_overhead_ratio = round(result.complete_p50_ms! / result.raw_complete_p50_ms!, 2);

    // Throughput: N tasks as fast as they can be submitted, until all settled. Two runs a
    // side, in the order taskfan, floor, floor, taskfan: a drift in the machine's speed
    // during the four falls on both sides alike. Each run starts on fresh server data (shrimp
    // rewrites one JSON file of every task on each call, so a run on the last one's data is
    // slower for it). Each figure is N over the mean time of its side's two runs.
    await raw.close();
    let commits = 0;
    let outcomes = 0;
    const ours = async (run: number, measureRss = false) => {
      const dir = mkdtempSync(path.join(tmpdir(), "taskfan-bench-run-"));
      const fresh = await startCore(await freshConfig(dir), log);
      try {
        global.gc?.();
        if (measureRss) result.rss_mb_start = rssMb();
        const before = fresh.store.commits.relaxed;
        const t0 = performance.now();
        const ids = await Promise.all(
          Array.from({ length: throughputTasks }, (_, i) =>
            fresh.orchestrator.createTask({ title: `bulk ${run}.${i}` }),
          ),
        );
        let settled = 0;
        const ticker = setInterval(
          () => progress(`throughput, taskfan run ${run}: ${settled}/${throughputTasks} settled`),
          15_000,
        );
        await Promise.all(
          ids.map((id) => fresh.orchestrator.waitForSettled(id, 30 * 60_000).then(() => (settled += 1))),
        );
        clearInterval(ticker);
        const seconds = (performance.now() - t0) / 1000;
        if (measureRss) result.rss_mb_end = rssMb();
        commits += fresh.store.commits.relaxed - before;
        outcomes += (await fresh.getStats()).total_operations;
        const notDone = Object.entries(await fresh.store.tasks.countByStatus()).filter(
          ([st]) => st !== "done",
        );
        if (notDone.length > 0) throw new Error(`after the throughput run: ${JSON.stringify(notDone)}`);
        return seconds;
      } finally {
        await fresh.close(5000);
        await release(fresh.config);
        rmSync(dir, { recursive: true, force: true });
      }
    };
    const floor = async (run: number) => {
      const dir = mkdtempSync(path.join(tmpdir(), "taskfan-bench-raw-run-"));
      const config = await freshConfig(dir, false);
      const fleet = await rawFleet(config);
      try {
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: throughputTasks }, (_, i) => fleet.fanOut(fakeTask(`raw bulk ${run}.${i}`))),
        );
        return (performance.now() - t0) / 1000;
      } finally {
        await fleet.close();
        await release(config);
        rmSync(dir, { recursive: true, force: true });
      }
    };
    progress(`throughput: ${throughputTasks} tasks a run, taskfan, floor, floor, taskfan`);
    // Memory around the first run of N tasks.
    const oursFirst = await ours(1, true);
    progress(`throughput, taskfan run 1: ${round(throughputTasks / oursFirst)} tasks/s`);
    const floorSeconds = (await floor(1)) + (await floor(2));
    progress(`throughput, floor runs: ${round((2 * throughputTasks) / floorSeconds)} tasks/s`);
    const oursSeconds = oursFirst + (await ours(2));
    result.throughput_tasks_per_s = round((2 * throughputTasks) / oursSeconds);
    result.raw_throughput_tasks_per_s = round((2 * throughputTasks) / floorSeconds);
    result.throughput_ratio = round(floorSeconds / oursSeconds, 2);
    // Outcomes under that load share commits with each other and with the claims they make room for.
    result.commits_per_outcome = round(commits / outcomes, 3);

    // /health and /stats with many operations stored (seeded straight into the database).
    // The chat's formatting is loaded here, not at the top: it is no part of taskfan's start.
    const { formatHealth } = await import("../handlers/health.js");
    const { formatStats } = await import("../handlers/stats.js");
    progress(`/health and /stats with ${seedOps} operations seeded`);
    await seed(core, seedOps);
    const healthTimes: number[] = [];
    const statsTimes: number[] = [];
    const t = (key: string, vars?: Record<string, string | number>) =>
      `${key}${vars ? JSON.stringify(vars) : ""}`;
    for (let i = 0; i < 100; i++) {
      let s = performance.now();
      formatHealth(core.getHealth(), t);
      healthTimes.push(performance.now() - s);
      s = performance.now();
      formatStats(await core.getStats(), await activityOf(core), t);
      statsTimes.push(performance.now() - s);
    }
    result.operations_stored = (await core.getStats()).total_operations;
    result.health_reply_p95_ms = round(p(healthTimes, 0.95), 2);
    result.stats_reply_p95_ms = round(p(statsTimes, 0.95), 2);
    await core.close(5000);

    progress("done");
    Object.assign(targets, {
      ack_p95_ms: "<= 5",
      fanout_p95_ms: "<= 150",
      overhead_ratio: "<= 1.10",
      throughput_ratio: ">= 0.90",
      rss_growth_mb: "< 50",
      cold_start_ms: "<= 2000",
      health_reply_p95_ms: "<= 50",
      stats_reply_p95_ms: "<= 50",
    });
    result.rss_growth_mb = round(result.rss_mb_end! - result.rss_mb_start!);
    if (values.json) {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    } else {
      say("");
      for (const [k, v] of Object.entries(result))
        say(`${k.padEnd(28)} ${String(v).padStart(10)}   ${targets[k] ? `target ${targets[k]}` : ""}`);
    }
  } finally {
    await Promise.all([...served.values()].map((f) => terminate(f.child)));
    rmSync(root, { recursive: true, force: true });
    rmSync(rawRoot, { recursive: true, force: true });
    postgres?.remove();
  }
}

function activityOf(core: Core): Promise<number[]> {
  return lastHourActivity(core.store);
}

/** Finished operations, spread over the last hour, written directly for the read benchmarks. */
async function seed(core: Core, count: number): Promise<void> {
  const servers = core.fleet.names as ServerName[];
  if (!("db" in core.store)) {
    // PostgreSQL: the same rows, made by the database itself.
    const client = new pg.Client({ connectionString: core.config.store.url });
    await client.connect();
    try {
      const now = Date.now();
      await client.query(
        `INSERT INTO tasks (id, title, priority, status, created_at, updated_at, settled_at)
         SELECT 'seed' || i, 'seeded ' || i, 3, 'done', $1 - (random() * 3600000)::bigint, $1, $1
         FROM generate_series(1, $2) AS i`,
        [now, Math.ceil(count / servers.length)],
      );
      await client.query(
        `INSERT INTO operations (task_id, server, kind, status, priority, attempts, idempotency_key, remote_id,
           duration_ms, total_ms, next_attempt_at, created_at, started_at, finished_at, updated_at)
         SELECT t.id, s, 'create', 'done', 3, 1, t.id || ':' || s || ':create', 'r', d, d, t.created_at,
           t.created_at, t.created_at, t.created_at + d, t.created_at + d
         FROM tasks t CROSS JOIN unnest($1::text[]) AS s CROSS JOIN LATERAL (SELECT 5 + (random() * 50)::int AS d) ms
         WHERE t.id LIKE 'seed%'`,
        [servers],
      );
      await client.query("ANALYZE");
    } finally {
      await client.end();
    }
    return;
  }
  const db = (core.store as SqliteStore).db;
  const insertTask = db.prepare(
    "INSERT INTO tasks (id, title, priority, status, created_at, updated_at, settled_at) VALUES (?, ?, 3, 'done', ?, ?, ?)",
  );
  const insertOp = db.prepare(
    `INSERT INTO operations (task_id, server, kind, status, priority, attempts, idempotency_key, remote_id, duration_ms, total_ms,
       next_attempt_at, created_at, started_at, finished_at, updated_at)
     VALUES (?, ?, 'create', 'done', 3, 1, ?, 'r', ?, ?, ?, ?, ?, ?, ?)`,
  );
  const now = Date.now();
  db.transaction(() => {
    for (let i = 0; i < count / servers.length; i++) {
      const id = `seed${i.toString(36).padStart(6, "0")}`;
      const at = now - Math.floor(Math.random() * 3_600_000);
      insertTask.run(id, `seeded ${i}`, at, at, at);
      for (const server of servers) {
        const ms = 5 + Math.floor(Math.random() * 50);
        insertOp.run(id, server, `${id}:${server}:create`, ms, ms, at, at, at, at + ms, at + ms);
      }
    }
  })();
}

/** `--instances N`: the group's figures only. */
async function mainInstances(max: number): Promise<void> {
  say(`taskfan bench · ${new Date().toISOString()} · node ${process.version}`);
  const result = await benchInstances(max, {
    tasks: Number(values.tasks ?? 300),
    kills: Number(values.kills),
    pauses: Number(values.pauses),
    say,
    progress,
  });
  if (values.json) process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

(values.instances ? mainInstances(Number(values.instances)) : main()).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
