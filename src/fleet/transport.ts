import { StdioClientTransport, getDefaultEnvironment } from "@modelcontextprotocol/sdk/client/stdio.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import { mkdirSync } from "node:fs";
import type { ServerConfig } from "../config/schema.js";

/** A transport to one server, and the process behind it when taskfan spawned one. */
export type ServerTransport = Transport & { readonly pid?: number | null };

/**
 * How a connection reaches its server; the connection does not look behind it. This
 * release spawns each server as a child over stdio; a hosted server over HTTP is another
 * opener of the same shape.
 */
export type OpenTransport = (config: ServerConfig, onStderr: (chunk: Buffer) => void) => ServerTransport;

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
