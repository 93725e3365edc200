import { randomUUID } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import { StreamableHTTPServerTransport } from "@modelcontextprotocol/sdk/server/streamableHttp.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

/** A reply whose text is JSON, the way the upstream servers answer. */
export function json(value: unknown): CallToolResult {
  return { content: [{ type: "text", text: JSON.stringify(value, null, 2) }] };
}

export function text(value: string): CallToolResult {
  return { content: [{ type: "text", text: value }] };
}

export function toolError(message: string): CallToolResult {
  return { content: [{ type: "text", text: message }], isError: true };
}

/**
 * One server's tools, registered once and built into a fresh `McpServer` per client: over
 * stdio there is one, over Streamable HTTP one per session (an `McpServer` serves one
 * transport). The tools share the process's data.
 */
export class ToolSet {
  private readonly tools: unknown[][] = [];

  constructor(private readonly info: { name: string; version: string }) {}

  /** `McpServer.registerTool`, recorded for every server built. */
  readonly registerTool = ((...args: unknown[]) => {
    this.tools.push(args);
  }) as unknown as McpServer["registerTool"];

  build(): McpServer {
    const server = new McpServer(this.info);
    for (const args of this.tools) Reflect.apply(server.registerTool, server, args);
    return server;
  }
}

/**
 * Serves the tools over stdio until stdin closes; or, with `MCP_HTTP_PORT` set (0 for any
 * free port), over Streamable HTTP at `/mcp` on `MCP_HTTP_HOST` (127.0.0.1 by default),
 * printing `{"listening":"<url>"}` on stdout once it listens.
 */
export async function serve(tools: ToolSet): Promise<void> {
  const port = process.env.MCP_HTTP_PORT;
  if (port === undefined || port === "") return serveStdio(tools.build());
  const url = await serveHttp(tools, Number(port), process.env.MCP_HTTP_HOST || "127.0.0.1");
  process.stdout.write(`${JSON.stringify({ listening: url })}\n`);
}

async function serveStdio(server: McpServer): Promise<void> {
  const transport = new StdioServerTransport();
  transport.onclose = () => process.exit(0);
  await server.connect(transport);
  process.stdin.on("end", () => process.exit(0));
}

/** A session nobody used for this long is closed (a client that went away without DELETE). */
const idleSessionMs = 10 * 60_000;

/** Streamable HTTP, one session per client; resolves with the endpoint's URL. */
function serveHttp(tools: ToolSet, port: number, host: string): Promise<string> {
  const sessions = new Map<string, { transport: StreamableHTTPServerTransport; usedAt: number }>();
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    if (new URL(req.url ?? "/", "http://localhost").pathname !== "/mcp") {
      return jsonRpcError(res, 404, "Not found: the endpoint is /mcp");
    }
    const id = req.headers["mcp-session-id"];
    if (typeof id === "string") {
      const session = sessions.get(id);
      // The spec's answer to a session this server does not know: the client starts anew.
      if (!session) return jsonRpcError(res, 404, "Session not found");
      session.usedAt = Date.now();
      return session.transport.handleRequest(req, res);
    }
    const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (sid) => void sessions.set(sid, { transport, usedAt: Date.now() }),
      onsessionclosed: (sid) => void sessions.delete(sid),
    });
    transport.onclose = () => {
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    await tools.build().connect(transport);
    // Anything but an initialize request is refused by the transport itself (400).
    await transport.handleRequest(req, res);
  };
  const http = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      process.stderr.write(`request failed: ${String(error)}\n`);
      if (!res.headersSent) jsonRpcError(res, 500, "Internal error");
      else res.destroy();
    });
  });
  const sweep = setInterval(() => {
    for (const [sid, s] of sessions) {
      if (Date.now() - s.usedAt > idleSessionMs) void s.transport.close();
      else continue;
      sessions.delete(sid);
    }
  }, 60_000);
  sweep.unref();
  const stop = () => {
    clearInterval(sweep);
    for (const s of sessions.values()) void s.transport.close();
    http.close(() => process.exit(0));
    http.closeAllConnections();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  return new Promise((resolve, reject) => {
    http.once("error", reject);
    http.listen(port, host, () => {
      const address = http.address() as { port: number };
      const shown = host.includes(":") ? `[${host}]` : host;
      resolve(`http://${shown}:${address.port}/mcp`);
    });
  });
}

function jsonRpcError(res: ServerResponse, status: number, message: string): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(JSON.stringify({ jsonrpc: "2.0", error: { code: -32000, message }, id: null }));
}
