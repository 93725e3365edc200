import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { endpointFromEnv, serveEndpoint } from "./http-endpoint.js";

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
 * free port), over Streamable HTTP at `/mcp` on `MCP_HTTP_HOST` (127.0.0.1 by default; see
 * `serveEndpoint` for what it refuses), printing `{"listening":"<url>"}` on stdout once it listens.
 */
export async function serve(tools: ToolSet): Promise<void> {
  const port = process.env.MCP_HTTP_PORT;
  if (port === undefined || port === "") return serveStdio(tools.build());
  const endpoint = await serveEndpoint(
    (transport) => tools.build().connect(transport),
    endpointFromEnv(process.env),
  );
  const stop = () => void endpoint.close().then(() => process.exit(0));
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  process.stdout.write(`${JSON.stringify({ listening: endpoint.url })}\n`);
}

async function serveStdio(server: McpServer): Promise<void> {
  const transport = new StdioServerTransport();
  transport.onclose = () => process.exit(0);
  await server.connect(transport);
  process.stdin.on("end", () => process.exit(0));
}
