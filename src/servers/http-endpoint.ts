import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { keyMatches } from "../api/host-guard.js";

/** The header `taskfan servers serve` adds to every request it passes to a backend. */
export const backendKeyHeader = "x-taskfan-backend-key";

export interface EndpointOptions {
  port: number;
  host: string;
  /** Required in `backendKeyHeader` on every request (the front's per-run secret), when set. */
  key?: string | undefined;
  /** More `host:port` names the Host may carry (a server hosted on another name). */
  allowedHosts?: readonly string[];
  /** Sessions open at once; an initialize past it gets 503 with Retry-After. */
  maxSessions: number;
  /** A session nobody used for this long is closed (a client that went away without DELETE). */
  idleMs: number;
}

/** The endpoint's settings from the environment `servers serve` gives its backends. */
export function endpointFromEnv(env: NodeJS.ProcessEnv): EndpointOptions {
  return {
    port: Number(env.MCP_HTTP_PORT),
    host: env.MCP_HTTP_HOST || "127.0.0.1",
    key: env.MCP_HTTP_KEY || undefined,
    allowedHosts: (env.MCP_HTTP_ALLOWED_HOSTS ?? "").split(",").filter(Boolean),
    maxSessions: Number(env.MCP_HTTP_MAX_SESSIONS) || 64,
    idleMs: (Number(env.MCP_HTTP_IDLE_SECONDS) || 300) * 1000,
  };
}

/**
 * MCP over Streamable HTTP at `/mcp`, one session per client, each with its own server from
 * `connectSession` (an MCP server serves one transport). Only for this machine's own
 * front: the Host must name the loopback address it listens on or `allowedHosts` (no DNS rebinding), no
 * browser Origin is served, and with a key every request must carry it. Sessions are
 * capped and closed when idle; no event store keeps what was sent. Resolves with the URL.
 */
export function serveEndpoint(
  connectSession: (transport: Transport) => Promise<void>,
  options: EndpointOptions,
): Promise<{ url: string; close(): Promise<void> }> {
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; usedAt: number }>();
  let port = options.port;
  const refuse = (req: IncomingMessage): [number, string] | undefined => {
    const host = (req.headers.host ?? "").toLowerCase();
    const names = [
      `127.0.0.1:${port}`,
      `localhost:${port}`,
      `[::1]:${port}`,
      ...(options.allowedHosts ?? []),
    ];
    if (!names.includes(host)) {
      return [403, "Forbidden: this Host is not served here"];
    }
    if (req.headers.origin !== undefined) return [403, "Forbidden: no page of any site may call this server"];
    const key = req.headers[backendKeyHeader];
    if (options.key && !(typeof key === "string" && keyMatches(key, options.key))) {
      return [403, "Forbidden: only the front of taskfan servers serve may call this server"];
    }
    if (new URL(req.url ?? "/", "http://localhost").pathname !== "/mcp") {
      return [404, "Not found: the endpoint is /mcp"];
    }
    return undefined;
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const refusal = refuse(req);
    if (refusal) return jsonRpcError(res, ...refusal);
    const id = req.headers["mcp-session-id"];
    if (typeof id === "string") {
      const session = sessions.get(id);
      // The spec's answer to a session this server does not know: the client starts anew.
      if (!session) return jsonRpcError(res, 404, "Session not found");
      session.usedAt = Date.now();
      return session.transport.handleRequest(req, res);
    }
    if (sessions.size >= options.maxSessions) {
      return jsonRpcError(res, 503, `Too many sessions (${options.maxSessions}); try again later`, {
        "retry-after": String(Math.ceil(options.idleMs / 1000)),
      });
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => void sessions.set(sid, { transport, usedAt: Date.now() }),
      onsessionclosed: (sid) => void sessions.delete(sid),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await connectSession(transport);
    // Anything but an initialize request is refused by the transport itself (400).
    await transport.handleRequest(req, res);
    // A request that opened no session leaves nothing behind.
    if (!transport.sessionId) await transport.close();
  };
  const http = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      process.stderr.write(`request failed: ${String(error)}\n`);
      if (!res.headersSent) jsonRpcError(res, 500, "Internal error");
      else res.destroy();
    });
  });
  const sweep = setInterval(
    () => {
      const idleSince = Date.now() - options.idleMs;
      for (const [sid, s] of sessions) {
        if (s.usedAt >= idleSince) continue;
        sessions.delete(sid);
        void s.transport.close();
      }
    },
    Math.min(options.idleMs, 30_000),
  );
  sweep.unref();
  return new Promise((resolve, reject) => {
    http.once("error", reject);
    http.listen(options.port, options.host, () => {
      port = (http.address() as { port: number }).port;
      const shown = options.host.includes(":") ? `[${options.host}]` : options.host;
      resolve({
        url: `http://${shown}:${port}/mcp`,
        async close() {
          clearInterval(sweep);
          await Promise.all([...sessions.values()].map((s) => s.transport.close()));
          http.closeAllConnections();
          await new Promise((done) => http.close(done));
        },
      });
    });
  });
}

function jsonRpcError(
  res: ServerResponse,
  status: number,
  message: string,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}
