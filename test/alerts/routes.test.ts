import { createHmac } from "node:crypto";
import { once } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { AlertRoutes, routeMuteKey } from "../../src/alerts/route-delivery.js";
import { senderFor } from "../../src/alerts/senders.js";
import { slackMessage } from "../../src/alerts/slack.js";
import { signatureHeader, timestampHeader, verifyWebhook } from "../../src/alerts/webhook.js";
import type { AlertRouteConfig } from "../../src/config/schema.js";
import type { Store } from "../../src/store/store.js";
import { SMTPServer } from "smtp-server";
import { recover } from "../../src/monitoring/alert-rules.js";
import { alertRoutesOf } from "../../src/bot/front-end.js";
import { createI18n, translatorFor } from "../../src/bot/i18n.js";
import { startHarness } from "../core-harness.js";
import { freePort, onlyServers, silentLog } from "../helpers.js";
import { storeEngines } from "../store-engines.js";

const engines = storeEngines();

/** A local HTTP endpoint that keeps every POST and answers from a script (then 200). */
async function endpoint() {
  const received: Array<{ headers: IncomingMessage["headers"]; body: string }> = [];
  const script: Array<{ status: number; body?: string; headers?: Record<string, string> }> = [];
  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      received.push({ headers: req.headers, body });
      const next = script.shift() ?? { status: 200 };
      res.writeHead(next.status, next.headers ?? {}).end(next.body ?? "");
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  opened.push(server);
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    /** The next answers, in order. */
    answer: (...next: typeof script) => script.push(...next),
  };
}
const opened: Server[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await new Promise((r) => s.close(r));
});

const secret = "whsec-0123456789abcdef";
const from = { instance: "taskfan-test", version: "0.0.0-test" };
const text = (a: { kind: string; server: string }) => `${a.kind}: ${a.server}`;

function webhook(url: string, extra: Partial<AlertRouteConfig> = {}): AlertRouteConfig {
  return {
    kind: "webhook",
    name: "ops",
    url,
    secret,
    timeout: 5,
    enabled: true,
    ...extra,
  } as AlertRouteConfig;
}

function routesOn(store: Store, configs: AlertRouteConfig[], now: () => number) {
  return new AlertRoutes(
    store,
    configs.map((config) => ({ config, sender: senderFor(config, text, from) })),
    silentLog,
    { now },
  );
}

describe.each(engines)("alert routes: webhooks ($name)", (engine) => {
  const start = async () => {
    const c = { t: 1_000_000 };
    const now = () => c.t;
    const store = await engine.open(now);
    return { store, now, tick: (ms: number) => (c.t += ms) };
  };

  it("POSTs a signed JSON body; after a 500 it tries again past the backoff, and delivers once", async () => {
    const { store, now, tick } = await start();
    const hook = await endpoint();
    const routes = routesOn(store, [webhook(hook.url)], now);
    await routes.deliver(); // the route starts taking alerts from here
    const alert = await store.alerts.raise("error", "memory", { reason: "probe failed", instance: "b" });

    hook.answer({ status: 500, body: "upstream down" });
    expect(await routes.deliver()).toBe(0);
    expect(await store.alertRoutes.forAlert(alert.id)).toEqual([
      expect.objectContaining({
        route: "ops",
        deliveredCount: 0,
        attempts: 1,
        lastError: "HTTP 500: upstream down",
        nextAttemptAt: now() + 2000,
      }),
    ]);
    expect(await routes.deliver()).toBe(0); // not due yet
    expect(hook.received).toHaveLength(1);
    tick(2000);
    expect(await routes.deliver()).toBe(1);
    expect(await routes.deliver()).toBe(0);
    expect(hook.received).toHaveLength(2);
    expect((await store.alertRoutes.forAlert(alert.id))[0]).toMatchObject({
      deliveredCount: 1,
      attempts: 0,
      lastError: null,
    });

    // The same delivery both times, signed over its timestamp and the exact body.
    for (const { headers, body } of hook.received) {
      expect(headers["x-taskfan-delivery"]).toBe(`${alert.id}-1`);
      const timestamp = String(headers[timestampHeader]);
      expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(60);
      expect(headers[signatureHeader]).toBe(
        `sha256=${createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex")}`,
      );
      const signature = String(headers[signatureHeader]);
      expect(verifyWebhook(body, { timestamp, signature }, secret)).toBe(true);
      // Another body, another secret, or the same delivery played again later: refused.
      expect(verifyWebhook(`${body} `, { timestamp, signature }, secret)).toBe(false);
      expect(verifyWebhook(body, { timestamp, signature }, "another secret")).toBe(false);
      expect(
        verifyWebhook(body, { timestamp, signature }, secret, { now: (Number(timestamp) + 301) * 1000 }),
      ).toBe(false);
      expect(verifyWebhook(body, { timestamp: undefined, signature }, secret)).toBe(false);
    }
    expect(JSON.parse(hook.received[1]!.body)).toEqual({
      schema: "taskfan.alert/1",
      delivery: `${alert.id}-1`,
      alert: {
        id: alert.id,
        kind: "error",
        status: "open",
        server: "memory",
        taskId: null,
        firstSeen: new Date(alert.firstSeen).toISOString(),
        lastSeen: new Date(alert.lastSeen).toISOString(),
        closedAt: null,
        count: 1,
        reason: "probe failed",
        error: null,
        seenBy: "b",
        acknowledged: null,
      },
      text: "error: memory",
      taskfan: from,
    });

    // A repeat is delivered again, as the next count.
    await store.alerts.raise("error", "memory", { reason: "still failing" });
    expect(await routes.deliver()).toBe(1);
    expect(hook.received.at(-1)!.headers["x-taskfan-delivery"]).toBe(`${alert.id}-2`);

    // Once someone is on it, its repeats are not sent; its recovery is.
    await store.alerts.acknowledge(alert.id, { name: "Ann", userId: 5 });
    await store.alerts.raise("error", "memory", { reason: "and again" });
    expect(await routes.deliver()).toBe(0);
    await recover(store.alerts, "memory");
    expect(await routes.deliver()).toBe(1);
    const last = JSON.parse(hook.received.at(-1)!.body) as { alert: { kind: string } };
    expect(last.alert.kind).toBe("recovered");
    expect(hook.received).toHaveLength(4);
  });

  it("records a 400 as refused with the reason and does not try it again; Retry-After is honoured", async () => {
    const { store, now, tick } = await start();
    const hook = await endpoint();
    const routes = routesOn(store, [webhook(hook.url)], now);
    await routes.deliver();
    const alert = await store.alerts.raise("breaker_open", "git", { error: "timeout" });
    hook.answer({ status: 400, body: '{"error":"bad payload"}' });
    expect(await routes.deliver()).toBe(0);
    tick(3_600_000);
    expect(await routes.deliver()).toBe(0);
    expect(hook.received).toHaveLength(1);
    expect((await store.alertRoutes.forAlert(alert.id))[0]).toMatchObject({
      failedCount: 1,
      deliveredCount: 0,
      lastError: 'HTTP 400: {"error":"bad payload"}',
    });

    // A 429 asking for 60 s waits 60 s, not the 2 s backoff.
    const other = await store.alerts.raise("degraded", "backup", { reason: "slow" });
    hook.answer({ status: 429, headers: { "retry-after": "60" } });
    await routes.deliver();
    expect((await store.alertRoutes.forAlert(other.id))[0]!.nextAttemptAt).toBe(now() + 60_000);
    // Where the route stands, as /health and the API show it.
    expect(await store.alertRoutes.summary()).toEqual([
      {
        route: "ops",
        since: expect.any(Number),
        retrying: 1,
        nextAttemptAt: now() + 60_000,
        refused: 1,
        lastError: "HTTP 429",
      },
    ]);
    tick(59_000);
    await routes.deliver();
    expect(hook.received).toHaveLength(2);
    tick(1000);
    expect(await routes.deliver()).toBe(1);
    expect(await store.alertRoutes.summary()).toEqual([
      expect.objectContaining({
        route: "ops",
        retrying: 0,
        nextAttemptAt: null,
        refused: 1,
        lastError: 'HTTP 400: {"error":"bad payload"}',
      }),
    ]);
  });

  it("follows no redirect: the signed body never reaches the other host; refused, naming where it pointed", async () => {
    const { store, now, tick } = await start();
    const elsewhere = await endpoint();
    const hook = await endpoint();
    const routes = routesOn(store, [webhook(hook.url)], now);
    await routes.deliver();
    const alert = await store.alerts.raise("error", "git");
    for (const status of [302, 307, 308]) {
      hook.answer({ status, headers: { location: `${elsewhere.url}/steal?token=x` } });
    }
    expect(await routes.deliver()).toBe(0);
    tick(3_600_000);
    expect(await routes.deliver()).toBe(0);
    expect(hook.received).toHaveLength(1);
    expect(elsewhere.received).toEqual([]);
    expect((await store.alertRoutes.forAlert(alert.id))[0]).toMatchObject({
      failedCount: 1,
      lastError: `HTTP 302: redirects are not followed (to ${elsewhere.url}/steal)`,
    });
  });

  it("gives each route what it takes; a route that is down delays only itself; history stays out", async () => {
    const { store, now, tick } = await start();
    const old = await store.alerts.raise("error", "calendar");
    tick(1000);
    const down = await endpoint();
    const up = await endpoint();
    const routes = routesOn(
      store,
      [
        webhook(down.url, { name: "down" }),
        webhook(up.url, { name: "errors-of-git", kinds: ["error"], servers: ["git"] }),
      ],
      now,
    );
    await routes.deliver();
    down.answer({ status: 503 }, { status: 503 });
    const gitError = await store.alerts.raise("error", "git", { reason: "exited" });
    await store.alerts.raise("degraded", "git", { reason: "slow" });
    await store.alerts.raise("error", "memory", { reason: "exited" });
    expect(await routes.deliver()).toBe(1);
    expect(up.received.map((r) => JSON.parse(r.body).alert.id)).toEqual([gitError.id]);
    // The down route tried once and waits; the others it claimed wait with it.
    expect(down.received).toHaveLength(1);
    tick(2000);
    await routes.deliver();
    expect(down.received).toHaveLength(2);
    tick(4000);
    expect(await routes.deliver()).toBe(3);
    const seen = down.received.map((r) => JSON.parse(r.body) as { alert: { kind: string; server: string } });
    expect(seen.map((b) => `${b.alert.kind} ${b.alert.server}`)).toEqual([
      "error git",
      "error git",
      "error git",
      "degraded git",
      "error memory",
    ]);
    // Muted on its own (the other route is not): what comes meanwhile is dropped.
    await store.bot.mutes.mute(routeMuteKey("errors-of-git"), now() + 60_000);
    const meanwhile = await store.alerts.raise("error", "git", { reason: "again" });
    expect(await routes.deliver()).toBe(1); // to "down", which is up now
    expect(up.received).toHaveLength(1);
    await store.bot.mutes.unmute(routeMuteKey("errors-of-git"));
    expect(await routes.deliver()).toBe(0);
    expect(up.received).toHaveLength(1);
    expect((await store.alertRoutes.forAlert(meanwhile.id)).map((d) => [d.route, d.deliveredCount])).toEqual([
      ["down", 2],
      ["errors-of-git", 2],
    ]);
    // The alert from before the routes existed went to neither.
    expect(await store.alertRoutes.forAlert(old.id)).toEqual([]);
    expect(await routes.deliver()).toBe(0);
  });

  it("Slack: Block Kit text to the incoming webhook; a 500 then a 200 delivers once; a revoked hook is refused", async () => {
    const { store, now, tick } = await start();
    const slack = await endpoint();
    const route = {
      kind: "slack",
      name: "team",
      url: slack.url,
      timeout: 5,
      enabled: true,
    } as AlertRouteConfig;
    const routes = routesOn(store, [route], now);
    await routes.deliver();
    const alert = await store.alerts.raise("crash_loop", "git", { reason: "<5 restarts> & counting" });
    slack.answer({ status: 500, body: "internal_error" });
    expect(await routes.deliver()).toBe(0);
    tick(2000);
    expect(await routes.deliver()).toBe(1);
    expect(await routes.deliver()).toBe(0);
    expect(slack.received).toHaveLength(2);
    expect(slack.received[1]!.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(slack.received[1]!.body)).toEqual({
      text: "crash_loop: git",
      blocks: [
        { type: "section", text: { type: "mrkdwn", text: "*crash_loop: git*" } },
        {
          type: "context",
          elements: [{ type: "mrkdwn", text: `taskfan · taskfan-test · alert ${alert.id}` }],
        },
      ],
    });
    expect((await store.alertRoutes.forAlert(alert.id))[0]).toMatchObject({
      route: "team",
      deliveredCount: 1,
    });
    // Neither a task's title nor a server's text can ping a channel or pass for markup, in
    // the blocks or in the notification's own text: as it reaches Slack...
    await store.alerts.notice("recovered", "<!channel>", null, {});
    await routes.deliver();
    const pinged = slack.received.at(-1)!.body;
    expect(JSON.parse(pinged)).toMatchObject({ text: "recovered: &lt;!channel&gt;" });
    expect(pinged).not.toContain("<!channel>");
    // ...and whatever the text holds.
    const ping = slackMessage(alert, "↩️ rolled back: <!channel> & <@U123>", from);
    expect(ping.text).toBe("↩️ rolled back: &lt;!channel&gt; &amp; &lt;@U123&gt;");
    expect(JSON.stringify(ping)).not.toMatch(/<!channel>|<@U123>/);
    // A server's text cannot pass for Slack markup.
    expect(slackMessage(alert, "🔴 ERROR: git\nlast error: <5 restarts> & counting", from).blocks[0]).toEqual(
      {
        type: "section",
        text: { type: "mrkdwn", text: "*🔴 ERROR: git*\nlast error: &lt;5 restarts&gt; &amp; counting" },
      },
    );

    // Slack answers a removed hook with 404 no_service: recorded, not tried again.
    const gone = await store.alerts.raise("error", "memory");
    slack.answer({ status: 404, body: "no_service" });
    await routes.deliver();
    tick(600_000);
    await routes.deliver();
    expect(slack.received).toHaveLength(4);
    expect((await store.alertRoutes.forAlert(gone.id))[0]).toMatchObject({
      failedCount: 1,
      lastError: "HTTP 404: no_service",
    });
  });

  it("e-mail: a text and an HTML part, one thread per alert; SMTP down then up: delivered once; a 550 is refused", async () => {
    const { store, now, tick } = await start();
    const port = await freePort();
    const email = (name: string, to: string[]) =>
      ({
        kind: "email",
        name,
        url: `smtp://127.0.0.1:${port}`,
        from: "taskfan <alerts@example.org>",
        to,
        timeout: 5,
        enabled: true,
      }) as AlertRouteConfig;
    const routes = routesOn(
      store,
      [email("oncall", ["ops@example.org"]), email("nobody", ["nobody@example.org"])],
      now,
    );
    await routes.deliver();
    const alert = await store.alerts.raise("error", "memory", { reason: "exited" });

    // Nothing listens yet: tried again later.
    expect(await routes.deliver()).toBe(0);
    expect((await store.alertRoutes.forAlert(alert.id))[1]).toMatchObject({
      route: "oncall",
      attempts: 1,
      lastError: expect.stringMatching(/^unreachable \(/),
    });

    const mails: Array<{ to: string[]; raw: string }> = [];
    const smtp = new SMTPServer({
      authOptional: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onRcptTo(address, _session, callback) {
        if (!address.address.startsWith("nobody@")) return callback();
        return callback(Object.assign(new Error("No such user here"), { responseCode: 550 }));
      },
      onData(stream, session, callback) {
        let raw = "";
        stream.on("data", (c: Buffer) => (raw += c.toString("utf8")));
        stream.on("end", () => {
          mails.push({ to: session.envelope.rcptTo.map((r) => r.address), raw });
          callback();
        });
      },
    });
    await new Promise<void>((resolve) => smtp.listen(port, "127.0.0.1", resolve));
    try {
      tick(2000);
      expect(await routes.deliver()).toBe(1);
      expect(await routes.deliver()).toBe(0);
      expect(mails).toHaveLength(1);
      const first = mails[0]!;
      expect(first.to).toEqual(["ops@example.org"]);
      expect(first.raw).toMatch(/^Subject: \[taskfan\] error: memory\r?$/m);
      expect(first.raw).toMatch(
        new RegExp(`^Message-ID: <taskfan-alert-${alert.id}\\.1@example\\.org>\\r?$`, "m"),
      );
      expect(first.raw).not.toMatch(/^In-Reply-To:/m);
      expect(first.raw).toMatch(/^Content-Type: multipart\/alternative;/m);
      expect(first.raw).toMatch(/^Content-Type: text\/plain; charset=utf-8\r?$/m);
      expect(first.raw).toMatch(/^Content-Type: text\/html; charset=utf-8\r?$/m);
      expect((await store.alertRoutes.forAlert(alert.id))[0]).toMatchObject({
        route: "nobody",
        failedCount: 1,
        lastError: expect.stringMatching(/^SMTP 550: .*No such user here/),
      });

      // Its repeat and its recovery answer the first e-mail.
      await store.alerts.raise("error", "memory", { reason: "exited again" });
      await recover(store.alerts, "memory");
      expect(await routes.deliver()).toBe(2);
      const thread = `<taskfan-alert-${alert.id}.1@example.org>`;
      for (const mail of mails.slice(1)) {
        expect(mail.raw).toMatch(new RegExp(`^In-Reply-To: ${thread.replace(/[.]/g, "\\.")}\\r?$`, "m"));
        expect(mail.raw).toMatch(/^Subject: Re: \[taskfan\] /m);
      }
      expect(mails[1]!.raw).toMatch(
        new RegExp(`^Message-ID: <taskfan-alert-${alert.id}\\.2@example\\.org>`, "m"),
      );
      expect(mails[2]!.raw).toMatch(/^Subject: Re: \[taskfan\] recovered: memory\r?$/m);
    } finally {
      await new Promise<void>((resolve) => smtp.close(() => resolve()));
    }
  });
});

describe.each(engines)("alert routes: task events ($name)", (engine) => {
  it("a route naming task_done and task_deleted gets each once from the real change; other routes and the alert chat none", async () => {
    const events = await endpoint();
    const all = await endpoint();
    const h = await startHarness(
      {
        servers: onlyServers(["memory", "time-tracker"]),
        alerts: {
          routes: [
            {
              kind: "webhook",
              name: "task-feed",
              url: events.url,
              secret,
              kinds: ["task_done", "task_deleted"],
            },
            { kind: "webhook", name: "everything", url: all.url },
          ],
        },
      },
      undefined,
      { store: await engine.open() },
    );
    try {
      const { orchestrator, store } = h.core;
      const routes = alertRoutesOf(h.core, silentLog, translatorFor(createI18n(), "en"))!;
      await routes.deliver();
      const id = await orchestrator.createTask({ title: "Buy milk" });
      await orchestrator.waitForSettled(id, 30_000);
      await orchestrator.changeTask(id, { kind: "complete" }, { source: "chat" });
      // Done is a state: done again is no change, and no second event.
      await orchestrator.changeTask(id, { kind: "complete" }, { source: "chat" });
      await orchestrator.changeTask(id, { kind: "reopen" }, { source: "api" });
      await orchestrator.changeTask(id, { kind: "update", fields: { title: "Buy oat milk" } });
      await orchestrator.changeTask(id, { kind: "delete" }, { source: "cli" });
      expect(await routes.deliver()).toBe(2);
      expect(await routes.deliver()).toBe(0);

      const bodies = events.received.map((r) => {
        expect(
          verifyWebhook(
            r.body,
            {
              timestamp: r.headers[timestampHeader] as string,
              signature: r.headers[signatureHeader] as string,
            },
            secret,
          ),
        ).toBe(true);
        return JSON.parse(r.body) as Record<string, unknown>;
      });
      expect(bodies).toEqual([
        {
          schema: "taskfan.task/1",
          delivery: expect.any(String),
          event: "done",
          task: { id, title: "Buy milk", version: 2, source: "chat", at: expect.any(String) },
          text: `✅ task done: Buy milk (${id}), by chat`,
          taskfan: { instance: h.core.instance, version: expect.any(String) },
        },
        {
          schema: "taskfan.task/1",
          delivery: expect.any(String),
          event: "deleted",
          task: { id, title: "Buy oat milk", version: 5, source: "cli", at: expect.any(String) },
          text: `🗑 task deleted: Buy oat milk (${id}), by cli`,
          taskfan: { instance: h.core.instance, version: expect.any(String) },
        },
      ]);
      // No route asked for reopen: none was kept. The route without kinds takes problems only.
      expect((await store.alerts.recent(10)).map((a) => a.kind)).toEqual(["task_deleted", "task_done"]);
      expect(all.received).toEqual([]);
      // The alert chat has nothing to send.
      expect(await store.alerts.claimUndelivered("chat", 10, 60_000)).toEqual([]);
      await routes.stop();
    } finally {
      await h.stop();
    }
  }, 60_000);
});
