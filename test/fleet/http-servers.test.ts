import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, describe, expect, it } from "vitest";
import { defaultServers, npmServerEntry } from "../../src/config/default.js";
import { completeConfig, printableConfig, secretsOf } from "../../src/config/load.js";
import { startHarness } from "../core-harness.js";
import { freePort, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";
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

describe("a hosted server that restarts", () => {
  it(
    "opens a new session when the server forgot the old one; no task is lost or made twice",
    { timeout: 90_000 },
    async () => {
      const { dir, remove } = tempDir();
      const dataDir = path.join(dir, "data");
      let git = await gitOverHttp(dataDir);
      const port = Number(new URL(git.url).port);
      const h = await startHarness({ servers: { git: { url: git.url } } }, dir);
      try {
        const first = await h.core.orchestrator.createTask({ title: "before the restart" });
        expect((await h.core.orchestrator.waitForSettled(first, 30_000))?.task.status).toBe("done");
        // A new server process on the same address: it knows nothing of our session.
        await terminate(git.child);
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
