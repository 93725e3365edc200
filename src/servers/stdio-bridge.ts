/**
 * A server that speaks stdio only, served over Streamable HTTP for `taskfan servers serve`:
 * `node stdio-bridge.js <command> [args...]` spawns it, and every HTTP session's tool calls
 * go to it through one MCP client (the servers behind it take one call at a time anyway).
 * The endpoint is `serveEndpoint`'s (the front's key, loopback Host, capped and idle-closed
 * sessions, no event store). Tools only: taskfan uses nothing else. It exits when the
 * server does; the front starts it again.
 */
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  ListRootsRequestSchema,
  ListToolsRequestSchema,
  ListToolsResultSchema,
} from "@modelcontextprotocol/sdk/types.js";
import { endpointFromEnv, serveEndpoint } from "./http-endpoint.js";

const [command, ...args] = process.argv.slice(2);
if (!command) {
  process.stderr.write("usage: stdio-bridge <command> [args...]\n");
  process.exit(2);
}
const env = { ...getDefaultEnvironment(), ...(process.env as Record<string, string>) };
for (const name of Object.keys(env)) if (name.startsWith("MCP_HTTP_")) delete env[name];
const child = new StdioClientTransport({ command, args, env, stderr: "inherit" });
// Roots: none to offer, said as an answer (a refusal makes some servers print a stack trace).
const client = new Client(
  { name: "taskfan-bridge", version: "0.1.0" },
  { capabilities: { roots: { listChanged: false } } },
);
client.setRequestHandler(ListRootsRequestSchema, () => ({ roots: [] }));
child.onclose = () => process.exit(1);
await client.connect(child);
const info = client.getServerVersion() ?? { name: "bridged", version: "0.0.0" };

const endpoint = await serveEndpoint(async (transport) => {
  const server = new Server(info, { capabilities: { tools: {} } });
  server.setRequestHandler(ListToolsRequestSchema, (request, extra) =>
    client.request({ method: "tools/list", params: request.params }, ListToolsResultSchema, {
      signal: extra.signal,
    }),
  );
  server.setRequestHandler(CallToolRequestSchema, (request, extra) =>
    client.request({ method: "tools/call", params: request.params }, CallToolResultSchema, {
      signal: extra.signal,
      timeout: 300_000,
    }),
  );
  await server.connect(transport);
}, endpointFromEnv(process.env));

const stop = () =>
  void endpoint
    .close()
    .then(() => client.close())
    .finally(() => process.exit(0));
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
process.stdout.write(`${JSON.stringify({ listening: endpoint.url })}\n`);
