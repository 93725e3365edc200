import type { ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { FakeBotApi } from "../bot/fake-bot-api.js";
import { packageDir } from "../../src/package-dir.js";
import { spawnTracked, tempDir, terminate } from "../helpers.js";
import type { TestPostgres } from "../postgres.js";
import { overHttp, serve, type Served } from "../served.js";

/** A `taskfan start` process of a group, as its JSON log tells it. */
export interface Instance {
  id: string;
  child: ChildProcess;
  /** Every JSON log line, parsed. */
  log: Array<Record<string, unknown>>;
  /** The singletons it said it holds ("holding singleton"), and has not said it stopped. */
  holding: Set<string>;
  /** Its HTTP API's base URL, once it listens. */
  api: Promise<string>;
}

/**
 * Starts `taskfan start` as instance `id` with `env` (DATABASE_URL, config, Telegram...),
 * its own DATA_DIR under `dir`, logging JSON at info; `changed` runs on every log line.
 */
export function startInstance(
  id: string,
  dir: string,
  env: Record<string, string>,
  changed: () => void = () => undefined,
): Instance {
  const child = spawnTracked(process.execPath, [path.join(packageDir, "bin/taskfan.js"), "start"], {
    cwd: dir,
    env: {
      ...process.env,
      DATA_DIR: path.join(dir, id),
      LOG_DIR: path.join(dir, id, "logs"),
      INSTANCE_ID: id,
      HTTP_PORT: "0",
      LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const log: Instance["log"] = [];
  const holding = new Set<string>();
  let listening: (url: string) => void = () => undefined;
  const api = new Promise<string>((resolve) => (listening = resolve));
  createInterface({ input: child.stderr! }).on("line", (line) => {
    if (!line.startsWith("{")) return;
    const entry = JSON.parse(line) as Record<string, unknown>;
    log.push(entry);
    const singleton = typeof entry.singleton === "string" ? entry.singleton : undefined;
    if (entry.msg === "holding singleton" && singleton) holding.add(singleton);
    if (entry.msg === "singleton stopped" && singleton) holding.delete(singleton);
    if (entry.msg === "http server listening") listening(String(entry.url));
    changed();
  });
  return { id, child, log, holding, api };
}

/**
 * Waits for conditions on state that changes on events: `until(p)` resolves once `p()`
 * holds, looked at now and on every `changed()`.
 */
export function conditions(): { until: (predicate: () => boolean) => Promise<void>; changed: () => void } {
  const checks = new Set<() => void>();
  return {
    until: (predicate) =>
      new Promise<void>((resolve) => {
        const check = () => {
          if (!predicate()) return;
          checks.delete(check);
          resolve();
        };
        checks.add(check);
        check();
      }),
    changed: () => [...checks].forEach((c) => c()),
  };
}

/** A group of `taskfan start` processes on one fresh database, talking to one fake Bot API. */
export interface Group {
  url: string;
  api: FakeBotApi;
  dir: string;
  instances: Instance[];
  /** Resolves once `predicate` holds, looked at on every log line of every instance. */
  until: (predicate: () => boolean) => Promise<void>;
  /** Starts instance `id` with the group's environment and `env`. */
  start(id: string, env?: Record<string, string>): Instance;
  /** Stops every instance left, the fake Bot API, and removes the folder. */
  stop(): Promise<void>;
}

export const groupOwner = { id: 7, is_bot: false, first_name: "Owner", language_code: "en" };
export const groupAlertChat = "-100";

/**
 * A database of `server`, a FakeBotApi and a folder; what `config(dir)` gives (or
 * resolves with) is written as every instance's config file. Each instance is a Telegram bot for `groupOwner`, alerts to
 * `groupAlertChat`.
 */
export async function startGroup(server: TestPostgres, config: (dir: string) => unknown): Promise<Group> {
  const url = await server.createDatabase();
  const api = new FakeBotApi();
  await api.start();
  const { dir, remove } = tempDir();
  const configFile = path.join(dir, "taskfan.config.json");
  writeFileSync(configFile, JSON.stringify(await config(dir)));
  const { until, changed } = conditions();
  const instances: Instance[] = [];
  return {
    url,
    api,
    dir,
    instances,
    until,
    start(id, env = {}) {
      const instance = startInstance(
        id,
        dir,
        {
          TASKFAN_CONFIG: configFile,
          DATABASE_URL: url,
          BOT_TOKEN: "123456:GROUPtokenGROUPtokenGROUPtokenGROUP",
          TELEGRAM_API_ROOT: api.url,
          ALERT_CHAT_ID: groupAlertChat,
          ALLOWED_USER_IDS: String(groupOwner.id),
          ...env,
        },
        changed,
      );
      instances.push(instance);
      return instance;
    },
    async stop() {
      for (const { child } of instances) await terminate(child);
      await api.stop();
      remove();
    },
  };
}

/** The four singletons of a group whose instances run the Telegram bot by long polling. */
export const groupSingletons = ["alert-delivery", "health-monitor", "metrics-snapshot", "telegram-polling"];

/** A group whose servers are the ten served over HTTP by one `taskfan servers serve`. */
export interface ServedGroup extends Group {
  served: Served;
  /** The served servers' DATA_DIR (their records, read back by the tests). */
  dataDir: string;
}

/**
 * `startGroup` over the ten servers of a `taskfan servers serve` process of its own (on a
 * DATA_DIR no instance shares: the servers say where they write), with the API's rate limit
 * off and `config` added; `stop` stops the served servers too.
 */
export async function startServedGroup(
  server: TestPostgres,
  config: Record<string, unknown> = {},
): Promise<ServedGroup> {
  let served: Served | undefined;
  let dataDir = "";
  const group = await startGroup(server, async (dir) => {
    dataDir = path.join(dir, "served");
    served = await serve(dataDir);
    return {
      servers: overHttp(served.urls),
      security: { rate_limiting: { enabled: false } },
      ...config,
    };
  });
  return {
    ...group,
    served: served!,
    dataDir,
    async stop() {
      await group.stop();
      await terminate(served!.child);
    },
  };
}
