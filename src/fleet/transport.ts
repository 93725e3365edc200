import { SSEClientTransport, SseError } from "@modelcontextprotocol/sdk/client/sse.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { mkdirSync } from "node:fs";
import type { ServerConfig } from "../config/schema.js";

/** A transport to one server, and the process behind it when taskfan spawned one. */
export type ServerTransport = Transport & { readonly pid?: number | null };

/**
 * How a connection reaches its server; the connection does not look behind it: a child
 * over stdio (`openStdio`), or a hosted server over HTTP (`openHttp`). `fallback`: the
 * first try was refused with a 4xx, take the older transport.
 */
export type OpenTransport = (
  config: ServerConfig,
  onStderr: (chunk: Buffer) => void,
  fallback?: boolean,
) => ServerTransport;

/** A server given by `url` over HTTP, else its launch line over stdio. */
export const openServer: OpenTransport = (config, onStderr, fallback) =>
  config.url ? openHttp(config, onStderr, fallback) : openStdio(config, onStderr);

/**
 * A hosted server: Streamable HTTP, or HTTP+SSE when the config says so or when
 * Streamable HTTP was refused (`fallback`), with the config's headers on every request.
 */
export const openHttp: OpenTransport = (config, _onStderr, fallback = false) => {
  const url = new URL(config.url!);
  const requestInit = { headers: config.headers };
  if (config.transport === "sse" || fallback) return new SSEClientTransport(url, { requestInit });
  return new StreamableHTTPClientTransport(url, {
    requestInit,
    // The connection's supervisor opens a new session with its own backoff; the SDK's
    // stream reconnection is kept short.
    reconnectionOptions: {
      initialReconnectionDelay: 1000,
      maxReconnectionDelay: 30_000,
      reconnectionDelayGrowFactor: 2,
      maxRetries: 2,
    },
  });
};

/** The HTTP status a transport error carries, if any. */
export function httpStatus(error: unknown): number | undefined {
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    if (e instanceof StreamableHTTPError || e instanceof SseError) return e.code;
  }
  return undefined;
}

/** The server's launch line as a child process, its stderr drained (a full pipe would block it). */
export const openStdio: OpenTransport = (config, onStderr) => {
  if (config.cwd) mkdirSync(config.cwd, { recursive: true });
  const transport = new StdioClientTransport({
    command: config.command,
    args: config.args,
    env: { ...getDefaultEnvironment(), ...config.env },
    ...(config.cwd ? { cwd: config.cwd } : {}),
    stderr: "pipe",
  });
  transport.stderr?.on("data", onStderr);
  return transport;
};
