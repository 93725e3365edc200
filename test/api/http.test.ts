import { once } from "node:events";
import { readFileSync } from "node:fs";
import path from "node:path";
import { pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpServer } from "../../src/api/http-server.js";
import { startHarness, type Harness } from "../core-harness.js";
import { onlyServers, repoRoot, silentLog } from "../helpers.js";

const key = "tfk_test_0123456789abcdef";
let h: Harness;
let open: Awaited<ReturnType<typeof startHttpServer>>;
let locked: Awaited<ReturnType<typeof startHttpServer>>;

beforeAll(async () => {
  h = await startHarness({
    http: { port: 0 },
    security: { rate_limiting: { enabled: true, requests_per_minute: 1000 } },
    servers: onlyServers(["memory", "time-tracker"]),
  });
  open = await startHttpServer(h.core, h.core.metrics, silentLog);
  // A second server on the same core, with the API key required.
  const lockedConfig = structuredClone(h.config);
  lockedConfig.security.api_key_required = true;
  lockedConfig.security.api_key = key;
  lockedConfig.security.rate_limiting.requests_per_minute = 5;
  locked = await startHttpServer({ ...h.core, config: lockedConfig }, h.core.metrics, silentLog);
});
afterAll(async () => {
  await open?.close();
  await locked?.close();
  await h?.stop();
});

const api = (path: string, init: RequestInit = {}, base = open.url) => fetch(`${base}${path}`, init);
const json = { "content-type": "application/json" };
const post = (body: unknown, headers: Record<string, string> = {}) =>
  api("/api/tasks", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });

describe("the local HTTP API", () => {
  it("answers liveness and readiness", async () => {
    expect(await (await api("/healthz")).json()).toEqual({ ok: true });
    const ready = await api("/readyz");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ ready: true, servers: 2, reasons: [] });
  });

  it("creates a task (201), and a retried POST with the same Idempotency-Key makes no second one", async () => {
    const first = await post(
      { title: "From the API", priority: 2, tags: ["api"] },
      { "idempotency-key": "req-42" },
    );
    expect(first.status).toBe(201);
    const created = (await first.json()) as { task: { id: string }; created: boolean };
    expect(first.headers.get("location")).toBe(`/api/tasks/${created.task.id}`);
    const again = await post(
      { title: "From the API", priority: 2, tags: ["api"] },
      { "idempotency-key": "req-42" },
    );
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ task: { id: created.task.id }, created: false });
    const clash = await post({ title: "Something else" }, { "idempotency-key": "req-42" });
    expect(clash.status).toBe(409);
    expect(await clash.json()).toEqual({
      error: { code: "idempotency_conflict", message: "this Idempotency-Key was used for another task" },
    });
    expect((await h.core.store.tasks.recent(100)).filter((t) => t.title === "From the API")).toHaveLength(1);

    await h.core.orchestrator.waitForSettled(created.task.id, 10_000);
    const shown = (await (await api(`/api/tasks/${created.task.id}`)).json()) as {
      task: { status: string };
      operations: unknown[];
    };
    expect(shown.task.status).toBe("done");
    expect(shown.operations).toHaveLength(2);
    const listed = (await (await api("/api/tasks?status=done&limit=5")).json()) as {
      tasks: Array<{ id: string }>;
    };
    expect(listed.tasks.map((t) => t.id)).toContain(created.task.id);
    expect((await api(`/api/tasks/${created.task.id}/retry`, { method: "POST", headers: json })).status).toBe(
      202,
    );
  });

  it.each([
    [{ title: "" }, 400, "title"],
    [{ title: "x", priority: 9 }, 400, "priority"],
    [{ title: "x", deadline: "2001-01-01T00:00:00Z" }, 400, "deadline"],
    [{ title: "x", tags: ["two words"] }, 400, "tags"],
    [{ title: 5 }, 400, "title"],
    [{ title: "x", extra: true }, 400, undefined],
  ])("refuses %j with %i naming the field", async (body, status, field) => {
    const res = await post(body);
    expect(res.status).toBe(status);
    const json = (await res.json()) as { error: { code: string; field?: string } };
    expect(json.error.code).toBe("invalid_task");
    expect(json.error.field).toBe(field);
  });

  it("changes a task: PATCH with If-Match (412 on a stale version), complete, reopen and DELETE, each once per Idempotency-Key", async () => {
    const first = await post({ title: "Lifecycle by API", tags: ["api-life"], priority: 3 });
    const { id } = ((await first.json()) as { task: { id: string } }).task;
    await h.core.orchestrator.waitForSettled(id, 10_000);
    const shown = await api(`/api/tasks/${id}`);
    expect(shown.headers.get("etag")).toBe('"1"');
    const patch = (body: unknown, headers: Record<string, string> = {}) =>
      api(`/api/tasks/${id}`, {
        method: "PATCH",
        headers: { ...json, ...headers },
        body: JSON.stringify(body),
      });

    const edited = await patch(
      { title: "Lifecycle, edited", priority: 1 },
      { "if-match": '"1"', "idempotency-key": "edit-1" },
    );
    expect(edited.status).toBe(200);
    expect(edited.headers.get("etag")).toBe('"2"');
    expect(await edited.json()).toMatchObject({
      task: { state: "open", version: 2 },
      changed: true,
      replayed: false,
      servers: ["memory", "time-tracker"],
    });
    // The same request again is answered from the first, and changes nothing.
    const replay = await patch(
      { title: "Lifecycle, edited", priority: 1 },
      { "if-match": '"1"', "idempotency-key": "edit-1" },
    );
    expect(replay.status).toBe(200);
    expect(await replay.json()).toMatchObject({ task: { version: 2 }, replayed: true });
    const clash = await patch({ title: "Something else" }, { "idempotency-key": "edit-1" });
    expect(clash.status).toBe(409);
    expect(((await clash.json()) as { error: { code: string } }).error.code).toBe("idempotency_conflict");
    // A client that read version 1 is told the task moved on, and which version it is at.
    const stale = await patch({ title: "Lost update" }, { "if-match": 'W/"1"' });
    expect(stale.status).toBe(412);
    expect(stale.headers.get("etag")).toBe('"2"');
    expect(await stale.json()).toEqual({
      error: {
        code: "version_mismatch",
        message: `task ${id} is at version 2, not 1: read it again and retry`,
      },
    });
    expect((await patch({ title: "x" }, { "if-match": "yesterday" })).status).toBe(400);
    const empty = await patch({});
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as { error: { message: string } }).error.message).toBe(
      "send at least one field to change",
    );
    const badDeadline = await patch({ deadline: "someday" });
    expect(badDeadline.status).toBe(400);
    expect(((await badDeadline.json()) as { error: { field: string } }).error.field).toBe("deadline");

    const action = (what: string, headers: Record<string, string> = {}) =>
      api(`/api/tasks/${id}/${what}`, { method: "POST", headers: { ...json, ...headers } });
    const done = await action("complete", { "idempotency-key": "done-1" });
    expect(await done.json()).toMatchObject({ task: { state: "done", version: 3 }, changed: true });
    expect(await (await action("complete", { "idempotency-key": "done-1" })).json()).toMatchObject({
      task: { version: 3 },
      replayed: true,
    });
    // Done is a state: completing a done task again is no change.
    expect(await (await action("complete")).json()).toMatchObject({ task: { version: 3 }, changed: false });
    await h.core.orchestrator.waitForChanges(id, 10_000);
    const listedDone = (await (await api("/api/tasks?state=done&tag=%23api-life")).json()) as {
      tasks: Array<{ id: string; state: string }>;
    };
    expect(listedDone.tasks.map((t) => t.id)).toEqual([id]);
    expect(
      ((await (await api("/api/tasks?state=open&tag=api-life")).json()) as { tasks: unknown[] }).tasks,
    ).toEqual([]);

    expect(await (await action("reopen")).json()).toMatchObject({ task: { state: "open", version: 4 } });
    // A delete supersedes what has not run yet; here the reopen has run everywhere first.
    await h.core.orchestrator.waitForChanges(id, 10_000);
    const deleted = await api(`/api/tasks/${id}`, {
      method: "DELETE",
      headers: { "idempotency-key": "del-1" },
    });
    expect(await deleted.json()).toMatchObject({ task: { state: "deleted", version: 5 }, changed: true });
    expect(
      await (
        await api(`/api/tasks/${id}`, { method: "DELETE", headers: { "idempotency-key": "del-1" } })
      ).json(),
    ).toMatchObject({ replayed: true });
    const refused = await action("reopen");
    expect(refused.status).toBe(409);
    expect(await refused.json()).toEqual({
      error: { code: "task_deleted", message: `task ${id} was deleted; it cannot be changed` },
    });
    expect((await api("/api/tasks/nosuchtask/complete", { method: "POST", headers: json })).status).toBe(404);

    // Every change reached both servers once, and the history names each.
    await h.core.orchestrator.waitForChanges(id, 10_000);
    const final = (await (await api(`/api/tasks/${id}`)).json()) as {
      task: { state: string; version: number };
      operations: Array<{ kind: string; server: string; status: string }>;
      changes: Array<{ version: number; kind: string; source: string }>;
    };
    expect(final.task).toMatchObject({ state: "deleted", version: 5 });
    expect(final.changes.map((c) => [c.version, c.kind, c.source])).toEqual([
      [2, "update", "api"],
      [3, "complete", "api"],
      [4, "reopen", "api"],
      [5, "delete", "api"],
    ]);
    for (const kind of ["update", "complete", "reopen", "delete"])
      expect(
        final.operations
          .filter((o) => o.kind === kind)
          .map((o) => `${o.server} ${o.status}`)
          .sort(),
      ).toEqual(["memory done", "time-tracker done"]);
  });

  it("lists the open alerts in /api/health, with who acknowledged them", async () => {
    const alert = await h.core.store.alerts.raise("error", "memory", { reason: "probe failed" });
    await h.core.store.alerts.acknowledge(alert.id, { name: "Ann", userId: 5 });
    const body = (await (await api("/api/health")).json()) as { alerts: unknown[] };
    expect(body.alerts).toEqual([
      {
        id: alert.id,
        kind: "error",
        server: "memory",
        firstSeen: alert.firstSeen,
        lastSeen: alert.lastSeen,
        count: 1,
        acknowledged: { by: "Ann", userId: 5, at: expect.any(Number) },
      },
    ]);
    await h.core.store.alerts.resolve("memory");
    expect(((await (await api("/api/health")).json()) as { alerts: unknown[] }).alerts).toEqual([]);
  });

  it("refuses malformed, oversized and non-JSON bodies, unknown tasks and queries", async () => {
    const malformed = await post("{not json");
    expect(malformed.status).toBe(400);
    expect(((await malformed.json()) as { error: { code: string } }).error.code).toBe("malformed_json");
    const big = await post({ title: "big", description: "x".repeat(70_000) });
    expect(big.status).toBe(413);
    const text = await api("/api/tasks", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "hi",
    });
    expect(text.status).toBe(415);
    expect((await api("/api/tasks/nosuchtask")).status).toBe(404);
    expect((await api("/api/tasks/nosuchtask/retry", { method: "POST", headers: json })).status).toBe(404);
    const badQuery = await api("/api/tasks?status=lost");
    expect(badQuery.status).toBe(400);
    expect(((await badQuery.json()) as { error: { field: string } }).error.field).toBe("status");
    expect((await api("/api/nothing")).status).toBe(404);
    expect((await api("/api/health", { method: "DELETE" })).status).toBe(405);
  });

  it("requires the API key when configured, and holds the rate limit", async () => {
    const health = (init: RequestInit = {}) => api("/api/health", init, locked.url);
    expect((await health()).status).toBe(401);
    expect((await health({ headers: { authorization: "Bearer wrong-key" } })).status).toBe(401);
    const ok = await health({ headers: { authorization: `Bearer ${key}` } });
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { servers: unknown[] }).servers).toHaveLength(2);
    const codes: number[] = [];
    for (let i = 0; i < 5; i++)
      codes.push((await health({ headers: { authorization: `Bearer ${key}` } })).status);
    expect(codes.slice(0, 2)).toEqual([200, 200]);
    expect(codes.at(-1)).toBe(429);
    // Liveness stays open without a key (everything else needs it: see http-hardening).
    expect((await api("/healthz", {}, locked.url)).status).toBe(200);
  });

  it("exposes Prometheus metrics whose counters move when a task fans out", async () => {
    const read = async () => {
      const res = await api("/metrics");
      expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
      return res.text();
    };
    const count = (text: string, server: string) =>
      Number(
        new RegExp(`^taskfan_operations_total\\{server="${server}",outcome="done"\\} (\\d+)$`, "m").exec(
          text,
        )?.[1] ?? 0,
      );
    const before = await read();
    for (const line of before.split("\n").filter((l) => l && !l.startsWith("#"))) {
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+|NaN$/);
    }
    expect(before).toMatch(/^taskfan_breaker_state\{server="memory"\} 0$/m);
    expect(before).toMatch(/^taskfan_server_health\{server="memory"\} 0$/m);
    expect(before).toMatch(/^taskfan_process_resident_memory_bytes \d+/m);
    const id = await h.core.orchestrator.createTask({ title: "counted" });
    await h.core.orchestrator.waitForSettled(id, 10_000);
    const after = await read();
    expect(count(after, "memory")).toBe(count(before, "memory") + 1);
    expect(after).toMatch(/^taskfan_operation_duration_seconds_count\{server="memory"\} [1-9]/m);
    expect(after).toMatch(/^taskfan_tasks\{status="done"\} [1-9]/m);
    // The task's own synced commit is counted.
    const commits = (text: string) =>
      Number(/^taskfan_store_commits_total\{durability="full"\} (\d+)$/m.exec(text)?.[1] ?? NaN);
    expect(commits(after)).toBeGreaterThan(commits(before));
  });

  it("writes logs/monitoring_metrics.json with each server's numbers", async () => {
    // The timer writes it every health_check_interval; this writes one now through the same code.
    const file = await h.core.writeSnapshot();
    expect(file).toBe(path.join(h.core.config.logs_dir, "monitoring_metrics.json"));
    const written = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
    expect(written).toMatchObject({
      servers: { memory: { status: "ONLINE", breaker: "closed" } },
      queue_size: expect.any(Number),
    });
  });

  it("writes the snapshot atomically: a reader never sees half a file", async () => {
    const dir = path.join(h.dir, "atomic");
    const file = path.join(dir, "monitoring_metrics.json");
    // Another thread rewrites a 2 MB snapshot over and over while this one reads it.
    const module = pathToFileURL(path.join(repoRoot, "dist", "src", "monitoring", "snapshot.js")).href;
    const worker = new Worker(
      `const { workerData, parentPort } = require("node:worker_threads");
       import(workerData.module).then(({ writeSnapshot }) => {
         const padding = "x".repeat(2_000_000);
         writeSnapshot(workerData.dir, { round: -1, padding });
         parentPort.postMessage("first");
         for (let round = 0; round < 40; round++) writeSnapshot(workerData.dir, { round, padding });
         parentPort.postMessage("done");
       });`,
      { eval: true, workerData: { dir, module } },
    );
    await once(worker, "message");
    let done = false;
    worker.once("message", () => (done = true));
    const rounds = new Set<number>();
    while (!done) {
      const read = JSON.parse(readFileSync(file, "utf8")) as { round: number; padding: string };
      expect(read.padding).toHaveLength(2_000_000);
      rounds.add(read.round);
      await new Promise((r) => setImmediate(r));
    }
    await worker.terminate();
    // It read while the other thread wrote: several versions, each whole.
    expect(rounds.size).toBeGreaterThan(1);
  });

  it("serves the status page with a row per server", async () => {
    const res = await api("/");
    expect(res.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await res.text();
    expect(html.match(/<tr class="server">/g)).toHaveLength(2);
    // Each task row shows its state past open: the task the lifecycle test deleted says so.
    const rows = html.split("\n").filter((l) => l.startsWith("<tr><td><code>"));
    expect(rows.find((l) => l.includes("Lifecycle, edited"))).toContain(
      '<span class="state deleted">deleted</span>',
    );
    expect(rows.filter((l) => !l.includes('class="state'))).not.toEqual([]);
    expect(html).toContain('<meta http-equiv="refresh"');
    expect(html).toContain("<svg");
  });
});

describe("the Grafana dashboard (docs/grafana/taskfan.json)", () => {
  interface Panel {
    title: string;
    type: string;
    targets?: Array<{ expr: string }>;
  }
  const dashboard = JSON.parse(readFileSync(path.join(repoRoot, "docs/grafana/taskfan.json"), "utf8")) as {
    panels: Panel[];
    templating: { list: Array<{ name: string; type: string }> };
  };
  const exprs = dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })),
  );
  // Labels Prometheus adds to every scraped series, and the histogram's buckets.
  const scrapeLabels = new Set(["instance", "job", "le"]);

  it("queries only metrics and labels that /metrics exposes", async () => {
    const scrape = await (await api("/metrics")).text();
    const types = new Map<string, string>();
    for (const m of scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1]!, m[2]!);
    // A series may have no sample yet (no retry so far): its labels are the registry's.
    const labelsOf = (name: string) =>
      new Set(
        (h.core.metrics.registry.getSingleMetric(name) as unknown as { labelNames?: string[] } | undefined)
          ?.labelNames ?? [],
      );
    const problems: string[] = [];
    expect(exprs.length).toBeGreaterThanOrEqual(15);
    for (const { panel, expr } of exprs) {
      const names = [...expr.matchAll(/\btaskfan_[a-z0-9_]+/g)].map((m) => m[0]);
      if (names.length === 0) problems.push(`${panel}: no taskfan metric in ${expr}`);
      for (const name of names) {
        const base = name.replace(/_(bucket|sum|count)$/, "");
        const family = types.has(name) ? name : types.get(base) === "histogram" ? base : undefined;
        if (!family) {
          problems.push(`${panel}: ${name} is not exposed`);
          continue;
        }
        const known = labelsOf(family);
        const used = [
          ...[...expr.matchAll(/\bby \(([^)]*)\)/g)].flatMap((m) => m[1]!.split(",")),
          ...[...expr.matchAll(new RegExp(`${name}\\{([^}]*)\\}`, "g"))].flatMap((m) =>
            m[1]!.split(",").map((pair) => pair.split("=")[0]!),
          ),
        ].map((l) => l.trim());
        for (const label of used) {
          if (!known.has(label) && !scrapeLabels.has(label))
            problems.push(`${panel}: ${name} has no label ${label}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it("covers operations, errors, latency, breakers, health, the queue and alerts", () => {
    const all = exprs.map((e) => e.expr).join("\n");
    for (const needed of [
      "taskfan_operations_total",
      'outcome="failed"',
      "histogram_quantile(0.95",
      "taskfan_breaker_state",
      "taskfan_server_health",
      "taskfan_queue_size",
      "taskfan_alerts_total",
    ]) {
      expect(all).toContain(needed);
    }
    // Importable anywhere: the Prometheus data source is chosen on import.
    expect(dashboard.templating.list).toContainEqual(
      expect.objectContaining({ name: "datasource", type: "datasource" }),
    );
  });
});
