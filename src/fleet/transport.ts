import { SSEClientTransport, SseError } from "@modelcontextprotocol/sdk/client/sse.js";
import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import {
  StreamableHTTPClientTransport,
  StreamableHTTPError,
} from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { FetchLike, Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { mkdirSync } from "node:fs";
import { sizeInBytes, type ServerConfig } from "../config/schema.js";
import { ResponseTooLargeError } from "../errors.js";
import { cappedResponse } from "./capped-response.js";

/** How a connection reaches its server. */
export type TransportKind = "stdio" | "streamable-http" | "sse";

/** The transport `openServer` picks for a config (before any fallback). */
export function transportOf(config: ServerConfig, fallback = false): TransportKind {
  if (!config.url) return "stdio";
  return config.transport === "sse" || fallback ? "sse" : "streamable-http";
}

/** A URL as shown in status and logs: no user, password or query (they may hold secrets). */
export function shownUrl(url: string): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/** A transport to one server, and the process behind it when taskfan spawned one. */
export type ServerTransport = Transport & { readonly pid?: number | null };

/**
 * How a connection reaches its server; the connection does not look behind it: a child
 * over stdio (`openStdio`), or a hosted server over HTTP (`openHttp`). `fallback`: the
 * first try was refused with a 4xx, take the older transport.
 */
export type OpenTransport = (
  config: ServerConfig,
  hooks: TransportHooks,
  fallback?: boolean,
) => ServerTransport;

/** What a transport tells its connection beside MCP messages. */
export interface TransportHooks {
  /** A chunk of the child's stderr (stdio). */
  onStderr(chunk: Buffer): void;
  /** The server answered 429 and said when to come back (HTTP). */
  onRetryAfter(ms: number | undefined): void;
  /** The server sent more than its cap in one answer or event (HTTP): nothing more of it is read. */
  onTooLarge(error: ResponseTooLargeError): void;
}

/** A server given by `url` over HTTP, else its launch line over stdio. */
export const openServer: OpenTransport = (config, hooks, fallback) =>
  config.url ? openHttp(config, hooks, fallback) : openStdio(config, hooks);

/**
 * A hosted server: Streamable HTTP, or HTTP+SSE when the config says so or when
 * Streamable HTTP was refused (`fallback`), with the config's headers on every request.
 */
export const openHttp: OpenTransport = (config, hooks, fallback = false) => {
  const url = new URL(config.url!);
  const requestInit = { headers: config.headers };
  const maxBytes = sizeInBytes(config.max_response_size);
  const tooLarge = (what: "answer" | "event") => {
    const error = new ResponseTooLargeError(config.name, maxBytes, what);
    hooks.onTooLarge(error);
    return error;
  };
  // The SDK's errors carry the status only: a 429's Retry-After is read here. The SDK reads
  // a JSON answer whole and buffers SSE events without limit: both are capped here.
  const fetchNoting: FetchLike = async (input, init) => {
    const response = await fetch(input, init);
    if (response.status === 429) hooks.onRetryAfter(retryAfterMs(response.headers.get("retry-after")));
    return cappedResponse(response, maxBytes, tooLarge);
  };
  if (transportOf(config, fallback) === "sse") {
    return new SSEClientTransport(url, { requestInit, fetch: fetchNoting });
  }
  return new StreamableHTTPClientTransport(url, {
    requestInit,
    fetch: fetchNoting,
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

/** A Retry-After header (seconds, or an HTTP date) in milliseconds from now. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(at - now, 0);
}

/** The HTTP status a transport error carries, if any. */
export function httpStatus(error: unknown): number | undefined {
  for (let e: unknown = error; e; e = (e as { cause?: unknown }).cause) {
    if (e instanceof StreamableHTTPError || e instanceof SseError) return e.code;
  }
  return undefined;
}

/** The server's launch line as a child process, its stderr drained (a full pipe would block it). */
export const openStdio: OpenTransport = (config, { onStderr }) => {
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
