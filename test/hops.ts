import type { ChildProcess } from "node:child_process";
import { once } from "node:events";
import { mkdirSync } from "node:fs";
import { createServer, request, type IncomingMessage, type ServerResponse } from "node:http";
import path from "node:path";
import { setTimeout } from "node:timers/promises";
import { defaultServers, npmServerEntry } from "../src/config/default.js";
import { accepts } from "../src/servers/serve-all.js";
import { freePort, spawnTracked } from "./helpers.js";

/** A stdio server behind mcp-proxy (Streamable HTTP or the older SSE), on a loopback port. */
export async function proxied(
  kind: "stream" | "sse",
  command: string[],
  env: Record<string, string>,
): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawnTracked(
    process.execPath,
    [
      npmServerEntry("mcp-proxy", "dist/bin/mcp-proxy.mjs"),
      ...["--host", "127.0.0.1", "--port", String(port), "--server", kind, "--"],
      ...command,
    ],
    { env: { ...process.env, ...env }, stdio: "ignore" },
  );
  const exited = once(child, "exit").then(() => {
    throw new Error("mcp-proxy exited");
  });
  while (!(await Promise.race([accepts(port), exited]))) await setTimeout(100);
  return { url: `http://127.0.0.1:${port}/${kind === "sse" ? "sse" : "mcp"}`, child };
}

/** The embedded default's memory server, on the data `dataDir` gives it, behind mcp-proxy. */
export function memoryProxied(kind: "stream" | "sse", dataDir: string) {
  const memory = defaultServers(dataDir).memory;
  mkdirSync(path.join(dataDir, "memory"), { recursive: true });
  return proxied(kind, [memory.command, ...memory.args], memory.env);
}

/**
 * A hop in front of a hosted server: each request, its body read, goes to `answer`, which
 * may answer it itself (returning true); the rest are passed on to `target` as they came.
 */
export async function hop(
  target: string,
  answer: (req: IncomingMessage, body: Buffer, res: ServerResponse) => boolean,
): Promise<{ url: string; close: () => void }> {
  const to = new URL(target);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      if (answer(req, body, res)) return;
      const upstream = request(
        { host: to.hostname, port: to.port, path: to.pathname, method: req.method, headers: req.headers },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        },
      );
      upstream.on("error", () => res.destroy());
      res.on("close", () => upstream.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: () => {
      server.closeAllConnections();
      server.close();
    },
  };
}
