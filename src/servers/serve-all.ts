/**
 * `taskfan servers serve`: the embedded default's ten servers over Streamable HTTP, each
 * role at `http://<host>:<port>/<role>/mcp`. One front (this file) owns the public port: it
 * checks `Host` and `Origin` (DNS-rebinding protection), the bearer token when one is set,
 * and passes each request to the role's own server on a loopback port:
 *
 * - our servers (`src/servers/*.ts`) serve Streamable HTTP themselves (`MCP_HTTP_PORT`);
 * - git-mcp-server has its own HTTP mode (`MCP_TRANSPORT_TYPE=http`);
 * - the upstream servers that speak stdio only run behind `mcp-proxy` (one child each).
 *
 * A backend that exits is started again (1 s, doubling to 30 s); meanwhile its URL answers
 * 503, and afterwards a client's old session gets 404 and opens a new one.
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
import { connect, createServer as createNetServer } from "node:net";
import { createInterface } from "node:readline";
import { hostname } from "node:os";
import path from "node:path";
import { defaultDataFolders, defaultServers, localServerEntry, npmServerEntry } from "../config/default.js";
import { serverNames, type ServerName } from "../config/schema.js";
import { allowedHostNames, hostName, keyMatches } from "../api/host-guard.js";
import { isLoopback } from "../config/load.js";
import { UsageError } from "../errors.js";
import type { Logger } from "../log.js";

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
  log: Logger;
}

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

  const launch = (role: ServerName, b: Backend) => {
    const d = defaults[role];
    const [entry, ...rest] = d.args;
    const env: NodeJS.ProcessEnv = { ...process.env, ...d.env };
    let args: string[];
    if (role === "git") {
      Object.assign(env, {
        MCP_TRANSPORT_TYPE: "http",
        MCP_HTTP_HOST: "127.0.0.1",
        MCP_HTTP_PORT: String(b.port),
        MCP_HTTP_ENDPOINT_PATH: b.path,
        MCP_LOG_LEVEL: "warning",
      });
      args = d.args;
    } else if (path.dirname(entry!) === ourServers) {
      Object.assign(env, { MCP_HTTP_PORT: String(b.port), MCP_HTTP_HOST: "127.0.0.1" });
      args = d.args;
    } else {
      args = [
        npmServerEntry("mcp-proxy", "dist/bin/mcp-proxy.mjs"),
        "--host",
        "127.0.0.1",
        "--port",
        String(b.port),
        "--server",
        "stream",
        "--streamEndpoint",
        b.path,
        "--gracefulShutdownTimeout",
        "1000",
        "--",
        d.command,
        entry!,
        ...rest,
      ];
    }
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
      log.info({ server: role, pid: child.pid }, "served server ready");
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
    if (!b.up) {
      return answer(res, 503, `the ${b.role} server is starting`, { "retry-after": "2" });
    }
    forward(req, res, b.port, b.path + (match![2] ?? ""));
  });
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
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let originHost: string | undefined;
    try {
      originHost = new URL(origin).host;
    } catch {
      originHost = undefined;
    }
    if (!originHost || !allowed(hostName(originHost)))
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

/** Passes one request to a backend on loopback, streaming both ways (SSE included). */
function forward(req: IncomingMessage, res: ServerResponse, port: number, path: string): void {
  const headers: IncomingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    // The front checked Origin and the token; the backend sees neither.
    if (hopByHop.has(name) || name === "origin" || name === "authorization" || name === "host") continue;
    headers[name] = value;
  }
  headers.host = `127.0.0.1:${port}`;
  const upstream = httpRequest({ host: "127.0.0.1", port, method: req.method, path, headers }, (up) => {
    const out: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(up.headers)) {
      if (!hopByHop.has(name) && value !== undefined) out[name] = value;
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
  req.pipe(upstream);
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
