import { McpServer } from "@modelcontextprotocol/sdk/server/mcp.js";
import { StdioServerTransport } from "@modelcontextprotocol/sdk/server/stdio.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";

export { McpServer };

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

/** Serves one local MCP server over stdio until stdin closes. */
export async function serveStdio(server: McpServer): Promise<void> {
  const transport = new StdioServerTransport();
  transport.onclose = () => process.exit(0);
  await server.connect(transport);
  process.stdin.on("end", () => process.exit(0));
}
