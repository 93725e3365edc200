import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { z } from "zod";
import {
  ChangeRefusedError,
  IdempotencyConflictError,
  TaskfanError,
  TaskNotFoundError,
  ValidationError,
  VersionMismatchError,
} from "../errors.js";
import type { TaskChangeInput } from "../orchestrator/orchestrator.js";
import type { Logger } from "../log.js";
import type { Core } from "../core.js";
import type { Metrics } from "../monitoring/metrics.js";
import type { TaskStatus } from "../domain/task.js";
import { storeFault } from "../store/store-health.js";
import { allowedHostNames, hostName, keyMatches, originMatchesHost } from "./host-guard.js";
import { RateLimiter } from "./rate-limit.js";
import { renderStatusPage } from "./status-page.js";

const maxBody = 64 * 1024;
const statuses = ["pending", "running", "done", "partial", "failed", "rolled_back"] as const;

class HttpError extends TaskfanError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
    /** Asked by a program (/api), not a browser: no Basic challenge on a 401. */
    readonly api = true,
  ) {
    super(message);
  }
}

/** The store does not answer: 503, saying why (and what was not done). */
class StoreDown extends HttpError {
  constructor(error: unknown, what = "") {
    super(
      503,
      "storage_unavailable",
      `storage unavailable: ${storeFault(error)?.reason ?? "unknown"}${what}`,
    );
  }
}

const newTaskBody = z.strictObject({
  title: z.string(),
  description: z.string().optional(),
  priority: z.number().optional(),
  deadline: z.string().optional(),
  tags: z.array(z.string()).optional(),
});

/** PATCH: any subset of the fields; a null deadline clears it. */
const patchBody = z
  .strictObject({
    title: z.string().optional(),
    description: z.string().optional(),
    priority: z.number().optional(),
    deadline: z.string().nullable().optional(),
    tags: z.array(z.string()).optional(),
  })
  .refine((b) => Object.keys(b).length > 0, "send at least one field to change");

const listQuery = z.object({
  status: z.enum(statuses).optional(),
  state: z.enum(["open", "done", "deleted"]).optional(),
  overdue: z.enum(["true", "false"]).optional(),
  tag: z.string().min(1).max(50).optional(),
  priority: z.coerce.number().int().min(1).max(5).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).default(0),
});

/** The version an If-Match names: `"3"`, `W/"3"` or `3`; undefined without the header. */
function ifMatchVersion(req: IncomingMessage): number | undefined {
  const header = req.headers["if-match"];
  if (header === undefined) return undefined;
  const m = /^\s*(?:W\/)?"?(\d+)"?\s*$/.exec(header);
  if (!m)
    throw new HttpError(400, "invalid_if_match", 'If-Match takes the task\'s version as its ETag, e.g. "3"');
  return Number(m[1]);
}

/** A state-changing request must say it sends JSON: a page can send a form or text anywhere. */
function requireJson(req: IncomingMessage): void {
  if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) {
    throw new HttpError(415, "unsupported_media_type", "send JSON with Content-Type: application/json");
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  requireJson(req);
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

/** A body by its schema; a bad one is a 400 naming the field. */
function parseBody<T>(schema: z.ZodType<T>, body: unknown, code: string): T {
  const parsed = schema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new HttpError(400, code, issue.message, issue.path.join(".") || undefined);
  }
  return parsed.data;
}

/** The request's Idempotency-Key, at most 200 characters; undefined without one. */
function idempotencyKeyOf(req: IncomingMessage): string | undefined {
  const key = req.headers["idempotency-key"];
  return typeof key === "string" && key ? key.slice(0, 200) : undefined;
}

/**
 * What a create or a change may fail with, as its HTTP error: a field (400), the same key
 * with another request (409: a client bug, not a retry), a store that does not answer (503,
 * saying what was not done); anything else as it is.
 */
function throwTaskRequestError(error: unknown, notDone: string): never {
  if (error instanceof ValidationError) throw new HttpError(400, "invalid_task", error.message, error.field);
  if (error instanceof IdempotencyConflictError)
    throw new HttpError(409, "idempotency_conflict", error.message);
  if (storeFault(error)) throw new StoreDown(error, notDone);
  throw error;
}

function send(res: ServerResponse, status: number, body: unknown, type = "application/json"): void {
  const text = type === "application/json" ? JSON.stringify(body) : String(body);
  res.writeHead(status, {
    "content-type": `${type}; charset=utf-8`,
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
  });
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
  // Required off loopback (the config refuses anything else) or when asked for.
  const keyRequired = Boolean(config.security.api_key_required && apiKey);
  const hostAllowed = allowedHostNames(config.http);
  const limiter = config.security.rate_limiting.enabled
    ? new RateLimiter(config.security.rate_limiting.requests_per_minute)
    : undefined;
  const perMinute = config.security.rate_limiting.requests_per_minute;

  function checkHost(req: IncomingMessage): void {
    const host = req.headers.host;
    if (!host || !hostAllowed(hostName(host))) {
      throw new HttpError(421, "misdirected", "this server does not answer for that host name");
    }
  }

  /** A state-changing request from a browser must come from a page of this server. */
  function checkOrigin(req: IncomingMessage): void {
    const origin = req.headers.origin;
    if (origin === undefined) return;
    if (!originMatchesHost(origin, req.headers.host)) {
      throw new HttpError(403, "forbidden_origin", "requests from another site's page are refused");
    }
  }

  function authorize(req: IncomingMessage, api: boolean): void {
    if (!keyRequired || !apiKey) return;
    const header = req.headers.authorization ?? "";
    // Bearer for programs; Basic (any user name, the key as password) so a browser can ask.
    const bearer = /^Bearer\s+(.+)$/i.exec(header)?.[1];
    const basic = /^Basic\s+(.+)$/i.exec(header)?.[1];
    const presented =
      bearer ?? (basic ? Buffer.from(basic, "base64").toString("utf8").split(":").slice(1).join(":") : "");
    if (!presented || !keyMatches(presented, apiKey)) {
      throw new HttpError(401, "unauthorized", "send Authorization: Bearer <API key>", undefined, api);
    }
  }

  function ready(): { ready: boolean; servers: number; reasons: string[] } {
    const reasons: string[] = [];
    const state = core.store.health.state;
    if (!state.ok) reasons.push(`storage unavailable: ${state.reason}`);
    for (const name of core.fleet.names) {
      if (core.fleet.config(name).required && !core.fleet.connected(name)) {
        reasons.push(`${name} (required) is not connected: ${core.fleet.lastError(name) ?? "not started"}`);
      }
    }
    const servers = core.fleet.names.filter((n) => core.fleet.connected(n)).length;
    return { ready: reasons.length === 0, servers, reasons };
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    checkHost(req);
    const url = new URL(req.url ?? "/", "http://localhost");
    const method = req.method ?? "GET";
    const parts = url.pathname.split("/").filter(Boolean);
    if (method === "GET" && url.pathname === "/healthz") return send(res, 200, { ok: true });
    // What changes state (POST, the only such method here) is JSON from a page of ours.
    if (method !== "GET" && method !== "HEAD") checkOrigin(req);
    if (method === "POST" || method === "PATCH") requireJson(req);
    if (parts[0] === "api" && limiter) {
      const client = req.socket.remoteAddress ?? "?";
      if (!limiter.begin(client))
        throw new HttpError(429, "rate_limited", `over ${perMinute} requests a minute`);
      // Its share is kept once it is answered; one that never completes gives it back.
      res.once("close", () => limiter.end(client, res.writableFinished));
    }
    authorize(req, parts[0] === "api");
    if (method === "GET" && url.pathname === "/readyz") {
      const r = ready();
      return send(res, r.ready ? 200 : 503, r);
    }
    if (method === "GET" && url.pathname === "/metrics") {
      return send(res, 200, await metrics.registry.metrics(), metrics.registry.contentType.split(";")[0]);
    }
    if (method === "GET" && url.pathname === "/") {
      const recent = await core.store.tasks.recent(15);
      const views = (await Promise.all(recent.map((t) => core.orchestrator.getTask(t.id)))).filter(
        (v) => v !== undefined,
      );
      return send(
        res,
        200,
        renderStatusPage(core.getHealth(), views, {
          store: core.store.health.state,
          zone: config.timezone,
          instances: await core.instances(),
          routes: await core.routes(),
        }),
        "text/html",
      );
    }
    if (parts[0] !== "api") throw new HttpError(404, "not_found", `no such page: ${url.pathname}`);
    const [, resource, id, action] = parts;
    if (method === "GET" && resource === "health" && !id)
      return send(res, 200, {
        servers: core.getHealth(),
        store: core.store.health.state,
        ratedBy: core.ratedBy(),
        instances: await core.instances(),
        // The open alerts and who is on them (none listed while the store does not answer).
        alerts: (await core.store.alerts.open().catch(() => [])).map((a) => ({
          id: a.id,
          kind: a.kind,
          server: a.server,
          firstSeen: a.firstSeen,
          lastSeen: a.lastSeen,
          count: a.count,
          acknowledged: a.acknowledged,
        })),
        // Each alert route: retries due and when, refusals, what it said last.
        routes: await core.routes(),
      });
    if (method === "GET" && resource === "stats" && !id) return send(res, 200, await core.getStats());
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
      const { status, state, overdue, tag, priority, limit, offset } = q.data;
      // The lifecycle filters are the store's; the fan-out status filters the newest.
      const tasks = (
        await core.store.tasks.list({
          state,
          deadlineBefore: overdue === "true" ? new Date().toISOString() : undefined,
          tag: tag?.replace(/^#/, ""),
          priority,
          limit: status ? 1000 : limit,
          offset,
        })
      )
        .filter((t) => !status || t.status === (status as TaskStatus))
        .slice(0, limit);
      return send(res, 200, { tasks });
    }
    if (method === "GET" && id && !action) {
      const view = await core.orchestrator.getTask(id);
      if (!view) throw new HttpError(404, "not_found", `no task ${id}`);
      res.setHeader("etag", `"${view.task.version}"`);
      return send(res, 200, { ...view, changes: await core.store.tasks.changes(id) });
    }
    // A change: PATCH the fields, POST complete or reopen, DELETE; If-Match and Idempotency-Key.
    const change: TaskChangeInput | undefined =
      id && method === "PATCH" && !action
        ? { kind: "update", fields: parseBody(patchBody, await readJson(req), "invalid_task") }
        : id && method === "POST" && (action === "complete" || action === "reopen")
          ? { kind: action }
          : id && method === "DELETE" && !action
            ? { kind: "delete" }
            : undefined;
    if (change && id) {
      try {
        const result = await core.orchestrator.changeTask(id, change, {
          idempotencyKey: idempotencyKeyOf(req),
          ifVersion: ifMatchVersion(req),
          source: "api",
        });
        const { task } = result;
        res.setHeader("etag", `"${task.version}"`);
        return send(res, 200, {
          task: { id: task.id, state: task.state, version: task.version, status: task.status },
          changed: result.changed,
          replayed: result.replayed,
          servers: result.servers,
        });
      } catch (error) {
        if (error instanceof TaskNotFoundError) throw new HttpError(404, "not_found", error.message);
        if (error instanceof VersionMismatchError) {
          res.setHeader("etag", `"${error.current}"`);
          throw new HttpError(412, "version_mismatch", error.message);
        }
        if (error instanceof ChangeRefusedError)
          throw new HttpError(409, `task_${error.reason}`, error.message);
        throwTaskRequestError(error, ", nothing was changed");
      }
    }
    if (method === "POST" && !id) {
      const body = parseBody(newTaskBody, await readJson(req), "invalid_task");
      const idempotencyKey = idempotencyKeyOf(req);
      try {
        const { id: taskId, created } = await core.orchestrator.submitTask(
          body,
          idempotencyKey ? { idempotencyKey } : {},
        );
        const task = (await core.store.tasks.get(taskId))!;
        if (created) res.setHeader("location", `/api/tasks/${taskId}`);
        return send(res, created ? 201 : 200, { task: { id: task.id, status: task.status }, created });
      } catch (error) {
        throwTaskRequestError(error, ", nothing was created");
      }
    }
    if (method === "POST" && id && action === "retry") {
      if (!(await core.orchestrator.getTask(id))) throw new HttpError(404, "not_found", `no task ${id}`);
      return send(res, 202, { queued: await core.orchestrator.retryFailed(id) });
    }
    throw new HttpError(405, "method_not_allowed", `${method} is not supported on ${url.pathname}`);
  }

  const { http } = config;
  // Slow clients (slowloris) are cut off: headers within `headers_timeout`, the whole
  // request within `request_timeout`, at most `max_connections` at once.
  const server = createServer(
    {
      headersTimeout: http.headers_timeout * 1000,
      requestTimeout: http.request_timeout * 1000,
      keepAliveTimeout: 5000,
      connectionsCheckingInterval: Math.min(1000, (http.headers_timeout * 1000) / 2),
    },
    (req, res) => {
      route(req, res).catch((error: unknown) => {
        const failure = storeFault(error) && !(error instanceof StoreDown) ? new StoreDown(error) : error;
        if (failure instanceof HttpError) {
          if (failure.status === 401 && !failure.api)
            res.setHeader("www-authenticate", 'Basic realm="taskfan"');
          send(res, failure.status, {
            error: {
              code: failure.code,
              message: failure.message,
              ...(failure.field ? { field: failure.field } : {}),
            },
          });
          return;
        }
        log.error({ err: error, url: req.url }, "http request failed");
        send(res, 500, { error: { code: "internal", message: "something went wrong" } });
      });
    },
  );
  server.maxConnections = http.max_connections;
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
