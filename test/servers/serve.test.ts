import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { request } from "node:http";
import path from "node:path";
import { pino } from "pino";
import { afterAll, describe, expect, it } from "vitest";
import { serverNames, type ConfigFile } from "../../src/config/schema.js";
import { startHarness } from "../core-harness.js";
import { startHttpServer } from "../../src/api/http-server.js";
import { childPids, silentLog, repoRoot, stopSpawned, tempDir, terminate } from "../helpers.js";
import { backendOf, overHttp, serve } from "../served.js";
import { onceEverywhere, recordsPerServer } from "../server-records.js";

afterAll(() => stopSpawned());

/** One raw request (node:http, so Host may be anything); resolves with the status. */
async function post(url: string, headers: Record<string, string>): Promise<number> {
  return (await initialize(url, headers)).status;
}

/** An MCP initialize POST; resolves with the answer's status and headers. */
function initialize(
  url: string,
  headers: Record<string, string>,
): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
  const body = JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
  });
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: "POST",
        headers: {
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          ...headers,
        },
      },
      (res) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, headers: res.headers });
        res.destroy();
      },
    );
    req.once("error", reject);
    req.end(body);
  });
}

/** A POST of `bytes` zeros (with or without a Content-Length saying so); resolves with the status. */
function postMany(url: string, bytes: number, declared: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        ...(declared ? { "content-length": String(bytes) } : {}),
      },
    });
    req.once("response", (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
      req.destroy();
    });
    // The front hangs up before everything was sent: what it answered is the result.
    req.once("error", reject);
    const chunk = Buffer.alloc(1024 * 1024);
    let sent = 0;
    // A chunk a turn, as a client that also reads its answer meanwhile.
    const more = () => {
      if (req.destroyed) return;
      if (sent >= bytes) return void req.end();
      sent += chunk.length;
      if (req.write(chunk)) setImmediate(more);
      else req.once("drain", more);
    };
    more();
  });
}

/** A process's resident memory, in MB. */
function rssMb(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").match(/^VmRSS:\s+(\d+) kB$/m);
  return Number(line?.[1] ?? 0) / 1024;
}

describe("taskfan servers serve", () => {
  it(
    "serves the ten default servers over HTTP to a taskfan on a DATA_DIR of its own (examples/taskfan.http.json): a task reaches each once; SIGTERM stops every one",
    { timeout: 120_000 },
    async () => {
      const { dir, remove } = tempDir();
      const dataDir = path.join(dir, "data");
      const served = await serve(dataDir);
      const backends = childPids(served.child.pid!);
      expect(backends).toHaveLength(10);
      // examples/taskfan.http.json names the URLs a default `servers serve` prints (port 8790).
      const port = new URL(served.urls.deltatask).port;
      const example = readFileSync(path.join(repoRoot, "examples/taskfan.http.json"), "utf8");
      // taskfan on a DATA_DIR of its own, as on another machine: the file roles ask the
      // servers where to write, and no path of this side reaches them.
      const client = path.join(dir, "client");
      const h = await startHarness(
        {
          ...(JSON.parse(example.replaceAll(":8790/", `:${port}/`)) as ConfigFile),
          // Rated on reach, not speed: a busy machine's slow first calls are not what is tested.
          health: { slow_threshold_ms: 600_000 },
        } as ConfigFile,
        client,
      );
      try {
        expect(h.config.servers.memory.url).toBe(served.urls.memory);
        expect(h.core.fleet.names.map((s) => h.core.fleet.pid(s))).toEqual(serverNames.map(() => undefined));
        const ids = await Promise.all(
          [1, 2, 3].map((n) => h.core.orchestrator.createTask({ title: `served ${n}`, tags: ["http"] })),
        );
        for (const id of ids) {
          expect((await h.core.orchestrator.waitForSettled(id, 60_000))?.task.status).toBe("done");
        }
        const records = recordsPerServer(dataDir, ids);
        for (const id of ids) expect(records.get(id)).toEqual(onceEverywhere);
        const health = await h.core.checkHealth();
        expect(health.map((s) => [s.status, s.transport, s.url])).toEqual(
          serverNames.map((r) => ["ONLINE", "streamable-http", served.urls[r]]),
        );
        // The API, /stats and the status page say the same.
        const api = await startHttpServer(h.core, h.core.metrics, silentLog);
        try {
          const apiHealth = (await (await fetch(`${api.url}/api/health`)).json()) as {
            servers: Array<{ server: string; transport: string; url?: string }>;
          };
          expect(apiHealth.servers.find((s) => s.server === "git")).toMatchObject({
            transport: "streamable-http",
            url: served.urls.git,
          });
          const stats = (await (await fetch(`${api.url}/api/stats`)).json()) as {
            transports: Record<string, { transport: string; url?: string }>;
          };
          expect(stats.transports.memory).toEqual({ transport: "streamable-http", url: served.urls.memory });
          const page = await (await fetch(`${api.url}/`)).text();
          expect(page).toContain(`streamable-http ${served.urls.backup}`);
        } finally {
          await api.close();
        }
      } finally {
        await h.stop();
      }
      expect(await terminate(served.child)).toBe(0);
      for (const pid of backends) expect(() => process.kill(pid, 0)).toThrow();
      remove();
    },
  );

  it(
    "a served server killed mid fan-out is started again; taskfan opens a new session; every task once",
    { timeout: 180_000 },
    async () => {
      const { dir, remove } = tempDir();
      const dataDir = path.join(dir, "data");
      const served = await serve(dataDir);
      // The 503s and the lost session open deltatask's breaker; a short half-open delay
      // keeps the test short.
      const h = await startHarness(
        { circuit_breaker_half_open_after: 3, servers: overHttp(served.urls) },
        dir,
      );
      try {
        const victim = backendOf(served, "deltatask.js");
        const ids: string[] = [];
        for (let i = 0; i < 20; i++) ids.push(await h.core.orchestrator.createTask({ title: `kill ${i}` }));
        // Mid fan-out: once the first deltatask operation is done, its server dies.
        await h.doneOn(ids[0]!, "deltatask", 60_000);
        process.kill(victim, "SIGKILL");
        await Promise.all(ids.map((id) => h.doneOn(id, "deltatask", 120_000)));
        for (const id of ids) {
          expect((await h.core.orchestrator.waitForSettled(id, 60_000))?.task.status).toBe("done");
        }
        expect(backendOf(served, "deltatask.js")).not.toBe(victim);
        const records = recordsPerServer(dataDir, ids);
        for (const id of ids) expect(records.get(id)).toEqual(onceEverywhere);
      } finally {
        await h.stop();
        await terminate(served.child);
        remove();
      }
    },
  );

  it(
    "refuses a foreign Host or Origin and a missing token; will not serve off loopback without one",
    { timeout: 60_000 },
    async () => {
      const { dir, remove } = tempDir();
      const served = await serve(path.join(dir, "data"), { SERVERS_TOKEN: "s3cret-served-token" });
      try {
        const url = served.urls.deltatask;
        const ok = { authorization: "Bearer s3cret-served-token" };
        expect(await post(url, ok)).toBe(200);
        expect(await post(url, { ...ok, host: "evil.example.com" })).toBe(403);
        expect(await post(url, { ...ok, origin: "http://evil.example.com" })).toBe(403);
        expect(await post(url, { ...ok, origin: new URL(url).origin })).toBe(200);
        expect(await post(url, {})).toBe(401);
        expect(await post(url, { authorization: "Bearer wrong" })).toBe(401);
        expect(await post(url.replace("/deltatask/", "/nothing/"), ok)).toBe(404);
      } finally {
        await terminate(served.child);
      }
      await expect(serve(path.join(dir, "data"), {}, ["--host", "0.0.0.0"])).rejects.toThrow(
        /serving on 0\.0\.0\.0 needs SERVERS_TOKEN/,
      );
      // On every address with a token: its URLs name this machine, which the Host check takes.
      const wide = await serve(path.join(dir, "data"), { SERVERS_TOKEN: "s3cret-served-token" }, [
        "--host",
        "0.0.0.0",
      ]);
      try {
        const url = new URL(wide.urls.memory);
        expect(url.hostname).toBe(hostname());
        const ok = { authorization: "Bearer s3cret-served-token" };
        const local = `http://127.0.0.1:${url.port}${url.pathname}`;
        expect(await post(local, { ...ok, host: url.host })).toBe(200);
        expect(await post(local, ok)).toBe(200);
        expect(await post(local, { ...ok, host: `evil.example.com:${url.port}` })).toBe(403);
        expect(await post(local, {})).toBe(401);
      } finally {
        await terminate(wide.child);
      }
      remove();
    },
  );

  it(
    "is the only way in: no backend answers a request that did not come through the front; 413 past 4 MB; sessions capped and closed when idle",
    { timeout: 120_000 },
    async () => {
      const { dir, remove } = tempDir();
      // Sessions are not closed for idling while this runs (that is tested below).
      const served = await serve(path.join(dir, "data"), { SERVERS_MAX_SESSIONS: "50" });
      try {
        // Each backend's loopback port, from the line saying it is ready (stderr is read
        // apart from stdout, where the URLs came: it may lag a moment).
        const readyPorts = () =>
          new Map(
            served.stderr
              .filter((l) => l.includes('"served server ready"'))
              .map((l) => JSON.parse(l) as { server: string; port: number })
              .map((l) => [l.server, l.port]),
          );
        await expect.poll(() => readyPorts().size).toBe(serverNames.length);
        const ports = readyPorts();
        // Straight to a backend, as any local user or any page of a local browser could:
        // refused, whatever the Host or Origin.
        for (const [role, port] of ports) {
          const direct = `http://127.0.0.1:${port}/mcp`;
          expect(await post(direct, {}), role).toBe(403);
          expect(await post(direct, { origin: "http://evil.example.com" }), role).toBe(403);
          expect(
            await post(direct, { host: `localhost:${port}`, "x-taskfan-backend-key": "guess" }),
            role,
          ).toBe(403);
        }
        // Through the front: only a page of the very host and port it serves, and no CORS
        // answer of any backend comes back.
        for (const role of serverNames) {
          const url = served.urls[role];
          const { port } = new URL(url);
          const answer = await initialize(url, { origin: `http://127.0.0.1:${port}` });
          expect(answer.status, role).toBe(200);
          expect(
            Object.keys(answer.headers).filter((h) => h.startsWith("access-control-")),
            role,
          ).toEqual([]);
          expect(await post(url, { origin: `http://localhost:${Number(port) + 1}` }), role).toBe(403);
        }
        // 600 MB, said or not: 413 after at most 4 MB, and the backend lives on.
        const memory = backendOf(served, "stdio-bridge.js");
        expect(await postMany(served.urls.memory, 600 * 1024 * 1024, true)).toBe(413);
        expect(await postMany(served.urls.deltatask, 600 * 1024 * 1024, false)).toBe(413);
        expect(await post(served.urls.memory, {})).toBe(200);
        expect(childPids(served.child.pid!)).toContain(memory);

        // 5 000 initialize calls to one role: 50 sessions at most (one is open already; the
        // rest 503 with Retry-After), and its memory stays where it was.
        const deltatask = backendOf(served, "deltatask.js");
        const before = rssMb(deltatask);
        const statuses = new Map<number, number>();
        let retryAfter: string | string[] | undefined;
        for (let i = 0; i < 5000; i += 100) {
          const answers = await Promise.all(
            Array.from({ length: 100 }, () => initialize(served.urls.deltatask, {})),
          );
          for (const a of answers) {
            statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
            if (a.status === 503) retryAfter = a.headers["retry-after"];
          }
        }
        expect(statuses.get(200)).toBe(49);
        expect(statuses.get(503)).toBe(4951);
        expect(retryAfter).toBe("300");
        expect(rssMb(deltatask) - before).toBeLessThan(40);
      } finally {
        await terminate(served.child);
      }
      // A session nobody uses is closed: with room for one, the next client gets in once the
      // first one's session has idled past its second.
      const idle = await serve(path.join(dir, "idle"), {
        SERVERS_MAX_SESSIONS: "1",
        SERVERS_IDLE_SECONDS: "1",
      });
      try {
        expect(await post(idle.urls.memory, {})).toBe(200);
        expect(await post(idle.urls.memory, {})).toBe(503);
        await expect.poll(() => post(idle.urls.memory, {}), { timeout: 10_000, interval: 250 }).toBe(200);
      } finally {
        await terminate(idle.child);
        remove();
      }
    },
  );

  it(
    "a role whose token is refused is ERROR, unauthorised, with an alert; the other nine work; no log line holds the token",
    { timeout: 120_000 },
    async () => {
      const { dir, remove } = tempDir();
      const dataDir = path.join(dir, "data");
      const token = "s3cret-served-token-4242";
      const served = await serve(dataDir, { SERVERS_TOKEN: token });
      const logFile = path.join(dir, "taskfan.log");
      const log = pino({ level: "debug" }, pino.destination({ dest: logFile, sync: true }));
      const wrong = "wrong-token-9191";
      const h = await startHarness(
        {
          servers: overHttp(served.urls, (r) => ({
            Authorization: `Bearer ${r === "memory" ? wrong : token}`,
          })),
        },
        dir,
        { log },
      );
      try {
        expect(h.core.started.find((s) => s.server === "memory")).toMatchObject({ ok: false });
        const id = await h.core.orchestrator.createTask({ title: "all but memory" });
        await Promise.all(serverNames.filter((r) => r !== "memory").map((r) => h.doneOn(id, r, 60_000)));
        const memory = (await h.core.checkHealth()).find((s) => s.server === "memory")!;
        expect(memory.status).toBe("ERROR");
        expect(memory.reason).toMatch(/unauthorised \(HTTP 401\)/);
        const alerts = await h.core.store.alerts.open();
        expect(alerts.filter((a) => a.server === "memory").map((a) => a.kind)).toContain("error");
        const op = (await h.core.orchestrator.getTask(id))!.operations.find((o) => o.server === "memory")!;
        expect(op.status).toBe("pending");
        expect(op.waiting).toMatch(/unauthorised/);
        // One connection attempt at start, then the slowest backoff: no storm.
        expect(h.core.fleet.restarts("memory")).toBe(0);
      } finally {
        await h.stop();
        await terminate(served.child);
      }
      const written = readFileSync(logFile, "utf8");
      expect(written).toMatch(/unauthorised/);
      expect(written).not.toContain(token);
      expect(written).not.toContain(wrong);
      remove();
    },
  );
});
