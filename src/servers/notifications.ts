/**
 * A local MCP server with ntfy-mcp-server's tool names (ntfy_publish_message,
 * ntfy_fetch_messages, ntfy_manage_message). Messages are kept in a JSON file under
 * DATA_DIR and, when NTFY_BASE_URL is set, also published to that ntfy server. As ntfy
 * does, a message published with the sequence id of an earlier one replaces it, and clear
 * and delete act on a sequence id (forwarded as PUT /<topic>/<id>/clear and DELETE /<topic>/<id>).
 */
import { randomBytes } from "node:crypto";
import path from "node:path";
import { z } from "zod";
import { JsonFile, dataDirFromEnv } from "./json-file.js";
import { json, ToolSet, toolError, serve } from "./run-server.js";

interface Message {
  id: string;
  time: number;
  event: "message";
  topic: string;
  title?: string;
  message: string;
  priority: number;
  tags: string[];
  sequence_id?: string;
  deleted?: boolean;
  /** Dismissed (ntfy's clear): read, no longer shown as new. */
  cleared?: boolean;
}

const defaultTopic = process.env.NTFY_DEFAULT_TOPIC ?? "taskfan";
/**
 * The ntfy server to forward to. Credentials in its URL (https://user:password@host) become
 * a Basic Authorization header: fetch refuses such a URL, and its error would quote them.
 */
const upstream = (() => {
  const raw = process.env.NTFY_BASE_URL;
  if (!raw) return undefined;
  const url = new URL(raw);
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  url.username = "";
  url.password = "";
  const basic =
    user || password ? `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}` : undefined;
  return { url: url.toString(), basic };
})();
const store = new JsonFile<{ messages: Message[] }>(path.join(dataDirFromEnv(), "messages.json"), () => ({
  messages: [],
}));
const server = new ToolSet({ name: "notifications", version: "0.1.0" });

/** The headers every request to the ntfy server carries. */
function upstreamHeaders(): Record<string, string> {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (process.env.NTFY_AUTH_TOKEN) headers.authorization = `Bearer ${process.env.NTFY_AUTH_TOKEN}`;
  else if (upstream?.basic) headers.authorization = upstream.basic;
  return headers;
}

/** Clears or deletes a sequence on the ntfy server. */
async function forwardManage(
  topic: string,
  sequenceId: string,
  operation: "clear" | "delete",
): Promise<void> {
  if (!upstream) return;
  const base = upstream.url.replace(/\/$/, "");
  const where = `${base}/${encodeURIComponent(topic)}/${encodeURIComponent(sequenceId)}`;
  const response = await fetch(operation === "clear" ? `${where}/clear` : where, {
    method: operation === "clear" ? "PUT" : "DELETE",
    headers: upstreamHeaders(),
    signal: AbortSignal.timeout(10_000),
  });
  // A sequence the ntfy server no longer has is cleared or gone already.
  if (!response.ok && response.status !== 404) throw new Error(`ntfy answered HTTP ${response.status}`);
}

async function forward(m: Message, body: Record<string, unknown>): Promise<void> {
  if (!upstream) return;
  const response = await fetch(upstream.url, {
    method: "POST",
    headers: upstreamHeaders(),
    body: JSON.stringify({ topic: m.topic, ...body }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!response.ok) throw new Error(`ntfy answered HTTP ${response.status}`);
}

function parseSince(since: string, now: number): number {
  if (since === "all") return 0;
  const m = /^(\d+)([smhd])$/.exec(since);
  if (m) return now - Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as "s"] * 1000;
  if (/^\d+$/.test(since)) return Number(since) * 1000;
  return now - 10 * 60_000;
}

server.registerTool(
  "ntfy_publish_message",
  {
    description: "Publish a notification to a topic.",
    inputSchema: {
      topic: z.string().optional(),
      message: z.string().optional(),
      title: z.string().optional(),
      priority: z.number().int().min(1).max(5).optional(),
      tags: z.array(z.string()).optional(),
      sequence_id: z.string().optional(),
    },
  },
  async (args) => {
    const m: Message = {
      id: randomBytes(6).toString("hex"),
      time: Math.floor(Date.now() / 1000),
      event: "message",
      topic: args.topic ?? defaultTopic,
      message: args.message ?? "triggered",
      priority: args.priority ?? 3,
      tags: args.tags ?? [],
      ...(args.title !== undefined ? { title: args.title } : {}),
      ...(args.sequence_id !== undefined ? { sequence_id: args.sequence_id } : {}),
    };
    try {
      await forward(m, {
        message: m.message,
        title: m.title,
        priority: m.priority,
        tags: m.tags,
        ...(m.sequence_id !== undefined ? { sequence_id: m.sequence_id } : {}),
      });
    } catch (error) {
      return toolError(`publish failed: ${(error as Error).message}`);
    }
    // The same sequence id replaces the earlier message in place.
    store.update((d) => {
      if (m.sequence_id !== undefined) {
        d.messages = d.messages.filter((x) => !(x.topic === m.topic && x.sequence_id === m.sequence_id));
      }
      d.messages.push(m);
    });
    return json(m);
  },
);

server.registerTool(
  "ntfy_fetch_messages",
  {
    description: "Fetch messages of a topic since a time (10m, 1h, all, or a unix time).",
    inputSchema: {
      topic: z.string().optional(),
      since: z.string().default("10m"),
      sequence_id: z.string().optional(),
    },
  },
  ({ topic, since, sequence_id }) => {
    const t = topic ?? defaultTopic;
    const from = parseSince(since, Date.now()) / 1000;
    return json({
      topic: t,
      messages: store.data.messages.filter(
        (m) =>
          m.topic === t &&
          !m.deleted &&
          m.time >= from &&
          (sequence_id === undefined || m.sequence_id === sequence_id),
      ),
    });
  },
);

server.registerTool(
  "ntfy_manage_message",
  {
    description: "Clear or delete the messages of a sequence id.",
    inputSchema: {
      sequence_id: z.string(),
      operation: z.enum(["clear", "delete"]),
      topic: z.string().optional(),
    },
  },
  async ({ sequence_id, operation, topic }) => {
    const t = topic ?? defaultTopic;
    try {
      await forwardManage(t, sequence_id, operation);
    } catch (error) {
      return toolError(`${operation} failed: ${(error as Error).message}`);
    }
    const hits = store.data.messages.filter((m) => m.topic === t && m.sequence_id === sequence_id);
    store.update(() =>
      hits.forEach((m) => {
        if (operation === "delete") m.deleted = true;
        else m.cleared = true;
      }),
    );
    return json({ success: true, operation, sequence_id, affected: hits.length });
  },
);

await serve(server);
