import { Composer, InlineKeyboard } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import { buttonData } from "../src/bot/callback-data.js";
import type { BotDeps } from "../src/bot/deps.js";
import type { Translate } from "../src/bot/i18n.js";
import type { ServerHealth } from "../src/monitoring/health-monitor.js";
import type { StoreState } from "../src/store/store-health.js";
import type { InstanceView } from "../src/cluster/membership.js";
import type { Alert } from "../src/domain/alert.js";
import type { RouteView } from "../src/core.js";
import { minute } from "../src/bot/alert-format.js";

const emoji = { ONLINE: "🟢", DEGRADED: "🟡", ERROR: "🔴" } as const;

/** Several instances share the store: whose probes these are, and who holds what. */
export interface GroupView {
  ratedBy: string;
  instances: readonly InstanceView[];
}

export function formatHealth(
  servers: readonly ServerHealth[],
  t: Translate,
  store: StoreState = { ok: true },
  group?: GroupView,
  alerts: readonly Alert[] = [],
  routes: readonly RouteView[] = [],
): string {
  const lines = servers.map((s) => {
    const ms = s.lastResponseMs === undefined ? "—" : `${Math.round(s.lastResponseMs)} ms`;
    const breaker = s.breaker === "closed" ? "" : t("health-breaker", { state: s.breaker });
    const why = s.status === "ONLINE" ? "" : `\n    ${s.reason}`;
    const where = s.url ? `\n    ${s.transport} ${s.url}` : "";
    return `${emoji[s.status]} ${s.server.padEnd(19)} ${s.status} · ${ms}${breaker}${where}${why}`;
  });
  const up = servers.filter((s) => s.status === "ONLINE").length;
  const storage = store.ok
    ? []
    : [
        t("health-storage-down", {
          reason: store.reason,
          since: new Date(store.since).toISOString().slice(11, 16),
        }),
      ];
  const instances =
    group && group.instances.length > 1
      ? [
          "",
          t("health-checked-by", { instance: group.ratedBy }),
          t("health-instances", { count: group.instances.length }),
          ...group.instances.map((i) =>
            t("health-instance", {
              id: i.id,
              host: i.host,
              pid: i.pid,
              self: i.self ? t("health-instance-self") : "",
              singletons: i.singletons.length > 0 ? i.singletons.join(", ") : t("health-instance-idle"),
            }),
          ),
        ]
      : [];
  const open = alerts.filter((a) => a.status === "open");
  const alertLines =
    open.length > 0
      ? [
          "",
          t("health-alerts"),
          ...open.map((a) =>
            t("health-alert", {
              kind: t(`alert-${a.kind}`),
              server: a.server,
              since: minute(a.firstSeen),
              ack: a.acknowledged ? t("health-alert-acked", { by: a.acknowledged.by }) : "",
            }),
          ),
        ]
      : [];
  const routeLines =
    routes.length > 0
      ? [
          "",
          t("health-routes"),
          ...routes.map((r) => t("health-route", { route: r.route, kind: r.kind, state: routeState(r, t) })),
        ]
      : [];
  return [
    ...storage,
    t("health-head", { up, total: servers.length }),
    "",
    ...lines,
    ...alertLines,
    ...routeLines,
    ...instances,
  ].join("\n");
}

/** One route's state in a few words: what waits for a retry, what it refused, what it said last. */
function routeState(r: RouteView, t: Translate): string {
  const parts = [
    ...(r.retrying > 0
      ? [
          t("health-route-retrying", {
            count: r.retrying,
            next: r.nextAttemptAt === null ? "—" : minute(r.nextAttemptAt),
          }),
        ]
      : []),
    ...(r.refused > 0 ? [t("health-route-refused", { count: r.refused })] : []),
    ...(r.lastError ? [t("health-route-error", { error: r.lastError })] : []),
  ];
  return parts.length > 0 ? parts.join(" · ") : t("health-route-ok");
}

/** /health's text: the group's picture, with the instances when there are several. */
async function healthText(deps: BotDeps, servers: readonly ServerHealth[], t: Translate): Promise<string> {
  const instances = await deps.instances?.().catch(() => undefined);
  const group = instances && deps.ratedBy ? { ratedBy: deps.ratedBy(), instances } : undefined;
  // The open alerts and who is on them; /health still answers when the store does not.
  const alerts = await deps.alerts.open().catch(() => []);
  const routes = (await deps.routes?.()) ?? [];
  return formatHealth(servers, t, deps.storeHealth.state, group, alerts, routes);
}

export const refreshHealth = (t: Translate) =>
  new InlineKeyboard().text(t("btn-refresh"), buttonData.healthRefresh);

/** /health, and its Refresh button (which probes every server again). */
export function healthHandler(deps: BotDeps): Composer<BotContext> {
  const c = new Composer<BotContext>();
  c.command("health", async (ctx) =>
    ctx.reply(await healthText(deps, deps.getHealth(), ctx.t), {
      reply_markup: refreshHealth(ctx.t),
    }),
  );
  c.callbackQuery(buttonData.healthRefresh, async (ctx) => {
    await ctx.answerCallbackQuery({ text: ctx.t("checking") });
    const text = await healthText(deps, await deps.checkHealth(), ctx.t);
    if (ctx.callbackQuery.message?.text === text) return;
    const markup = { reply_markup: refreshHealth(ctx.t) };
    await ctx.editMessageText(text, markup).catch(() => ctx.reply(text, markup));
  });
  return c;
}
