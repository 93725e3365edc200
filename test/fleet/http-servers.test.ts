import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { defaultServers, npmServerEntry } from "../../src/config/default.js";
import { completeConfig, printableConfig, secretsOf } from "../../src/config/load.js";
import { faultServerPath, startHarness } from "../core-harness.js";
import { hop, memoryProxied, proxied } from "../hops.js";
import { freePort, onlyServers, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";
import { onceEverywhere, recordsPerServer } from "../server-records.js";

afterAll(() => stopSpawned());

/**
 * git-mcp-server in its own HTTP mode, on the data a local git would use; resolves with its
 * endpoint once it says it listens.
 */
async function gitOverHttp(dataDir: string, port?: number): Promise<{ url: string; child: ChildProcess }> {
  port ??= await freePort();
  const git = defaultServers(dataDir).git;
  mkdirSync(git.cwd!, { recursive: true });
  const child = spawnTracked(process.execPath, [npmServerEntry("@cyanheads/git-mcp-server")], {
    cwd: git.cwd!,
    env: {
      ...process.env,
      ...git.env,
      MCP_TRANSPORT_TYPE: "http",
      MCP_HTTP_HOST: "127.0.0.1",
      MCP_HTTP_PORT: String(port),
      MCP_LOG_LEVEL: "info",
      // Under NODE_ENV=test (vitest sets it) it logs nothing, not even that it listens.
      NODE_ENV: "production",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`git-mcp-server exited (${code})`)));
    createInterface({ input: child.stderr! }).on("line", (line) => {
      const m = /HTTP transport listening at (http:\/\/\S+?)"/.exec(line);
      if (m) resolve(m[1]!);
    });
  });
  return { url, child };
}

describe("a hosted server over HTTP", () => {
  it(
    "fans a task out with git over Streamable HTTP and the other nine over stdio",
    { timeout: 60_000 },
    async () => {
      const { dir, remove } = tempDir();
      const dataDir = path.join(dir, "data");
      const git = await gitOverHttp(dataDir);
      const h = await startHarness({ servers: { git: { url: git.url } } }, dir);
      try {
        expect(h.core.started.filter((s) => !s.ok)).toEqual([]);
        expect(h.core.fleet.pid("git")).toBeUndefined(); // nothing spawned for it
        const id = await h.core.orchestrator.createTask({ title: "over http", tags: ["http"] });
        const view = await h.core.orchestrator.waitForSettled(id, 30_000);
        expect(view?.task.status).toBe("done");
        expect(view!.operations.find((o) => o.server === "git")).toMatchObject({
          status: "done",
          attempts: 1,
        });
        expect(recordsPerServer(dataDir, [id]).get(id)).toEqual(onceEverywhere);
        expect((await h.core.checkHealth()).find((s) => s.server === "git")?.status).toBe("ONLINE");
      } finally {
        await h.stop();
        await terminate(git.child);
        remove();
      }
    },
  );
});

/**
 * A stdio server behind mcp-proxy on a free port, serving Streamable HTTP at /mcp or the
 * older HTTP+SSE at /sse; resolves once the port accepts connections.
 */
describe("a hosted server that speaks only the older HTTP+SSE", () => {
  it("is reached through the fallback, beside servers over stdio", { timeout: 60_000 }, async () => {
    const { dir, remove } = tempDir();
    const dataDir = path.join(dir, "data");
    const sse = await memoryProxied("sse", dataDir);
    const h = await startHarness({ servers: { memory: { url: sse.url } } }, dir);
    try {
      const id = await h.core.orchestrator.createTask({ title: "over sse" });
      expect((await h.core.orchestrator.waitForSettled(id, 30_000))?.task.status).toBe("done");
      expect(recordsPerServer(dataDir, [id]).get(id)).toEqual(onceEverywhere);
      const health = await h.core.checkHealth();
      expect(health.find((s) => s.server === "memory")).toMatchObject({
        status: "ONLINE",
        transport: "sse",
        url: sse.url,
      });
      expect(health.find((s) => s.server === "deltatask")?.transport).toBe("stdio");
    } finally {
      await h.stop();
      await terminate(sse.child);
      remove();
    }
  });
});

describe("a hosted server that hangs", () => {
  it(
    "times out each call, opens its breaker after the threshold, and the others carry on",
    { timeout: 90_000 },
    async () => {
      const { dir, remove } = tempDir();
      const calls = path.join(dir, "calls.txt");
      const hung = await proxied("stream", [process.execPath, faultServerPath], {
        FAULT: "hang-n",
        N: "1000",
        CALLS_FILE: calls,
      });
      const h = await startHarness(
        {
          circuit_breaker_threshold: 3,
          circuit_breaker_half_open_after: 600,
          servers: onlyServers(["deltatask", "memory"], {
            deltatask: { url: hung.url, timeout: 0.5, retry_attempts: 2, required: false },
          }),
        },
        dir,
      );
      try {
        const states: string[] = [];
        h.core.fleet.on("breaker", (e) => states.push(`${e.server}:${e.state}`));
        const timedOut: string[] = [];
        h.core.fleet.on("retry", (e) => timedOut.push(e.error));
        // Three calls, each cut off at 500 ms (the first and two retries): the third fault opens the breaker.
        const first = await h.core.orchestrator.createTask({ title: "one" });
        let view = await h.core.orchestrator.waitForSettled(first, 20_000);
        expect(timedOut).toEqual(["Operation timed out after 500ms", "Operation timed out after 500ms"]);
        expect(states).toEqual(["deltatask:open"]);
        let delta = view!.operations.find((o) => o.server === "deltatask")!;
        expect(delta).toMatchObject({ status: "pending", attempts: 3 });
        expect(delta.waiting).toMatch(/circuit open/);
        expect(view!.operations.find((o) => o.server === "memory")?.status).toBe("done");
        // The next task does not call it at all while the breaker is open.
        const second = await h.core.orchestrator.createTask({ title: "two" });
        view = await h.core.orchestrator.waitForSettled(second, 20_000);
        delta = view!.operations.find((o) => o.server === "deltatask")!;
        expect(delta).toMatchObject({ status: "pending", attempts: 0 });
        expect(delta.waiting).toMatch(/circuit open/);
        expect(view!.operations.find((o) => o.server === "memory")?.status).toBe("done");
        expect(readFileSync(calls, "utf8").split("\n").filter(Boolean)).toHaveLength(3);
      } finally {
        await h.stop();
        await terminate(hung.child);
        remove();
      }
    },
  );
});

/**
 * An HTTP hop in front of `target` that answers the first `times` tool calls itself with
 * `status` (and `headers`), and passes everything else on.
 */
async function refusingHop(
  target: string,
  status: number,
  headers: Record<string, string>,
  times: number,
): Promise<{ url: string; refused: () => number; refusedAt: () => number; close: () => void }> {
  let refused = 0;
  let refusedAt = 0;
  const h = await hop(target, (_req, body, res) => {
    if (refused >= times || !body.toString().includes('"method":"tools/call"')) return false;
    refused += 1;
    refusedAt = Date.now();
    res.writeHead(status, { "content-type": "text/plain", ...headers }).end("not now");
    return true;
  });
  return { ...h, refused: () => refused, refusedAt: () => refusedAt };
}

describe("a hosted server that refuses a call for now", () => {
  it.each([
    ["429 with Retry-After", 429, { "retry-after": "2" }, /rate limited by the server \(HTTP 429\)/],
    ["503", 503, {}, undefined],
  ] as const)(
    "%s: the call is made again (after the wait it asked for) and the record exists once",
    { timeout: 60_000 },
    async (_name, status, headers, waiting) => {
      const { dir, remove } = tempDir();
      const dataDir = path.join(dir, "data");
      const served = await memoryProxied("stream", dataDir);
      const hop = await refusingHop(served.url, status, headers, 1);
      const h = await startHarness(
        { servers: onlyServers(["memory"], { memory: { url: hop.url, required: false } }) },
        dir,
      );
      try {
        const waits: Array<Promise<{ error: string; nextAttemptAt: number }>> = [];
        h.core.orchestrator.on("operation.waiting", (e) =>
          waits.push(
            h.core.orchestrator.getTask(e.taskId).then((v) => ({
              error: e.error ?? "",
              nextAttemptAt: v!.operations[0]!.nextAttemptAt,
            })),
          ),
        );
        const id = await h.core.orchestrator.createTask({ title: `refused with ${status}` });
        await h.doneOn(id, "memory", 30_000);
        expect(hop.refused()).toBe(1);
        const entities = readFileSync(path.join(dataDir, "memory", "memory.jsonl"), "utf8")
          .split("\n")
          .filter((l) => l.includes(`"taskfan-task-${id}"`) && l.includes('"type":"entity"'));
        expect(entities).toHaveLength(1);
        expect((await h.core.orchestrator.getTask(id))!.operations[0]!.attempts).toBe(2);
        const parked = await Promise.all(waits);
        if (waiting) {
          // Parked until the time the server gave, not retried at once.
          expect(parked).toHaveLength(1);
          expect(parked[0]!.error).toMatch(waiting);
          expect(parked[0]!.nextAttemptAt).toBeGreaterThanOrEqual(hop.refusedAt() + 2000);
        } else {
          // A 5xx is retried by the policy at once (after looking for the record first).
          expect(parked).toEqual([]);
        }
      } finally {
        await h.stop();
        hop.close();
        await terminate(served.child);
        remove();
      }
    },
  );
});

describe("a hosted server that restarts", () => {
  it(
    "opens a new session when the server forgot the old one; no task is lost or made twice",
    { timeout: 90_000 },
    async () => {
      const { dir, remove } = tempDir();
      const dataDir = path.join(dir, "data");
      let git = await gitOverHttp(dataDir);
      const port = Number(new URL(git.url).port);
      // A call that meets the dead server may fail rather than wait: it is re-driven after
      // recovery.delay, kept short here.
      const h = await startHarness({ recovery: { delay: 1 }, servers: { git: { url: git.url } } }, dir);
      try {
        const first = await h.core.orchestrator.createTask({ title: "before the restart" });
        expect((await h.core.orchestrator.waitForSettled(first, 30_000))?.task.status).toBe("done");
        // A new server process on the same address: it knows nothing of our session. (Killed,
        // not asked to stop: asked, it waits a minute for our open event stream to close.)
        const exited = once(git.child, "exit");
        git.child.kill("SIGKILL");
        await exited;
        git = await gitOverHttp(dataDir, port);
        const reconnected = once(h.core.fleet, "restarted");
        const second = await h.core.orchestrator.createTask({ title: "after the restart" });
        await reconnected;
        // Until the new session is open the task may be "partial, waiting for git": wait
        // for git's operation itself.
        await h.doneOn(second, "git", 60_000);
        expect((await h.core.orchestrator.getTask(second))?.task.status).toBe("done");
        const records = recordsPerServer(dataDir, [first, second]);
        expect(records.get(first)?.git).toBe(1);
        expect(records.get(second)?.git).toBe(1);
      } finally {
        await h.stop();
        await terminate(git.child);
        remove();
      }
    },
  );
});

describe("configuring a hosted server", () => {
  const dir = "/tmp/taskfan-config-test";
  it("takes a url with headers from the environment, and never prints their values", () => {
    const config = completeConfig(
      {
        servers: {
          memory: { url: "https://mcp.example/memory", headers: { Authorization: "Bearer ${MEM_TOKEN}" } },
        },
      },
      { MEM_TOKEN: "tok-1234567890" },
      dir,
    );
    expect(config.servers.memory).toMatchObject({
      url: "https://mcp.example/memory",
      headers: { Authorization: "Bearer tok-1234567890" },
    });
    expect(secretsOf(config)).toContain("tok-1234567890");
    const printed = printableConfig(config, {});
    expect(JSON.stringify(printed)).not.toContain("tok-1234567890");
    expect(printed.servers?.memory?.headers).toEqual({ Authorization: "********" });
    // What is printed loads again.
    expect(completeConfig(printed, {}, dir).servers.memory.url).toBe("https://mcp.example/memory");
    expect(printed.servers?.git?.headers).toBeUndefined();
  });

  it("names the key of a hosted server given wrong", () => {
    expect(() =>
      completeConfig({ servers: { git: { url: "http://h/mcp", command: "node" } } }, {}, dir),
    ).toThrowError(
      "servers.git.url: give either a url (a hosted server) or a command (a local one), not both",
    );
    expect(() => completeConfig({ servers: { git: { url: "ftp://h/mcp" } } }, {}, dir)).toThrowError(
      "servers.git.url: expected an http:// or https:// URL, got ftp://h/mcp",
    );
    expect(() => completeConfig({ servers: { git: { headers: { a: "b" } } } }, {}, dir)).toThrowError(
      "servers.git.headers: only for a server given by url",
    );
    expect(() =>
      completeConfig({ servers: { git: { url: "http://h/mcp", transport: "websocket" as never } } }, {}, dir),
    ).toThrowError(/servers\.git\.transport/);
  });
});
