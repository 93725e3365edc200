import type { ServerHealth } from "../monitoring/health-monitor.js";
import type { TaskView } from "../domain/task.js";
import type { StoreState } from "../store/store-health.js";
import type { InstanceView } from "../cluster/membership.js";
import type { RouteView } from "../core.js";
import { formatInZone } from "../time-zone.js";

const esc = (text: unknown) =>
  String(text ?? "").replace(
    /[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!,
  );

// Coloured by CSS, so no emoji font is needed on the viewing device.
const dot = (status: ServerHealth["status"]) => `<span class="dot ${status.toLowerCase()}">●</span>`;
const tick: Record<string, string> = { done: "✓", skipped: "–", failed: "✗", pending: "…", running: "…" };

/** Bars of p50 (solid) and p95 (light) per server, as inline SVG. */
function latencyChart(servers: readonly ServerHealth[]): string {
  const max = Math.max(1, ...servers.map((s) => s.p95Ms ?? 0));
  const rowH = 18;
  const rows = servers
    .map((s, i) => {
      const y = i * rowH;
      const w95 = ((s.p95Ms ?? 0) / max) * 200;
      const w50 = ((s.p50Ms ?? 0) / max) * 200;
      return `<text x="0" y="${y + 13}" font-size="11">${esc(s.server)}</text>
<rect x="130" y="${y + 3}" width="${w95.toFixed(1)}" height="12" fill="#c7d2fe"/>
<rect x="130" y="${y + 3}" width="${w50.toFixed(1)}" height="12" fill="#4f46e5"/>
<text x="${(136 + w95).toFixed(1)}" y="${y + 13}" font-size="10">${s.p95Ms === undefined ? "—" : `${Math.round(s.p50Ms ?? 0)}/${Math.round(s.p95Ms)} ms`}</text>`;
    })
    .join("\n");
  return `<svg role="img" aria-label="latency p50/p95 per server" viewBox="0 0 420 ${servers.length * rowH}" width="100%" style="max-width:560px">${rows}</svg>`;
}

/** The status page: servers, recent tasks with per-server ticks, a latency chart. */
export function renderStatusPage(
  health: readonly ServerHealth[],
  tasks: readonly TaskView[],
  options: {
    store?: StoreState;
    zone?: string;
    now?: Date;
    instances?: readonly InstanceView[];
    routes?: readonly RouteView[];
  } = {},
): string {
  const { store = { ok: true }, zone = "UTC", now = new Date(), instances = [], routes = [] } = options;
  // Where each alert route stands: what waits for a retry and when, what it refused.
  const routeTable =
    routes.length > 0
      ? `<h2>Alert routes</h2>
<div class="scroll"><table id="routes"><thead><tr><th>Route</th><th>Kind</th><th>Retrying</th><th>Next try</th><th>Refused</th><th>Last error</th></tr></thead>
<tbody>
${routes
  .map(
    (r) =>
      `<tr class="route"><td>${esc(r.route)}</td><td>${esc(r.kind)}</td><td>${r.retrying}</td><td>${
        r.nextAttemptAt === null ? "—" : esc(formatInZone(new Date(r.nextAttemptAt), zone, "en", now))
      }</td><td>${r.refused}</td><td class="err">${esc(r.lastError ?? "")}</td></tr>`,
  )
  .join("\n")}
</tbody></table></div>`
      : "";
  // Several instances share the store: which one holds what.
  const group =
    instances.length > 1
      ? `<h2>Instances</h2>
<div class="scroll"><table id="instances"><thead><tr><th>Instance</th><th>Host</th><th>PID</th><th>Version</th><th>Holds</th></tr></thead>
<tbody>
${instances
  .map(
    (i) =>
      `<tr class="instance"><td>${esc(i.id)}${i.self ? " (this one)" : ""}</td><td>${esc(i.host)}</td><td>${i.pid}</td><td>${esc(i.version)}</td><td>${esc(i.singletons.join(", "))}</td></tr>`,
  )
  .join("\n")}
</tbody></table></div>`
      : "";
  const online = health.filter((h) => h.status === "ONLINE").length;
  const storage = store.ok
    ? ""
    : `<p id="storage" class="banner">Storage unavailable since ${esc(new Date(store.since).toISOString())}: ${esc(store.reason)}. New tasks are refused; work in flight is kept and recorded when it answers.</p>`;
  const serverRows = health
    .map(
      (h) =>
        `<tr class="server"><td>${dot(h.status)} ${esc(h.server)}</td><td>${h.status}</td><td>${
          h.lastResponseMs === undefined ? "—" : `${Math.round(h.lastResponseMs)} ms`
        }</td><td>${esc(h.breaker)}</td><td>${esc(h.url ? `${h.transport} ${h.url}` : h.transport)}</td><td class="err">${h.status === "ONLINE" ? "" : esc(h.reason)}</td></tr>`,
    )
    .join("\n");
  const names = health.map((h) => h.server);
  const taskRows = tasks
    .map((v) => {
      const byServer = new Map(
        v.operations.filter((o) => o.kind === "create").map((o) => [o.server, o.status]),
      );
      const ticks = names
        .map((n) => `<td title="${esc(n)}">${tick[byServer.get(n) ?? ""] ?? ""}</td>`)
        .join("");
      const due = v.task.deadline
        ? ` <span class="due">due ${esc(formatInZone(v.task.deadline, zone, "en", now))}</span>`
        : "";
      return `<tr><td><code>${esc(v.task.id)}</code> ${esc(v.task.title)}${due}</td><td>${esc(v.task.status)}${v.task.state === "open" ? "" : `<br><span class="state ${v.task.state}">${v.task.state}</span>`}</td>${ticks}</tr>`;
    })
    .join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="10">
<title>taskfan · ${online}/${health.length} online</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1rem;color:#111}
table{border-collapse:collapse;width:100%;margin-bottom:1.5rem}
th,td{padding:.3rem .5rem;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
.err{color:#b91c1c;font-size:12px}
.due{color:#4b5563;font-size:12px;white-space:nowrap}
.state{font-size:12px}.state.done{color:#16a34a}.state.deleted{color:#6b7280}
.scroll{overflow-x:auto}
.dot.online{color:#16a34a}.dot.degraded{color:#ca8a04}.dot.error{color:#dc2626}
.banner{background:#fee2e2;color:#991b1b;padding:.5rem .75rem;border-radius:4px}
</style></head>
<body>
<h1>taskfan</h1>
${storage}
<p>${online} of ${health.length} servers online · ${esc(now.toISOString())}</p>
<h2>Servers</h2>
<div class="scroll"><table id="servers"><thead><tr><th>Server</th><th>Status</th><th>Response</th><th>Breaker</th><th>Transport</th><th>Last error</th></tr></thead>
<tbody>
${serverRows}
</tbody></table></div>
${routeTable}
${group}
<h2>Latency (p50 / p95)</h2>
${latencyChart(health)}
<h2>Recent tasks</h2>
<div class="scroll"><table id="tasks"><thead><tr><th>Task</th><th>Status</th>${names.map((n) => `<th title="${esc(n)}">${esc(n.slice(0, 3))}</th>`).join("")}</tr></thead>
<tbody>
${taskRows || `<tr><td colspan="${names.length + 2}">No tasks yet.</td></tr>`}
</tbody></table></div>
</body></html>`;
}
