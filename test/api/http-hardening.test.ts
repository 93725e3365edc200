import { request } from "node:http";
import { connect, type Socket } from "node:net";
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpServer } from "../../src/api/http-server.js";
import { RateLimiter } from "../../src/api/rate-limit.js";
import { completeConfig } from "../../src/config/load.js";
import { faultServerPath, startHarness, type Harness } from "../core-harness.js";
import { onlyServers, silentLog } from "../helpers.js";

type Started = Awaited<ReturnType<typeof startHttpServer>>;
const key = "tfk_hardening_0123456789abcdef";
let h: Harness;
let local: Started;
let wide: Started;
let slow: Started;

beforeAll(async () => {
  h = await startHarness({
    http: { port: 0, allowed_hosts: ["tasks.example.com"] },
    security: { rate_limiting: { enabled: true, requests_per_minute: 100 } },
    servers: onlyServers(["memory"]),
  });
  local = await startHttpServer(h.core, h.core.metrics, silentLog);
  // The same core served on every address with an API key, as the config makes it.
  const wideConfig = completeConfig({ http: { port: 0 } }, { HTTP_HOST: "0.0.0.0", API_KEY: key }, h.dir);
  wide = await startHttpServer(
    { ...h.core, config: { ...h.config, http: wideConfig.http, security: wideConfig.security } },
    h.core.metrics,
    silentLog,
  );
  // Short limits for slow clients, and few connections.
  const slowConfig = structuredClone(h.config);
  slowConfig.http = { ...slowConfig.http, headers_timeout: 0.5, request_timeout: 1, max_connections: 5 };
  slow = await startHttpServer({ ...h.core, config: slowConfig }, h.core.metrics, silentLog);
});
afterAll(async () => {
  await local?.close();
  await wide?.close();
  await slow?.close();
  await h?.stop();
});

/** One request with the headers given as they are (fetch does not let a caller set Host). */
function raw(
  base: string,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const url = new URL(path, base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, method, path: url.pathname + url.search, headers },
      (res) => {
        let text = "";
        res.on("data", (c) => (text += c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

const json = { "content-type": "application/json" };
const hostOf = (base: string) => new URL(base).host;

describe("the HTTP server answers only for its own names", () => {
  it("refuses a request for another host name (DNS rebinding) with 421, and nothing is created", async () => {
    const before = await h.core.store.tasks.count();
    const rebind = { host: "rebind.attacker.example" };
    const post = await raw(
      local.url,
      "POST",
      "/api/tasks",
      { ...rebind, ...json },
      JSON.stringify({ title: "x" }),
    );
    expect(post.status).toBe(421);
    expect((await raw(local.url, "GET", "/api/tasks", rebind)).status).toBe(421);
    expect((await raw(local.url, "GET", "/", rebind)).status).toBe(421);
    expect(await h.core.store.tasks.count()).toBe(before);
    // Loopback names, and the names in http.allowed_hosts, are served.
    for (const host of [hostOf(local.url), `localhost:${new URL(local.url).port}`, "tasks.example.com"]) {
      expect((await raw(local.url, "GET", "/api/health", { host })).status, host).toBe(200);
    }
  });

  it("takes a state-changing request only as JSON, and from a browser only from its own pages", async () => {
    const id = await h.core.orchestrator.createTask({ title: "retried from a page" });
    const retry = `/api/tasks/${id}/retry`;
    const host = hostOf(local.url);
    // A "simple" cross-site request any page can send.
    const simple = await raw(local.url, "POST", retry, {
      host,
      "content-type": "text/plain",
      origin: "https://evil.example",
    });
    expect([403, 415]).toContain(simple.status);
    expect((await raw(local.url, "POST", retry, { host, "content-type": "text/plain" })).status).toBe(415);
    expect(
      (await raw(local.url, "POST", retry, { host, ...json, origin: "https://evil.example" })).status,
    ).toBe(403);
    expect((await raw(local.url, "POST", retry, { host, ...json, origin: "null" })).status).toBe(403);
    expect((await raw(local.url, "POST", retry, { host, ...json, origin: `http://${host}` })).status).toBe(
      202,
    );
    expect((await raw(local.url, "POST", retry, { host, ...json })).status).toBe(202);
  });

  it("answers the same Idempotency-Key with another body 409, and the same request 200", async () => {
    const send = (body: unknown) =>
      raw(
        local.url,
        "POST",
        "/api/tasks",
        { host: hostOf(local.url), ...json, "idempotency-key": "k-409" },
        JSON.stringify(body),
      );
    const first = await send({ title: "Pay rent", priority: 2 });
    expect(first.status).toBe(201);
    const again = await send({ title: " Pay rent ", priority: 2 });
    expect(again.status).toBe(200);
    expect(JSON.parse(again.body).task.id).toBe(JSON.parse(first.body).task.id);
    const other = await send({ title: "Pay rent", priority: 1 });
    expect(other.status).toBe(409);
    expect(JSON.parse(other.body).error.code).toBe("idempotency_conflict");
  });
});

describe("off loopback with an API key", async () => {
  it("needs the key for everything but /healthz, as Bearer or as a browser's Basic password", async () => {
    const host = hostOf(wide.url).replace("0.0.0.0", "127.0.0.1");
    const base = wide.url.replace("0.0.0.0", "127.0.0.1");
    for (const path of ["/", "/metrics", "/readyz", "/api/tasks"]) {
      expect((await raw(base, "GET", path, { host })).status, path).toBe(401);
      expect((await raw(base, "GET", path, { host, authorization: `Bearer ${key}` })).status, path).toBe(200);
    }
    const page = await raw(base, "GET", "/", { host });
    expect(page.headers["www-authenticate"]).toBe('Basic realm="taskfan"');
    const basic = `Basic ${Buffer.from(`me:${key}`).toString("base64")}`;
    expect((await raw(base, "GET", "/", { host, authorization: basic })).status).toBe(200);
    expect((await raw(base, "GET", "/healthz", { host })).status).toBe(200);
    expect((await raw(base, "GET", "/", { host, authorization: "Bearer wrong" })).status).toBe(401);
  });
});

describe("slow and numerous clients", async () => {
  it("half-sent requests (twice the minute's budget) cost nobody their rate budget", async () => {
    const { hostname, port } = new URL(local.url);
    const sockets: Socket[] = [];
    for (let i = 0; i < 200; i++) {
      const s = connect(Number(port), hostname);
      s.on("error", () => undefined);
      s.write(
        `POST /api/tasks HTTP/1.1\r\nHost: ${hostname}:${port}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"ti`,
      );
      sockets.push(s);
    }
    await Promise.all(sockets.map((s) => once(s, "connect").catch(() => undefined)));
    try {
      const health = await raw(local.url, "GET", "/api/health", { host: hostOf(local.url) });
      expect(health.status).toBe(200);
    } finally {
      for (const s of sockets) s.destroy();
    }
  });

  it("cuts off a request that does not finish within request_timeout, and holds max_connections", async () => {
    const { hostname, port } = new URL(slow.url);
    const open = (): Socket => {
      const s = connect(Number(port), hostname);
      s.on("error", () => undefined);
      return s;
    };
    const dawdler = open();
    await once(dawdler, "connect");
    dawdler.write(`GET /api/health HTTP/1.1\r\nHost: ${hostname}:${port}\r\n`);
    const answer = await new Promise<string>((resolve) => {
      let text = "";
      dawdler.on("data", (c) => (text += c));
      dawdler.on("close", () => resolve(text));
    });
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
    // Five at once are taken; the sixth is closed without an answer.
    const five = Array.from({ length: 5 }, open);
    await Promise.all(five.map((s) => once(s, "connect")));
    const sixth = open();
    let heard = "";
    sixth.on("data", (c) => (heard += c));
    await once(sixth, "close");
    expect(heard).toBe("");
    for (const s of five) s.destroy();
  });

  it("holds a share for each request under way, keeps those that complete, forgets clients whose minute is over", async () => {
    const clock = { t: 0 };
    const limiter = new RateLimiter(2, () => clock.t);
    // Two at once fill the minute; a third at the same moment is refused.
    expect(limiter.begin("a")).toBe(true);
    expect(limiter.begin("a")).toBe(true);
    expect(limiter.begin("a")).toBe(false);
    // One abandoned gives its share back; the one that completed keeps it.
    limiter.end("a", false);
    limiter.end("a", true);
    expect(limiter.begin("a")).toBe(true);
    limiter.end("a", true);
    expect(limiter.begin("a")).toBe(false);
    expect(limiter.begin("b")).toBe(true);
    limiter.end("b", true);
    expect(limiter.size).toBe(2);
    clock.t += 60_000;
    expect(limiter.begin("a")).toBe(true);
    expect(limiter.size).toBe(0);
  });

  it("holds the API's limit under concurrency: of 50 requests sent at once, the limit pass", async () => {
    const r = await startHarness({
      servers: onlyServers(["memory"]),
      security: { rate_limiting: { enabled: true, requests_per_minute: 5 } },
    });
    const http = await startHttpServer(r.core, r.core.metrics, silentLog);
    try {
      const statuses = await Promise.all(
        Array.from({ length: 50 }, async () => (await fetch(`${http.url}/api/health`)).status),
      );
      expect(statuses.filter((s) => s === 200)).toHaveLength(5);
      expect(statuses.filter((s) => s === 429)).toHaveLength(45);
    } finally {
      await http.close();
      await r.stop();
    }
  });
});

describe("readiness", () => {
  it("is 503 while a required server is not connected, saying which", async () => {
    const r = await startHarness({
      servers: onlyServers(["deltatask", "memory"], {
        deltatask: { command: process.execPath, args: [faultServerPath], env: { FAULT: "exit-on-start" } },
      }),
    });
    const http = await startHttpServer(r.core, r.core.metrics, silentLog);
    try {
      const res = await fetch(`${http.url}/readyz`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { ready: boolean; reasons: string[] };
      expect(body.ready).toBe(false);
      expect(body.reasons.join()).toMatch(/^deltatask \(required\) is not connected: /);
    } finally {
      await http.close();
      await r.stop();
    }
  });
});
