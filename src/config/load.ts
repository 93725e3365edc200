import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { z } from "zod";
import { ConfigError, maskUrlCredentials } from "../errors.js";
import { caldavSettingsSchema } from "../integrations/calendar.js";
import { canonicalZone, machineZone } from "../time-zone.js";
import { caldavLaunch, defaultServers } from "./default.js";
import {
  configFileSchema,
  serverFileSchema,
  serverNames,
  type AlertRouteConfig,
  type Config,
  type ConfigFile,
  type ParsedConfigFile,
  type ServerConfig,
  type ServerName,
} from "./schema.js";

export interface LoadOptions {
  /** Explicit path (from --config); an explicit path that does not exist is an error. */
  configPath?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface LoadedConfig {
  config: Config;
  /** The file it came from, or undefined for the embedded default. */
  source: string | undefined;
}

const defaultFileName = "taskfan.config.json";

/** Reads, validates and completes the configuration. Throws ConfigError naming each key. */
export function loadConfig(options: LoadOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicit = options.configPath ?? env.TASKFAN_CONFIG;
  const file = explicit ? path.resolve(cwd, explicit) : path.resolve(cwd, defaultFileName);
  let parsed: ConfigFile = {};
  let source: string | undefined;
  if (existsSync(file)) {
    parsed = parseConfigText(readFileSync(file, "utf8"), file);
    source = file;
  } else if (explicit) {
    throw new ConfigError(`config file not found: ${file}`);
  }
  return { config: completeConfig(parsed, env, cwd), source };
}

/** Parses and validates the text of a config file. */
export function parseConfigText(text: string, file = "config"): ParsedConfigFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON: ${(error as Error).message}`, [], {
      cause: error,
    });
  }
  return parseConfigFile(raw, file);
}

/** Checks a config file's content and fills in its defaults; a ConfigError names each key. */
function parseConfigFile(raw: unknown, file: string): ParsedConfigFile {
  const result = configFileSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.map(formatIssue);
    throw new ConfigError(`${file} is invalid:\n  ${issues.join("\n  ")}`, issues);
  }
  return result.data;
}

function formatIssue(issue: z.core.$ZodIssue): string {
  const key = issue.path.length > 0 ? issue.path.map(String).join(".") : "(top level)";
  switch (issue.code) {
    case "unrecognized_keys":
      return `${key}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys
        .map((k) => `"${k}"`)
        .join(", ")}`;
    case "invalid_key":
      return `${key}: unknown server name; expected one of ${serverNames.join(", ")}`;
    default:
      return `${key}: ${issue.message}`;
  }
}

/**
 * `${NAME}`: DATA_DIR, or a variable of the environment (so secrets stay in `.env`); an
 * unset one is empty, as in a shell, so a missing token is never sent as its own name.
 */
function substitute(value: string, vars: Record<string, string | undefined>): string {
  return value.replace(/\$\{([A-Z][A-Z0-9_]*)\}/g, (_whole, name: string) => vars[name] ?? "");
}

function substituteDeep(value: unknown, vars: Record<string, string | undefined>): unknown {
  if (typeof value === "string") return substitute(value, vars);
  if (Array.isArray(value)) return value.map((v) => substituteDeep(v, vars));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteDeep(v, vars)]));
  }
  return value;
}

/**
 * Merges a config file over the defaults its schema declares, the embedded servers and the
 * environment (which wins where it sets a value).
 */
export function completeConfig(input: ConfigFile, env: NodeJS.ProcessEnv, cwd: string): Config {
  const file = parseConfigFile(input, "config");
  const dataDir = path.resolve(cwd, env.DATA_DIR ?? file.data_dir);
  const servers = completeServers(file, { ...env, DATA_DIR: dataDir }, dataDir);
  const httpHost = env.HTTP_HOST ?? file.http.host;
  const loopback = isLoopback(httpHost);
  if (file.http.enabled && !loopback && !env.API_KEY) {
    throw new ConfigError(
      `http.host: listening on ${httpHost} (not loopback) requires an API_KEY in the environment`,
    );
  }
  if (file.http.enabled && !loopback && file.security.api_key_required === false) {
    throw new ConfigError(
      `security.api_key_required: must be true when http.host is ${httpHost} (not loopback); anyone who can reach the port could read and create tasks`,
    );
  }
  if (file.security.api_key_required && !env.API_KEY) {
    throw new ConfigError("security.api_key_required: set API_KEY in the environment");
  }
  const store = completeStore(file.store, env);
  const { telegram } = file.notifications;
  const botToken = env.BOT_TOKEN ?? telegram.bot_token;
  const chatId = env.ALERT_CHAT_ID ?? telegram.chat_id;
  // By default the global limit is what the enabled servers take at once (with prefetch),
  // so it never starves a low-priority server the servers themselves would serve.
  const fleetCapacity = Object.values(servers)
    .filter((s) => s.enabled)
    .reduce((sum, s) => sum + s.concurrency * file.dispatcher.prefetch, 0);
  return {
    ...file,
    data_dir: dataDir,
    alerts: { routes: completeRoutes(file.alerts.routes, env) },
    store,
    timezone: defaultZone(file.timezone, env.TZ),
    logs_dir: path.resolve(cwd, env.LOG_DIR ?? file.logs_dir),
    dispatcher: {
      ...file.dispatcher,
      concurrency: file.dispatcher.concurrency ?? Math.max(1, fleetCapacity),
    },
    http: {
      ...file.http,
      host: httpHost,
      port: env.HTTP_PORT ? parsePort(env.HTTP_PORT, "HTTP_PORT") : file.http.port,
    },
    notifications: {
      telegram: {
        enabled: telegram.enabled ?? Boolean(botToken),
        bot_token: botToken || undefined,
        chat_id: chatId === undefined || chatId === "" ? undefined : String(chatId),
        api_root: env.TELEGRAM_API_ROOT || telegram.api_root || undefined,
        language: env.ALERT_LANGUAGE || telegram.language || undefined,
        webhook_url: env.WEBHOOK_URL || telegram.webhook_url || undefined,
        webhook_host: env.WEBHOOK_HOST || telegram.webhook_host,
        webhook_port: env.WEBHOOK_PORT ? parsePort(env.WEBHOOK_PORT) : telegram.webhook_port,
        webhook_secret: env.WEBHOOK_SECRET || undefined,
        thread_id: env.ALERT_THREAD_ID ? parseThreadId(env.ALERT_THREAD_ID) : telegram.thread_id,
        quiet_kinds: telegram.quiet_kinds,
        group_window: telegram.group_window,
      },
    },
    security: {
      ...file.security,
      allowed_user_ids: env.ALLOWED_USER_IDS
        ? parseUserIds(env.ALLOWED_USER_IDS)
        : file.security.allowed_user_ids,
      api_key_required: file.security.api_key_required ?? !loopback,
      api_key: env.API_KEY || undefined,
    },
    servers,
  };
}

/** The store: PostgreSQL when a URL is given (DATABASE_URL or `store.url`), else SQLite. */
function completeStore(given: ParsedConfigFile["store"], env: NodeJS.ProcessEnv): ParsedConfigFile["store"] {
  const url =
    env.DATABASE_URL || (given.url ? (substituteDeep(given.url, env) as string) : undefined) || undefined;
  const kind = given.kind ?? (url ? "postgres" : "sqlite");
  if (kind === "postgres") {
    if (!url) throw new ConfigError("store.url: a PostgreSQL store needs a URL (store.url or DATABASE_URL)");
    if (!/^postgres(ql)?:\/\//.test(url)) {
      throw new ConfigError(
        `store.url: expected postgres://user:password@host:port/database, got ${maskUrlCredentials(url)}`,
      );
    }
  }
  return { ...given, kind, url: kind === "postgres" ? url : undefined };
}

/** A role the file does not name: only what the schema gives every role. */
const unsetServer = serverFileSchema.parse({});

/** Each role's server: the embedded default's, with what the file gives over it. */
function completeServers(
  file: ParsedConfigFile,
  vars: Record<string, string | undefined>,
  dataDir: string,
): Record<ServerName, ServerConfig> {
  const defaults = defaultServers(dataDir);
  const servers = {} as Record<ServerName, ServerConfig>;
  for (const name of serverNames) {
    const given = substituteDeep(file.servers[name] ?? unsetServer, vars) as NonNullable<
      ParsedConfigFile["servers"][ServerName]
    >;
    const d = defaults[name];
    const ownProcess = given.command !== undefined;
    servers[name] = {
      name,
      enabled: given.enabled ?? d.enabled,
      priority: given.priority ?? d.priority,
      timeout: given.timeout ?? d.timeout,
      retry_attempts: given.retry_attempts ?? d.retry_attempts,
      required: given.required ?? (given.priority ?? d.priority) === 1,
      concurrency: given.concurrency ?? d.concurrency,
      command: given.command ?? d.command,
      // A server given its own command does not inherit our launch details.
      args: given.args ?? (ownProcess ? [] : d.args),
      env: given.env ?? (ownProcess ? {} : d.env),
      cwd: given.cwd ?? (ownProcess ? undefined : d.cwd),
      url: given.url,
      // None unless given: a printed config names headers only for a hosted server.
      headers: given.headers ?? {},
      transport: given.transport,
      max_response_size: given.max_response_size,
      settings: { ...d.settings, ...given.settings },
    };
    if (given.url !== undefined) {
      if (ownProcess) {
        throw new ConfigError(
          `servers.${name}.url: give either a url (a hosted server) or a command (a local one), not both`,
        );
      }
      if (!/^https?:\/\/[^/]/.test(given.url)) {
        throw new ConfigError(
          `servers.${name}.url: expected an http:// or https:// URL, got ${maskUrlCredentials(given.url)}`,
        );
      }
    } else if (Object.keys(given.headers ?? {}).length > 0 || given.transport !== undefined) {
      throw new ConfigError(
        `servers.${name}.${given.headers ? "headers" : "transport"}: only for a server given by url`,
      );
    }
  }
  const calendar = servers.calendar;
  const caldavGiven = calendar.settings.caldav;
  if (caldavGiven !== undefined && file.servers.calendar?.command === undefined) {
    const parsed = caldavSettingsSchema.safeParse(caldavGiven);
    if (!parsed.success) {
      const issues = parsed.error.issues.map(
        (i) => `servers.calendar.settings.caldav.${i.path.join(".")}: ${i.message}`,
      );
      throw new ConfigError(`invalid settings for calendar:\n  ${issues.join("\n  ")}`, issues);
    }
    const launch = caldavLaunch(parsed.data, vars);
    calendar.command = launch.command;
    calendar.args = launch.args;
    calendar.env = { ...launch.env, ...file.servers.calendar?.env };
    calendar.settings = {
      ...calendar.settings,
      caldav: parsed.data,
      calendar_url: file.servers.calendar?.settings?.calendar_url ?? `/${parsed.data.username}/tasks/`,
    };
  }
  return servers;
}

/** The config's `timezone`, else TZ from the environment, else the machine's zone. */
function defaultZone(configured: string | undefined, tz: string | undefined): string {
  if (configured) return canonicalZone(configured)!;
  if (tz) {
    // TZ may also be a POSIX rule (":/etc/localtime", "EST5EDT"): Node has read it already.
    const zone = canonicalZone(tz.replace(/^:/, ""));
    if (zone) return zone;
  }
  return machineZone();
}

/** Names each route, reads `${NAME}` from the environment, and checks what needs it. */
function completeRoutes(
  routes: ParsedConfigFile["alerts"]["routes"],
  env: Record<string, string | undefined>,
): AlertRouteConfig[] {
  const named = routes.map((given, i) => {
    const route = substituteDeep(given, env) as typeof given;
    const name = route.name ?? `${route.kind}-${i + 1}`;
    const key = `alerts.routes.${i}`;
    if (route.kind === "telegram") return { ...route, name };
    const scheme = route.kind === "email" ? /^smtps?:\/\/[^/]/ : /^https?:\/\/[^/]/;
    if (!scheme.test(route.url)) {
      const expected = route.kind === "email" ? "an smtp:// or smtps:// URL" : "an http:// or https:// URL";
      throw new ConfigError(
        `${key}.url: expected ${expected}, got ${maskUrlCredentials(route.url) || "nothing"}`,
      );
    }
    return { ...route, name };
  });
  const seen = new Set<string>();
  for (const [i, route] of named.entries()) {
    if (seen.has(route.name)) throw new ConfigError(`alerts.routes.${i}.name: "${route.name}" is used twice`);
    seen.add(route.name);
  }
  return named;
}

function parseThreadId(text: string): number {
  const id = Number(text);
  if (!Number.isInteger(id) || id < 1) {
    throw new ConfigError(
      `ALERT_THREAD_ID: expected a forum topic's id (a whole number above 0), got "${text}"`,
    );
  }
  return id;
}

function parsePort(text: string, name = "WEBHOOK_PORT"): number {
  const port = Number(text);
  if (!Number.isInteger(port) || port < 0 || port > 65_535) {
    throw new ConfigError(`${name}: "${text}" is not a port (0 to 65535)`);
  }
  return port;
}

function parseUserIds(text: string): number[] {
  const ids = text.split(/[\s,]+/).filter(Boolean);
  const bad = ids.find((id) => !/^-?\d+$/.test(id));
  if (bad) throw new ConfigError(`ALLOWED_USER_IDS: "${bad}" is not a Telegram user id (a number)`);
  return ids.map(Number);
}

/** The loopback names and addresses: what a local-only server listens on. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  return h === "localhost" || h === "::1" || /^127(\.\d{1,3}){3}$/.test(h);
}

/**
 * Names whose values are secrets: exact keys of the config, and environment-style names
 * ending in one of these words (CALDAV_PASSWORD, NTFY_AUTH_TOKEN; not GIT_AUTHOR_NAME).
 */
const secretKeys = new Set(["bot_token", "api_key", "webhook_secret", "password", "token", "secret"]);
const secretEnvName = /(^|_)(TOKEN|PASSWORD|PASSWD|SECRET|API_KEY|APIKEY|PRIVATE_KEY|CREDENTIALS?)$/i;

export function isSecretName(name: string): boolean {
  return secretKeys.has(name.toLowerCase()) || secretEnvName.test(name);
}

const masked = "********";

/**
 * The effective config as a config file (`taskfan config print`): every key the file
 * accepts, secrets masked. A server's secret that comes from the environment is printed as
 * `${NAME}`, which the loader reads back from the environment; any other secret, and the
 * credentials in a URL, are masked. Values that only the environment sets (API_KEY,
 * WEBHOOK_SECRET) are left out.
 */
export function printableConfig(config: Config, env: NodeJS.ProcessEnv = process.env): ConfigFile {
  // A server's environment: what came from taskfan's own environment is printed as a
  // reference when it is secret; other secrets are masked, and so are URL credentials.
  const envValue = (name: string, value: string): string => {
    const secret = isSecretName(name) && value !== "";
    if (env[name] === value && (secret || maskUrlCredentials(value) !== value)) return `\${${name}}`;
    return secret ? masked : maskUrlCredentials(value);
  };
  const clean = (value: unknown, key: string): unknown => {
    if (typeof value === "string") {
      if (value !== "" && isSecretName(key)) return masked;
      return maskUrlCredentials(value);
    }
    if (Array.isArray(value)) return value.map((v) => clean(v, ""));
    if (value && typeof value === "object") {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clean(v, k)]));
    }
    return value;
  };
  const { security, notifications, servers, alerts, ...rest } = config;
  const { api_key, ...securityFile } = security;
  const { webhook_secret, ...telegram } = notifications.telegram;
  // The store's URL, when it came from the environment, as a reference to it.
  const store =
    rest.store.url && env.DATABASE_URL === rest.store.url
      ? { ...rest.store, url: "${DATABASE_URL}" }
      : rest.store;
  const printed = {
    ...(clean({ ...rest, store, security: securityFile, notifications: { telegram } }, "") as object),
    // A route's URL (a Slack or webhook URL is a token) and signing secret: never printed.
    alerts: {
      routes: alerts.routes.map((r) =>
        r.kind === "telegram"
          ? r
          : { ...r, url: masked, ...("secret" in r && r.secret ? { secret: masked } : {}) },
      ),
    },
    servers: Object.fromEntries(
      Object.values(servers).map(({ name, env: serverEnv, headers, ...server }) => [
        name,
        {
          // A hosted server has no launch line of ours to print.
          ...(clean(
            server.url ? { ...server, command: undefined, args: undefined, cwd: undefined } : server,
            "",
          ) as object),
          ...(server.url
            ? {}
            : { env: Object.fromEntries(Object.entries(serverEnv).map(([k, v]) => [k, envValue(k, v)])) }),
          // Headers carry tokens: their values are never printed.
          ...(server.url
            ? { headers: Object.fromEntries(Object.keys(headers).map((k) => [k, masked])) }
            : {}),
        },
      ]),
    ),
  };
  // Read back through the schema, which puts every key in its declared order: printing
  // what was printed gives the same text.
  return configFileSchema.parse(printed);
}

/** Every secret value of a config, for the log mask. */
export function secretsOf(config: Config): string[] {
  const { telegram } = config.notifications;
  const fromServers = Object.values(config.servers).flatMap((s) => [
    ...Object.entries(s.env)
      .filter(([k]) => isSecretName(k))
      .map(([, v]) => v),
    // Every header value of a hosted server: tokens, whatever the header's name.
    ...Object.values(s.headers).map((v) => v.replace(/^(Bearer|Basic|Token)\s+/i, "")),
  ]);
  const storePassword = config.store.url ? decodeURIComponent(new URL(config.store.url).password) : undefined;
  return [
    telegram.bot_token,
    telegram.webhook_secret,
    config.security.api_key,
    storePassword,
    ...fromServers,
    ...config.alerts.routes.flatMap((r) => [
      "url" in r ? r.url : undefined,
      "secret" in r ? r.secret : undefined,
    ]),
  ].filter((v): v is string => typeof v === "string" && v.length >= 8);
}
