import { verifyWebhook } from "../../src/alerts/webhook.js";
import { execFileSync, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { freePort, repoRoot, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";
import { FakeBotApi, type Sent } from "./fake-bot-api.js";

const bin = path.join(repoRoot, "bin", "taskfan.js");
const token = "123456:TESTtokenTESTtokenTESTtokenTESTtok";
const owner = { id: 7, is_bot: false, first_name: "Owner", language_code: "en" };
const stranger = { id: 999, is_bot: false, first_name: "Stranger" };
const alertChat = -100;

let api: FakeBotApi;
let child: ChildProcess;
/** Its HTTP API, once it says it listens. */
let apiUrl: string | undefined;
let dir: string;
let remove: () => void;
let message = 1;
// A webhook route of the config: its URL and signing secret come from the environment.
let hook: Server;
const posts: Array<{
  path: string;
  signature: string | undefined;
  timestamp: string | undefined;
  body: string;
}> = [];
const hookSecret = "whsec-e2e-0123456789abcdef";
const hookPath = "/hooks/e2e-path-secret";
// An e-mail route to a real SMTP server.
let smtp: SMTPServer;
let smtpPort = 0;
const mails: string[] = [];

const text = (from: typeof owner | typeof stranger, body: string) => {
  const command = /^\/\w+/.exec(body)?.[0];
  return {
    message: {
      message_id: message++,
      date: Math.floor(Date.now() / 1000),
      chat: { id: from.id, type: "private" as const, first_name: from.first_name },
      from,
      text: body,
      ...(command ? { entities: [{ type: "bot_command" as const, offset: 0, length: command.length }] } : {}),
    },
  };
};
const press = (data: string) => ({
  callback_query: {
    id: String(message++),
    from: owner,
    chat_instance: "e2e",
    data,
    message: {
      message_id: 1,
      date: 0,
      chat: { id: owner.id, type: "private" as const, first_name: "Owner" },
      text: "",
    },
  },
});
const to = (chat: number) => (c: Sent) =>
  c.accepted &&
  (c.method === "sendMessage" || c.method === "editMessageText") &&
  String(c.payload.chat_id) === String(chat);
const textOf = (c: Sent) => String(c.payload.text);

beforeAll(async () => {
  ({ dir, remove } = tempDir());
  api = new FakeBotApi();
  await api.start();
  hook = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString("utf8")));
    req.on("end", () => {
      posts.push({
        path: req.url ?? "",
        signature: req.headers["x-taskfan-signature"] as string | undefined,
        timestamp: req.headers["x-taskfan-timestamp"] as string | undefined,
        body,
      });
      if (req.url === "/gone") res.writeHead(410).end("gone for good");
      else res.writeHead(204).end();
    });
  });
  hook.listen(0, "127.0.0.1");
  await once(hook, "listening");
  smtp = new SMTPServer({
    authOptional: true,
    disabledCommands: ["STARTTLS"],
    logger: false,
    onData(stream, _session, callback) {
      let raw = "";
      stream.on("data", (c: Buffer) => (raw += c.toString("utf8")));
      stream.on("end", () => {
        mails.push(raw);
        callback();
      });
    },
  });
  smtpPort = await freePort();
  await new Promise<void>((resolve) => smtp.listen(smtpPort, "127.0.0.1", resolve));
  const configFile = path.join(dir, "taskfan.config.json");
  writeFileSync(
    configFile,
    JSON.stringify({
      alerts: {
        routes: [
          { kind: "webhook", name: "ops", url: "${OPS_HOOK_URL}", secret: "${OPS_HOOK_SECRET}" },
          { kind: "slack", name: "team", url: "${TEAM_SLACK_URL}", kinds: ["recovered"] },
          { kind: "webhook", name: "gone", url: "${GONE_HOOK_URL}", servers: ["memory"] },
          { kind: "telegram", name: "second-chat", chat_id: -200, thread_id: 5, servers: ["memory"] },
          {
            kind: "email",
            name: "oncall",
            url: "${ONCALL_SMTP_URL}",
            from: "taskfan <alerts@example.org>",
            to: ["ops@example.org"],
            servers: ["memory"],
          },
        ],
      },
    }),
  );
  child = spawnTracked(process.execPath, [bin, "start"], {
    cwd: dir,
    env: {
      ...process.env,
      DATA_DIR: path.join(dir, "data"),
      HTTP_PORT: "0", // any free port: test processes run side by side
      LOG_LEVEL: "debug",
      BOT_TOKEN: token,
      TELEGRAM_API_ROOT: api.url,
      ALERT_CHAT_ID: String(alertChat),
      ALERT_THREAD_ID: "77", // a topic of a forum group
      TASKFAN_CONFIG: configFile,
      OPS_HOOK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}${hookPath}`,
      OPS_HOOK_SECRET: hookSecret,
      ONCALL_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
      TEAM_SLACK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/slack/T0/B0/e2e`,
      GONE_HOOK_URL: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/gone`,
      ALLOWED_USER_IDS: String(owner.id),
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => {
    stderr += d.toString("utf8");
    apiUrl ??=
      /"msg":"http server listening"[^\n]*"url":"([^"]+)"|"url":"([^"]+)"[^\n]*"msg":"http server listening"/
        .exec(stderr)
        ?.slice(1)
        .find(Boolean);
  });
  child.once("exit", (code) => {
    if (code !== 0 && code !== null) process.stderr.write(`taskfan exited with ${code}:\n${stderr}\n`);
  });
  await api.until((calls) => calls.some((c) => c.method === "setMyCommands"));
});

afterAll(async () => {
  await terminate(child);
  await api.stop();
  await new Promise((resolve) => hook.close(resolve));
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  remove();
  stopSpawned(); // only what a failed or timed-out test left running
});

describe("the bot as a process, against an HTTP fake of the Bot API", () => {
  it("registers the command menu", () => {
    const commands = api.calls.find((c) => c.method === "setMyCommands")!.payload.commands as Array<{
      command: string;
    }>;
    expect(commands.map((c) => c.command)).toEqual([
      "newtask",
      "tasks",
      "task",
      "done",
      "reopen",
      "edit",
      "delete",
      "health",
      "stats",
      "mute",
      "unmute",
      "timezone",
      "reminders",
      "cancel",
      "help",
    ]);
  });

  it("creates a task with the quick form and edits the progress message until all ten are done", async () => {
    api.push(text(owner, "/newtask Ship it | the release | p1 | #release"));
    await api.until((calls) =>
      calls.filter(to(owner.id)).some((c) => textOf(c).includes("• Title: Ship it")),
    );
    api.push(press("nt:create"));
    await api.until((calls) =>
      calls.filter(to(owner.id)).some((c) => textOf(c).includes("Done: every server has it.")),
    );
    const final = api.calls
      .filter(to(owner.id))
      .map(textOf)
      .find((t) => t.includes("Done: every server has it."))!;
    expect(final.match(/^✅ /gm)).toHaveLength(10);
  });

  it("answers /health with the ten servers", async () => {
    api.push(text(owner, "/health"));
    await api.until((calls) =>
      calls.filter(to(owner.id)).some((c) => textOf(c).startsWith("Servers: 10 of 10 online")),
    );
  });

  it("refuses a stranger once and does nothing else for them", async () => {
    api.push(text(stranger, "/newtask Let me in"));
    api.push(text(stranger, "/health"));
    api.push(text(owner, "/help"));
    await api.until((calls) =>
      calls.filter(to(owner.id)).some((c) => textOf(c).includes("/newtask — create a task")),
    );
    const toStranger = api.calls.filter((c) => c.payload.chat_id === stranger.id);
    expect(toStranger).toHaveLength(1);
    expect(textOf(toStranger[0]!)).toContain("Your user id is 999");
  });

  it("alerts the alert chat's topic when a server dies (once, through a 429, ringing) and quietly when it is back", async () => {
    api.script("sendMessage", (p) => String(p.chat_id) === String(alertChat), 429, {
      ok: false,
      error_code: 429,
      description: "Too Many Requests: retry after 1",
      parameters: { retry_after: 1 },
    });
    const memory = execFileSync("pgrep", ["-P", String(child.pid), "-f", "server-memory"], {
      encoding: "utf8",
    })
      .trim()
      .split("\n")[0]!;
    process.kill(Number(memory), "SIGKILL");
    await api.until(
      (calls) => calls.filter(to(alertChat)).some((c) => textOf(c).startsWith("✅ recovered: memory")),
      40_000,
    );
    const alerts = api.calls.filter(to(alertChat)).map(textOf);
    const down = alerts.filter((t) => /^🔴 (ERROR|circuit open): memory/.test(t));
    expect(down.length).toBeGreaterThanOrEqual(1);
    expect(new Set(down).size).toBe(down.length); // nothing sent twice
    expect(
      api.calls.filter(
        (c) => c.method === "sendMessage" && String(c.payload.chat_id) === String(alertChat) && !c.accepted,
      ),
    ).toHaveLength(1);
    const withButtons = api.calls.find((c) => to(alertChat)(c) && /^🔴/.test(textOf(c)))!;
    const keyboard = (withButtons.payload.reply_markup as { inline_keyboard: unknown[] }).inline_keyboard;
    expect(keyboard[0]).toMatchObject([
      { text: "Show health" },
      { text: "Mute 1 h", callback_data: "mute:memory:3600" },
    ]);
    // Every message goes to the topic; the problem rings, the recovery does not.
    const sends = api.calls.filter((c) => to(alertChat)(c) && c.method === "sendMessage");
    expect(sends.map((c) => c.payload.message_thread_id)).toEqual(sends.map(() => 77));
    expect(withButtons.payload.disable_notification).toBeUndefined();
    const recovered = sends.find((c) => textOf(c).startsWith("✅ recovered: memory"))!;
    expect(recovered.payload.disable_notification).toBe(true);
    // The webhook route got the problem and the recovery too, once each, signed.
    type Posted = { delivery: string; alert: { kind: string; server: string } };
    const posted = () =>
      posts
        .filter((p) => p.path === hookPath)
        .map((p) => JSON.parse(p.body) as Posted)
        .filter((b) => b.alert.server === "memory");
    await vi.waitFor(() => expect(posted().some((b) => b.alert.kind === "recovered")).toBe(true), {
      timeout: 30_000,
      interval: 200,
    });
    for (const p of posts.filter((p) => p.path === hookPath)) {
      expect(verifyWebhook(p.body, p, hookSecret)).toBe(true);
    }
    expect(posted().filter((b) => /^(error|breaker_open)$/.test(b.alert.kind)).length).toBeGreaterThanOrEqual(
      1,
    );
    expect(posted().filter((b) => b.alert.kind === "recovered")).toHaveLength(1);
    expect(new Set(posted().map((b) => b.delivery)).size).toBe(posted().length);
    // The Slack route takes recoveries only: Block Kit, once.
    const slack = () =>
      posts.filter((p) => p.path.startsWith("/slack/")).map((p) => JSON.parse(p.body) as { text: string });
    await vi.waitFor(() => expect(slack().length).toBeGreaterThanOrEqual(1), {
      timeout: 30_000,
      interval: 200,
    });
    expect(slack().filter((m) => m.text.startsWith("✅ recovered: memory"))).toHaveLength(1);
    expect(slack().every((m) => m.text.startsWith("✅ recovered:"))).toBe(true);
    // And to a second Telegram chat's topic, a message per change, the recovery quiet.
    const second = () => api.calls.filter((c) => c.accepted && String(c.payload.chat_id) === "-200");
    await api.until(() => second().some((c) => textOf(c).startsWith("✅ recovered: memory")), 30_000);
    expect(second().every((c) => c.method === "sendMessage" && c.payload.message_thread_id === 5)).toBe(true);
    expect(
      second().filter((c) => /^🔴 (ERROR|circuit open): memory/.test(textOf(c))).length,
    ).toBeGreaterThanOrEqual(1);
    const quietly = second().find((c) => textOf(c).startsWith("✅ recovered: memory"))!;
    expect(quietly.payload.disable_notification).toBe(true);
    // And by e-mail: the recovery, once, answers the thread a problem started.
    const recoveries = () => mails.filter((m) => /recovered: memory is back/.test(m));
    await vi.waitFor(() => expect(recoveries().length).toBeGreaterThanOrEqual(1), {
      timeout: 30_000,
      interval: 200,
    });
    expect(recoveries()).toHaveLength(1);
    const starts = mails.map((m) => /^Message-ID: (<taskfan-alert-\d+\.1@example\.org>)/m.exec(m)?.[1]);
    const answered = /^In-Reply-To: (<\S+>)/m.exec(recoveries()[0]!)?.[1];
    expect(answered).toBeDefined();
    expect(starts).toContain(answered);
  });

  it("says where each alert route stands: /health, /api/health and the status page name a refusal and its reason", async () => {
    await vi.waitFor(
      async () => {
        expect(apiUrl).toBeDefined();
        const health = (await (await fetch(`${apiUrl}/api/health`)).json()) as {
          routes: Array<{
            route: string;
            kind: string;
            refused: number;
            retrying: number;
            lastError: string | null;
          }>;
        };
        expect(health.routes.map((r) => r.route)).toEqual(["gone", "oncall", "ops", "second-chat", "team"]);
        expect(health.routes.find((r) => r.route === "gone")).toMatchObject({
          kind: "webhook",
          retrying: 0,
          lastError: "HTTP 410: gone for good",
        });
        expect(health.routes.find((r) => r.route === "gone")!.refused).toBeGreaterThanOrEqual(1);
        expect(health.routes.find((r) => r.route === "ops")).toMatchObject({
          refused: 0,
          retrying: 0,
          lastError: null,
        });
      },
      { timeout: 30_000, interval: 200 },
    );
    const asked = api.calls.length;
    const routesReply = (calls: Sent[]) =>
      calls.slice(asked).find((c) => to(owner.id)(c) && textOf(c).includes("Alert routes:"));
    api.push(text(owner, "/health"));
    await api.until((calls) => routesReply(calls) !== undefined);
    const reply = textOf(routesReply(api.calls)!);
    expect(reply).toMatch(/^• gone \(webhook\): \d+ refused · last error: HTTP 410: gone for good$/m);
    expect(reply).toContain("• ops (webhook): takes every alert");
    const page = await (await fetch(`${apiUrl}/`)).text();
    expect(page).toContain('<table id="routes">');
    expect(page).toContain("HTTP 410: gone for good");
  });

  it("stops cleanly on SIGTERM", async () => {
    expect(await terminate(child)).toBe(0);
  });

  it("kept a debug log of all of it, with the bot token nowhere in it", () => {
    const logs = path.join(dir, "logs");
    const files = readdirSync(logs).filter((f) => /^orchestrator\.\d+\.log$/.test(f));
    const text = files.map((f) => readFileSync(path.join(logs, f), "utf8")).join("");
    expect(text.split("\n").length).toBeGreaterThan(50);
    expect(text).toContain('"msg":"update handled"');
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.split(":")[1]);
    expect(text).not.toContain(hookSecret);
    expect(text).not.toContain(hookPath);
  });
});
