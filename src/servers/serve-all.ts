/**
 * `taskfan servers serve`: the embedded default's ten servers over Streamable HTTP, each
 * role at `http://<host>:<port>/<role>/mcp`. One front (this file) owns the public port: it
 * checks `Host` and `Origin` (DNS-rebinding protection), the bearer token when one is set,
 * the size of each request and the time it takes, and passes it to the role's own server
 * on a loopback port with a key made for this run. The backends answer nothing without
 * that key (nor to a foreign Host or any browser Origin), so the front is the only way in:
 *
 * - our servers (`src/servers/*.ts`) serve Streamable HTTP themselves (`MCP_HTTP_PORT`);
 * - the upstream servers, which speak stdio, run behind our bridge (`stdio-bridge.ts`).
 *
 * Both are `serveEndpoint`'s: sessions capped per backend (503 with Retry-After past the
 * cap) and closed when idle, no event store. A backend that exits is started again (1 s,
 * doubling to 30 s); meanwhile its URL answers 503, and afterwards a client's old session
 * gets 404 and opens a new one.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from "node:http";
import { randomBytes } from "node:crypto";
import { connect, createServer as createNetServer } from "node:net";
import { createInterface } from "node:readline";
import { hostname } from "node:os";
import path from "node:path";
import { defaultDataFolders, defaultServers, localServerEntry } from "../config/default.js";
import { serverNames, type ServerName } from "../config/schema.js";
import { allowedHostNames, hostName, keyMatches, originMatchesHost } from "../api/host-guard.js";
import { isLoopback } from "../config/load.js";
import { UsageError } from "../errors.js";
import type { Logger } from "../log.js";
import { backendKeyHeader } from "./http-endpoint.js";

export interface ServeOptions {
  dataDir: string;
  /** Where the front listens; 127.0.0.1 unless told. */
  host: string;
  /** 0 for any free port. */
  port: number;
  /** Required as `Authorization: Bearer <token>` when set; must be set off loopback. */
  token?: string | undefined;
  /** More names the front answers to (behind a DNS name or a proxy). */
  allowedHosts?: readonly string[];
  /** Sessions each backend keeps open at once (default 64), and how long an idle one lives (s, default 300). */
  maxSessions?: number;
  idleSessionSeconds?: number;
  log: Logger;
}

/** The largest request body the front passes on. */
export const maxRequestBytes = 4 * 1024 * 1024;

export interface ServedServers {
  /** The front's base URL; each role is at `<base>/<role>/mcp`. */
  base: string;
  urls: Record<ServerName, string>;
  /** Stops the front and every backend (SIGTERM, then SIGKILL after 5 s). */
  close(): Promise<void>;
}

/** Where our own servers' entries are. */
const ourServers = path.dirname(localServerEntry("deltatask"));

/** How one role's backend is started, and where it then answers. */
interface Backend {
  role: ServerName;
  port: number;
  /** The backend's own path for MCP. */
  path: string;
  child?: ChildProcess;
  up: boolean;
  /** When it last became ready; up a minute, a later exit starts the backoff afresh. */
  readyAt: number;
  restarts: number;
  timer?: NodeJS.Timeout;
}

export async function serveServers(options: ServeOptions): Promise<ServedServers> {
  const { log } = options;
  if (!isLoopback(options.host) && !options.token) {
    throw new UsageError(
      `serving on ${options.host} needs SERVERS_TOKEN: off loopback every request must carry a bearer token`,
    );
  }
  for (const dir of defaultDataFolders(options.dataDir)) mkdirSync(dir, { recursive: true });
  const defaults = defaultServers(options.dataDir);
  let closing = false;
  const backends = new Map<ServerName, Backend>();

  // Made for this run: what the front adds to every request it passes on, and the only
  // way into a backend.
  const key = randomBytes(32).toString("base64url");
  const launch = (role: ServerName, b: Backend) => {
    const d = defaults[role];
    const [entry] = d.args;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...d.env,
      MCP_HTTP_PORT: String(b.port),
      MCP_HTTP_HOST: "127.0.0.1",
      MCP_HTTP_KEY: key,
      MCP_HTTP_MAX_SESSIONS: String(options.maxSessions ?? 64),
      MCP_HTTP_IDLE_SECONDS: String(options.idleSessionSeconds ?? 300),
    };
    // Ours serve HTTP themselves; an upstream server behind the bridge, over stdio.
    const args =
      path.dirname(entry!) === ourServers ? d.args : [localServerEntry("stdio-bridge"), d.command, ...d.args];
    delete env.SERVERS_TOKEN;
    const child = spawn(process.execPath, args, {
      env,
      ...(d.cwd ? { cwd: d.cwd } : {}),
      stdio: ["ignore", "ignore", "pipe"],
    });
    b.child = child;
    createInterface({ input: child.stderr! }).on("line", (line) => {
      if (line.trim()) log.debug({ server: role, stderr: line.slice(0, 500) }, "server stderr");
    });
    child.once("exit", (code, signal) => {
      b.up = false;
      b.child = undefined;
      if (closing) return;
      if (Date.now() - b.readyAt > 60_000) b.restarts = 0;
      const delay = Math.min(1000 * 2 ** b.restarts, 30_000);
      b.restarts += 1;
      log.warn({ server: role, code, signal, restartInMs: delay }, "served server exited; restarting");
      b.timer = setTimeout(() => void start(role, b), delay);
    });
  };

  const start = async (role: ServerName, b: Backend) => {
    if (closing) return;
    launch(role, b);
    const child = b.child!;
    try {
      await listening(b.port, child, 60_000);
      b.up = true;
      b.readyAt = Date.now();
      log.info({ server: role, pid: child.pid, port: b.port }, "served server ready");
    } catch (error) {
      log.error({ server: role, err: error }, "served server did not start");
      child.kill("SIGKILL");
    }
  };

  for (const role of serverNames) {
    const b: Backend = { role, port: await freePort(), path: "/mcp", up: false, readyAt: 0, restarts: 0 };
    backends.set(role, b);
  }
  await Promise.all([...backends.entries()].map(([role, b]) => start(role, b)));
  const down = [...backends.values()].filter((b) => !b.up).map((b) => b.role);
  if (down.length > 0) log.warn({ servers: down }, "some servers are not up yet; their URLs answer 503");

  const allowed = allowedHostNames({ host: options.host, allowed_hosts: options.allowedHosts ?? [] });

  const front = createServer((req, res) => {
    const refusal = refuse(req, allowed, options.token);
    if (refusal) return answer(res, refusal.status, refusal.message, refusal.headers);
    const match = /^\/([a-z-]+)\/mcp\/?(\?.*)?$/.exec(req.url ?? "");
    const b = match ? backends.get(match[1] as ServerName) : undefined;
    if (!b)
      return answer(res, 404, `no such server: the roles are at /<role>/mcp (${serverNames.join(", ")})`);
    if (Number(req.headers["content-length"] ?? 0) > maxRequestBytes) return tooLarge(req, res);
    if (!b.up) {
      return answer(res, 503, `the ${b.role} server is starting`, { "retry-after": "2" });
    }
    forward(req, res, b.port, b.path + (match![2] ?? ""), key);
  });
  // A client that sends its headers or its request slowly, or too many connections, is cut off.
  front.headersTimeout = 10_000;
  front.requestTimeout = 30_000;
  front.maxConnections = 256;
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.listen(options.port, options.host, () => resolve());
  });
  const address = front.address() as { port: number };
  // On every address, the URLs name this machine (what its Host check answers to).
  const wildcard = options.host === "0.0.0.0" || options.host === "::";
  const shownHost = wildcard ? hostname() : options.host.includes(":") ? `[${options.host}]` : options.host;
  const base = `http://${shownHost}:${address.port}`;
  const urls = Object.fromEntries(serverNames.map((r) => [r, `${base}/${r}/mcp`])) as Record<
    ServerName,
    string
  >;

  return {
    base,
    urls,
    async close() {
      closing = true;
      front.closeAllConnections();
      await new Promise<void>((resolve) => front.close(() => resolve()));
      await Promise.all(
        [...backends.values()].map(async (b) => {
          clearTimeout(b.timer);
          const child = b.child;
          if (!child || child.exitCode !== null || child.signalCode !== null) return;
          const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
          child.kill("SIGTERM");
          const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
          await exited;
          clearTimeout(timer);
        }),
      );
    },
  };
}

/** Why a request may not pass: a foreign Host or Origin (403), a missing or wrong token (401). */
function refuse(
  req: IncomingMessage,
  allowed: (name: string) => boolean,
  token: string | undefined,
): { status: number; message: string; headers?: Record<string, string> } | undefined {
  const host = req.headers.host;
  if (!host || !allowed(hostName(host)))
    return { status: 403, message: "Forbidden: this Host is not served here" };
  // As the API's rule: a page may call only the very host and port it came from.
  const origin = req.headers.origin;
  if (origin !== undefined && !originMatchesHost(origin, host)) {
    return { status: 403, message: "Forbidden: this Origin may not call these servers" };
  }
  const presented = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1];
  if (token && !(presented && keyMatches(presented, token))) {
    return {
      status: 401,
      message: "Unauthorized: a bearer token is required",
      headers: { "www-authenticate": 'Bearer realm="taskfan servers"' },
    };
  }
  return undefined;
}

const hopByHop = new Set([
  "connection",
  "keep-alive",
  "transfer-encoding",
  "upgrade",
  "proxy-connection",
  "te",
  "trailer",
]);

/**
 * Passes one request to a backend on loopback with this run's key, streaming both ways (SSE
 * included), its body cut off at `maxRequestBytes` (413); what the backend says of CORS is
 * not passed back (no page of any site may call through the front).
 */
function forward(req: IncomingMessage, res: ServerResponse, port: number, path: string, key: string): void {
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    // The front checked Origin and the token; the backend sees neither, and only our key.
    if (hopByHop.has(name) || ["origin", "authorization", "host", backendKeyHeader].includes(name)) continue;
    headers[name] = value;
  }
  headers.host = `127.0.0.1:${port}`;
  headers[backendKeyHeader] = key;
  const upstream = httpRequest({ host: "127.0.0.1", port, method: req.method, path, headers }, (up) => {
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(up.headers)) {
      if (!hopByHop.has(name) && !name.startsWith("access-control-") && value !== undefined)
        out[name] = value;
    }
    res.writeHead(up.statusCode ?? 502, out);
    res.flushHeaders();
    up.pipe(res);
  });
  upstream.on("error", () => {
    if (!res.headersSent) answer(res, 502, "the server behind this URL did not answer");
    else res.destroy();
  });
  res.on("close", () => upstream.destroy());
  let received = 0;
  req.on("data", (chunk: Buffer) => {
    received += chunk.length;
    if (received <= maxRequestBytes) return void upstream.write(chunk);
    upstream.destroy();
    tooLarge(req, res);
  });
  req.on("end", () => upstream.end());
}

/**
 * 413; what the client sends meanwhile is dropped unread for a moment (a little of it, so
 * the client reads the answer instead of a reset), then the connection is cut.
 */
function tooLarge(req: IncomingMessage, res: ServerResponse): void {
  if (!res.headersSent) {
    answer(res, 413, `request too large: at most ${maxRequestBytes / 1024 / 1024} MB`);
  }
  req.removeAllListeners("data");
  let dropped = 0;
  req.on("data", (chunk: Buffer) => {
    if ((dropped += chunk.length) > 16 * maxRequestBytes) req.destroy();
  });
  setTimeout(() => req.destroy(), 1000).unref();
}

function answer(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}

/** Resolves once something accepts connections on the port; rejects if `child` exits first. */
async function listening(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  child.once("exit", () => (exited = true));
  while (!exited) {
    if (await accepts(port)) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on port ${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`exited with ${child.exitCode ?? child.signalCode} before listening`);
}

/** Whether something accepts connections on a loopback port now. */
export function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** A loopback port nothing listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}
