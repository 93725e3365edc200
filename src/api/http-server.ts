import { createHash, timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { z } from "zod";
import { ValidationError } from "../errors.js";
import type { Logger } from "../log.js";
import type { Core } from "../main.js";
import type { Metrics } from "../monitoring/metrics.js";
import type { TaskStatus } from "../orchestrator/task.js";
import { renderStatusPage } from "./status-page.js";

const maxBody = 64 * 1024;
const statuses = ["pending", "running", "done", "partial", "failed", "rolled_back"] as const;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

const newTaskBody = z.strictObject({
  title: z.string(),
  description: z.string().optional(),
  priority: z.number().optional(),
  deadline: z.string().optional(),
  tags: z.array(z.string()).optional(),
});

const listQuery = z.object({
  status: z.enum(statuses).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** Compares the presented key with ours in constant time. */
function keyMatches(presented: string, expected: string): boolean {
  return timingSafeEqual(digest(presented), digest(expected));
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  if (!/^application\/json\b/.test(req.headers["content-type"] ?? "")) {
    throw new HttpError(415, "unsupported_media_type", "send JSON with Content-Type: application/json");
  }
  const declared = Number(req.headers["content-length"] ?? 0);
  if (declared > maxBody) throw new HttpError(413, "too_large", `the body is over ${maxBody} bytes`);
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBody) throw new HttpError(413, "too_large", `the body is over ${maxBody} bytes`);
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  } catch {
    throw new HttpError(400, "malformed_json", "the body is not valid JSON");
  }
}

function send(res: ServerResponse, status: number, body: unknown, type = "application/json"): void {
  const text = type === "application/json" ? JSON.stringify(body) : String(body);
  res.writeHead(status, { "content-type": `${type}; charset=utf-8`, "cache-control": "no-store" });
  res.end(text);
}

/**
 * The local HTTP server: `/` status page, `/metrics`, `/healthz`, `/readyz` and the JSON
 * API under `/api`. Errors answer `{"error": {"code", "message", "field"?}}`.
 */
export async function startHttpServer(
  core: Core,
  metrics: Metrics,
  log: Logger,
): Promise<{ server: Server; url: string; close(): Promise<void> }> {
  const { config } = core;
  const apiKey = config.security.api_key;
  const perMinute = config.security.rate_limiting.enabled
    ? config.security.rate_limiting.requests_per_minute
    : 0;
  const windows = new Map<string, { start: number; count: number }>();

  function rateLimit(req: IncomingMessage): void {
    if (!perMinute) return;
    const ip = req.socket.remoteAddress ?? "?";
    const now = Date.now();
    const w = windows.get(ip);
    if (!w || now - w.start >= 60_000) {
      windows.set(ip, { start: now, count: 1 });
      return;
    }
    w.count += 1;
    if (w.count > perMinute) throw new HttpError(429, "rate_limited", `over ${perMinute} requests a minute`);
  }

  function authorize(req: IncomingMessage): void {
    if (!config.security.api_key_required || !apiKey) return;
    const header = req.headers.authorization ?? "";
    const presented = /^Bearer\s+(.+)$/i.exec(header)?.[1] ?? "";
    if (!presented || !keyMatches(presented, apiKey)) {
      throw new HttpError(401, "unauthorized", "send Authorization: Bearer <API key>");
    }
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    const parts = url.pathname.split("/").filter(Boolean);
    if (method === "GET" && url.pathname === "/healthz") return send(res, 200, { ok: true });
    if (method === "GET" && url.pathname === "/readyz") {
      const ready = core.store.db.open && core.started.length > 0;
      return send(res, ready ? 200 : 503, { ready, servers: core.started.filter((s) => s.ok).length });
    }
    if (method === "GET" && url.pathname === "/metrics") {
      return send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType.split(";")[0]);
    }
    if (method === "GET" && url.pathname === "/") {
      const views = core.store.tasks
        .recent(15)
        .map((t) => core.orchestrator.getTask(t.id))
        .filter((v) => v !== undefined);
      return send(res, 200, renderStatusPage(core.getHealth(), views), "text/html");
    }
    if (parts[0] !== "api") throw new HttpError(404, "not_found", `no such page: ${url.pathname}`);
    rateLimit(req);
    authorize(req);
    const [, resource, id, action] = parts;
    if (method === "GET" && resource === "health" && !id)
      return send(res, 200, { servers: core.getHealth() });
    if (method === "GET" && resource === "stats" && !id) return send(res, 200, core.getStats());
    if ((resource === "health" || resource === "stats") && !id) {
      throw new HttpError(405, "method_not_allowed", `${method} is not supported on ${url.pathname}`);
    }
    if (resource !== "tasks") throw new HttpError(404, "not_found", `no such resource: ${url.pathname}`);
    if (method === "GET" && !id) {
      const q = listQuery.safeParse(Object.fromEntries(url.searchParams));
      if (!q.success) {
        const issue = q.error.issues[0]!;
        throw new HttpError(400, "invalid_query", issue.message, String(issue.path[0]));
      }
      const tasks = core.store.tasks
        .recent(q.data.status ? 1000 : q.data.limit)
        .filter((t) => !q.data.status || t.status === (q.data.status as TaskStatus))
        .slice(0, q.data.limit);
      return send(res, 200, { tasks });
    }
    if (method === "GET" && id && !action) {
      const view = core.orchestrator.getTask(id);
      if (!view) throw new HttpError(404, "not_found", `no task ${id}`);
      return send(res, 200, view);
    }
    if (method === "POST" && !id) {
      const parsed = newTaskBody.safeParse(await readJson(req));
      if (!parsed.success) {
        const issue = parsed.error.issues[0]!;
        throw new HttpError(400, "invalid_task", issue.message, issue.path.join(".") || undefined);
      }
      const key = req.headers["idempotency-key"];
      const idempotencyKey = typeof key === "string" && key ? key.slice(0, 200) : undefined;
      const existing = idempotencyKey ? core.store.tasks.getByIdempotencyKey(idempotencyKey) : undefined;
      if (existing) {
        // The same key with another task is a client bug, not a retry.
        if (existing.title !== parsed.data.title.trim()) {
          throw new HttpError(409, "idempotency_conflict", "this Idempotency-Key was used for another task");
        }
        return send(res, 200, { task: { id: existing.id, status: existing.status }, created: false });
      }
      try {
        const taskId = core.orchestrator.createTask(parsed.data, idempotencyKey ? { idempotencyKey } : {});
        const task = core.store.tasks.get(taskId)!;
        res.setHeader("location", `/api/tasks/${taskId}`);
        return send(res, 201, { task: { id: task.id, status: task.status }, created: true });
      } catch (error) {
        if (error instanceof ValidationError)
          throw new HttpError(400, "invalid_task", error.message, error.field);
        throw error;
      }
    }
    if (method === "POST" && id && action === "retry") {
      if (!core.orchestrator.getTask(id)) throw new HttpError(404, "not_found", `no task ${id}`);
      return send(res, 202, { queued: core.orchestrator.retryFailed(id) });
    }
    throw new HttpError(405, "method_not_allowed", `${method} is not supported on ${url.pathname}`);
  }

  const server = createServer((req, res) => {
    route(req, res).catch((error: unknown) => {
      if (error instanceof HttpError) {
        send(res, error.status, {
          error: { code: error.code, message: error.message, ...(error.field ? { field: error.field } : {}) },
        });
        return;
      }
      log.error({ err: error, url: req.url }, "http request failed");
      send(res, 500, { error: { code: "internal", message: "something went wrong" } });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.http.port, config.http.host, resolve);
  });
  const { port } = server.address() as { port: number };
  const url = `http://${config.http.host.includes(":") ? `[${config.http.host}]` : config.http.host}:${port}`;
  log.info({ url }, "http server listening");
  return {
    server,
    url,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
