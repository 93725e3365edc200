import { writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig, parseConfigText, printableConfig, secretsOf } from "../../src/config/load.js";
import { ConfigError } from "../../src/errors.js";
import { tempDir } from "../helpers.js";

function issuesOf(text: string): string[] {
  try {
    parseConfigText(text, "taskfan.config.json");
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).issues, (error as ConfigError).message];
  }
  throw new Error("expected a ConfigError");
}

describe("config file validation", () => {
  it("declares every default in the schema: an empty file parses to them, the loader adds only the environment", () => {
    const file = parseConfigText("{}");
    expect(file).toMatchObject({
      data_dir: "data",
      logs_dir: "logs",
      http: { host: "127.0.0.1", port: 8787, enabled: true },
      notifications: { telegram: { webhook_host: "127.0.0.1", webhook_port: 8080 } },
      security: { allowed_user_ids: [] },
    });
    // A role's own keys override the embedded default's; the cap is the schema's.
    expect(parseConfigText('{"servers": {"git": {}}}').servers.git).toEqual({ max_response_size: "8m" });
  });

  it.each([
    ['{"servers": {"git": {"timeout": "fast"}}}', "servers.git.timeout"],
    ['{"servers": {"git": {"timout": 5}}}', 'servers.git: unknown key "timout"'],
    ['{"servers": {"gitlab": {"enabled": true}}}', 'servers: unknown key "gitlab"'],
    ['{"servers": {"memory": {"priority": 9}}}', "servers.memory.priority"],
    ['{"servers": {"memory": {"retry_attempts": -1}}}', "servers.memory.retry_attempts"],
    ['{"servers": {"memory": {"args": "a b"}}}', "servers.memory.args"],
    ['{"circuit_breaker_threshold": 0}', "circuit_breaker_threshold"],
    ['{"notifications": {"telegram": {"chat": 1}}}', 'notifications.telegram: unknown key "chat"'],
    [
      '{"security": {"rate_limiting": {"requests_per_minute": "many"}}}',
      "security.rate_limiting.requests_per_minute",
    ],
    ['{"sync_interval": null}', "sync_interval"],
    // Timers that would fire every millisecond.
    ['{"health_check_interval": 0.0001}', "health_check_interval: at least 1 s"],
    ['{"sync_interval": 0.0001}', "sync_interval: at least 5 s"],
    ['{"dispatcher": {"poll_interval": 1e-5}}', "dispatcher.poll_interval: at least 0.05 s"],
    ['{"security": {"alert_chat_access": "all"}}', "security.alert_chat_access"],
    ['{"timezone": "Mars/Base"}', 'timezone: unknown time zone "Mars/Base"'],
    ['{"notifications": {"telegram": {"thread_id": "ops"}}}', "notifications.telegram.thread_id"],
    ['{"notifications": {"telegram": {"quiet_kinds": ["loud"]}}}', "notifications.telegram.quiet_kinds.0"],
    ['{"notifications": {"telegram": {"group_window": -1}}}', "notifications.telegram.group_window"],
    ['{"alerts": {"routes": [{"kind": "pager", "url": "x"}]}}', "alerts.routes.0.kind"],
    ['{"alerts": {"routes": [{"kind": "webhook"}]}}', "alerts.routes.0.url"],
    [
      '{"alerts": {"routes": [{"kind": "webhook", "url": "x", "kinds": ["loud"]}]}}',
      "alerts.routes.0.kinds.0",
    ],
    [
      '{"alerts": {"routes": [{"kind": "webhook", "url": "x", "servers": ["gitlab"]}]}}',
      "alerts.routes.0.servers.0",
    ],
    ["[1, 2]", "(top level)"],
  ])("%s names %s", (text, key) => {
    const issues = issuesOf(text);
    expect(issues.some((i) => i.includes(key))).toBe(true);
  });

  it("reports broken JSON with the file name", () => {
    const [message] = issuesOf('{"servers": ');
    expect(message).toMatch(/taskfan\.config\.json is not valid JSON/);
  });

  it("accepts the keys an operator of the original system knows", () => {
    const parsed = parseConfigText(
      JSON.stringify({
        sync_interval: 300,
        health_check_interval: 60,
        circuit_breaker_threshold: 5,
        monitoring_enabled: true,
        notifications: { telegram: { enabled: false, bot_token: "", chat_id: "" } },
        security: { rate_limiting: { enabled: true, requests_per_minute: 100 } },
        servers: { deltatask: { enabled: true, priority: 1, timeout: 30, retry_attempts: 3 } },
      }),
    );
    expect(parsed.servers?.deltatask?.priority).toBe(1);
  });
});

describe("loadConfig", () => {
  const dirs: Array<() => void> = [];
  afterEach(() => dirs.splice(0).forEach((remove) => remove()));

  it("without a file runs the embedded default: ten servers, data under DATA_DIR, absolute", () => {
    const { dir, remove } = tempDir();
    dirs.push(remove);
    const { config, source } = loadConfig({ cwd: dir, env: {} });
    expect(source).toBeUndefined();
    expect(config.data_dir).toBe(path.join(dir, "data"));
    const servers = Object.values(config.servers);
    expect(servers).toHaveLength(10);
    for (const s of servers) {
      expect(s.enabled).toBe(true);
      expect(path.isAbsolute(s.command)).toBe(true);
      for (const value of [...Object.values(s.env), ...(s.cwd ? [s.cwd] : [])]) {
        if (value.startsWith("/")) expect(value.includes("node_modules")).toBe(false);
      }
    }
    // Required defaults to the priority-1 servers.
    expect(servers.filter((s) => s.required).map((s) => s.name)).toEqual([
      "deltatask",
      "shrimp-task-manager",
    ]);
  });

  it("merges a file over the default and substitutes ${DATA_DIR}", () => {
    const { dir, remove } = tempDir();
    dirs.push(remove);
    const file = path.join(dir, "custom.json");
    writeFileSync(
      file,
      JSON.stringify({
        data_dir: "state",
        servers: {
          backup: { enabled: false },
          memory: { command: "/usr/bin/node", args: ["${DATA_DIR}/mem.js"], timeout: 3 },
        },
      }),
    );
    const { config, source } = loadConfig({ configPath: file, cwd: dir, env: {} });
    expect(source).toBe(file);
    expect(config.data_dir).toBe(path.join(dir, "state"));
    expect(config.servers.backup.enabled).toBe(false);
    expect(config.servers.memory.args).toEqual([path.join(dir, "state", "mem.js")]);
    expect(config.servers.memory.env).toEqual({});
    expect(config.servers.memory.timeout).toBe(3);
    expect(config.servers.git.priority).toBe(4);
  });

  it("sizes the global limit to what the enabled servers take at once, unless given", () => {
    const { dir, remove } = tempDir();
    dirs.push(remove);
    // Eight serial servers and two taking four calls, two claims per slot.
    expect(loadConfig({ cwd: dir, env: {} }).config.dispatcher.concurrency).toBe(32);
    const file = path.join(dir, "small.json");
    const only = (enabled: string[]) =>
      Object.fromEntries(
        ["deltatask", "shrimp-task-manager", "hpkv-memory", "memory", "calendar", "notifications"]
          .concat(["time-tracker", "git", "filesystem", "backup"])
          .map((n) => [n, { enabled: enabled.includes(n) }]),
      );
    writeFileSync(
      file,
      JSON.stringify({ dispatcher: { prefetch: 3 }, servers: only(["git", "filesystem"]) }),
    );
    expect(loadConfig({ configPath: file, cwd: dir, env: {} }).config.dispatcher.concurrency).toBe(15);
    writeFileSync(file, JSON.stringify({ dispatcher: { concurrency: 4 } }));
    expect(loadConfig({ configPath: file, cwd: dir, env: {} }).config.dispatcher.concurrency).toBe(4);
  });

  it("accepts the example file shipped in examples/", () => {
    const file = path.resolve(
      path.dirname(new URL(import.meta.url).pathname),
      "../../examples/taskfan.config.json",
    );
    const { config } = loadConfig({ configPath: file, env: {} });
    expect(config.servers.backup.enabled).toBe(false);
    expect(config.servers.calendar.args[0]).toMatch(/caldav-mcp/);
    expect(config.servers.calendar.settings.calendar_url).toBe("/taskfan/tasks/");
  });

  it("fails on an explicit path that does not exist", () => {
    expect(() => loadConfig({ configPath: "/nonexistent/taskfan.json", env: {} })).toThrow(/not found/);
  });

  it("takes the default time zone from the file, else TZ, else the machine's", () => {
    const { dir, remove } = tempDir();
    dirs.push(remove);
    expect(loadConfig({ cwd: dir, env: { TZ: "Asia/Tokyo" } }).config.timezone).toBe("Asia/Tokyo");
    const file = path.join(dir, "tz.json");
    writeFileSync(file, JSON.stringify({ timezone: "europe/moscow" }));
    expect(loadConfig({ configPath: file, cwd: dir, env: { TZ: "Asia/Tokyo" } }).config.timezone).toBe(
      "Europe/Moscow",
    );
    expect(loadConfig({ cwd: dir, env: {} }).config.timezone).toBe(
      Intl.DateTimeFormat().resolvedOptions().timeZone,
    );
  });

  it("posts alerts into the topic ALERT_THREAD_ID (else the file's), quiet kinds from the file", () => {
    const { dir, remove } = tempDir();
    dirs.push(remove);
    const file = path.join(dir, "topic.json");
    writeFileSync(file, JSON.stringify({ notifications: { telegram: { thread_id: 7, quiet_kinds: [] } } }));
    expect(loadConfig({ configPath: file, cwd: dir, env: {} }).config.notifications.telegram).toMatchObject({
      thread_id: 7,
      quiet_kinds: [],
    });
    expect(
      loadConfig({ configPath: file, cwd: dir, env: { ALERT_THREAD_ID: "12" } }).config.notifications.telegram
        .thread_id,
    ).toBe(12);
    expect(loadConfig({ cwd: dir, env: {} }).config.notifications.telegram).toMatchObject({
      thread_id: undefined,
      quiet_kinds: ["recovered", "degraded", "rolled_back"],
      group_window: 30,
    });
    expect(() => loadConfig({ cwd: dir, env: { ALERT_THREAD_ID: "general" } })).toThrow(
      /^ALERT_THREAD_ID: expected a forum topic's id/,
    );
  });

  it("refuses to listen off loopback without the API key required, naming the key", () => {
    const { dir, remove } = tempDir();
    dirs.push(remove);
    const file = path.join(dir, "open.json");
    writeFileSync(file, JSON.stringify({ http: { host: "0.0.0.0" }, security: { api_key_required: false } }));
    expect(() => loadConfig({ configPath: file, cwd: dir, env: { API_KEY: "k".repeat(20) } })).toThrow(
      /^security\.api_key_required: must be true when http\.host is 0\.0\.0\.0/,
    );
    writeFileSync(file, JSON.stringify({ http: { host: "0.0.0.0" } }));
    const { config } = loadConfig({ configPath: file, cwd: dir, env: { API_KEY: "k".repeat(20) } });
    expect(config.security.api_key_required).toBe(true);
  });

  it("reads ${NAME} in a server's launch line from the environment (unset: empty), so secrets stay in .env", () => {
    const { dir, remove } = tempDir();
    dirs.push(remove);
    const file = path.join(dir, "env.json");
    writeFileSync(
      file,
      JSON.stringify({
        servers: { notifications: { env: { NTFY_AUTH_TOKEN: "${NTFY_AUTH_TOKEN}", X: "${UNSET_X}" } } },
      }),
    );
    const { config } = loadConfig({ configPath: file, cwd: dir, env: { NTFY_AUTH_TOKEN: "tk_123456789" } });
    expect(config.servers.notifications.env).toEqual({ NTFY_AUTH_TOKEN: "tk_123456789", X: "" });
  });

  it("takes secrets from the environment and masks them when printed", () => {
    const { dir, remove } = tempDir();
    dirs.push(remove);
    const token = "123456789:AAAbbbCCCdddEEEfffGGGhhhIIIjjjKKKlll";
    const { config } = loadConfig({ cwd: dir, env: { BOT_TOKEN: token, ALERT_CHAT_ID: "-100" } });
    expect(config.notifications.telegram.bot_token).toBe(token);
    expect(config.notifications.telegram.chat_id).toBe("-100");
    const printed = JSON.stringify(printableConfig(config, {}));
    expect(printed).not.toContain(token);
    expect(printed).toContain("********");
  });

  it("reads a route's URL and secret from the environment, names each route, and never prints them", () => {
    const { dir, remove } = tempDir();
    dirs.push(remove);
    const file = path.join(dir, "routes.json");
    const routes = [
      { kind: "webhook", url: "${HOOK_URL}", secret: "${HOOK_SECRET}", kinds: ["error"] },
      { kind: "webhook", name: "audit", url: "https://audit.example/in" },
      { kind: "slack", url: "${SLACK_URL}" },
    ];
    writeFileSync(file, JSON.stringify({ alerts: { routes } }));
    const env = {
      HOOK_URL: "https://hooks.example/T0/B1/sekretsekret",
      HOOK_SECRET: "whsec-abcdefgh12345678",
      SLACK_URL: "https://hooks.slack.example/services/T1/B2/slacksecret",
    };
    const { config } = loadConfig({ configPath: file, cwd: dir, env });
    expect(config.alerts.routes).toMatchObject([
      {
        name: "webhook-1",
        url: env.HOOK_URL,
        secret: env.HOOK_SECRET,
        kinds: ["error"],
        timeout: 10,
        enabled: true,
      },
      { name: "audit", url: "https://audit.example/in" },
      { name: "slack-3", kind: "slack", url: env.SLACK_URL, timeout: 10 },
    ]);
    const printed = JSON.stringify(printableConfig(config, env));
    expect(printed).not.toContain("sekretsekret");
    expect(printed).not.toContain(env.HOOK_SECRET);
    expect(printed).not.toContain("audit.example");
    expect(printed).not.toContain("slacksecret");
    expect(secretsOf(config)).toEqual(expect.arrayContaining([env.HOOK_URL, env.HOOK_SECRET, env.SLACK_URL]));
    // Unset, or twice the same name: the key is named.
    expect(() => loadConfig({ configPath: file, cwd: dir, env: {} })).toThrow(
      /^alerts\.routes\.0\.url: expected an http:\/\/ or https:\/\/ URL, got nothing/,
    );
    const mail = { kind: "email", url: "https://mail.example", from: "a@b.c", to: ["d@e.f"] };
    writeFileSync(file, JSON.stringify({ alerts: { routes: [mail] } }));
    expect(() => loadConfig({ configPath: file, cwd: dir, env })).toThrow(
      /^alerts\.routes\.0\.url: expected an smtp:\/\/ or smtps:\/\/ URL, got https:\/\/mail\.example/,
    );
    writeFileSync(file, JSON.stringify({ alerts: { routes: [routes[1], routes[1]] } }));
    expect(() => loadConfig({ configPath: file, cwd: dir, env })).toThrow(
      /^alerts\.routes\.1\.name: "audit" is used twice/,
    );
  });
});
