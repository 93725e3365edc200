import { z } from "zod";
import { maxReminders, parseOffsets } from "../domain/reminder.js";
import { canonicalZone } from "../time-zone.js";
import { alertKinds } from "../domain/alert.js";

/** The ten roles, in the order the design lists them. A server's name is its role. */
export const serverNames = [
  "deltatask",
  "shrimp-task-manager",
  "hpkv-memory",
  "memory",
  "calendar",
  "notifications",
  "time-tracker",
  "git",
  "filesystem",
  "backup",
] as const;

export type ServerName = (typeof serverNames)[number];

const seconds = z.number().positive().max(3600);
/** A period of a background loop: a floor keeps a typo from firing a timer every millisecond. */
const interval = (min: number) =>
  z.number().min(min, `at least ${min} s: a shorter period would keep the process busy`).max(3600);

/** One server as the file may give it: every key optional, unknown keys refused. */
export const serverFileSchema = z.strictObject({
  enabled: z.boolean().optional(),
  priority: z.number().int().min(1).max(5).optional(),
  timeout: seconds.optional(),
  retry_attempts: z.number().int().min(0).max(10).optional(),
  required: z.boolean().optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
  command: z.string().min(1).optional(),
  args: z.array(z.string()).optional(),
  env: z.record(z.string(), z.string()).optional(),
  cwd: z.string().min(1).optional(),
  /** A hosted server: its MCP endpoint, instead of a launch line. */
  url: z.string().min(1).optional(),
  /** Sent with every request to `url` (`${NAME}` reads the environment, for tokens). */
  headers: z.record(z.string(), z.string()).optional(),
  /** Without it: Streamable HTTP, falling back to HTTP+SSE when the server answers 4xx. */
  transport: z.enum(["streamable-http", "sse"]).optional(),
  /** A hosted server's largest answer (and SSE event) taskfan reads. */
  max_response_size: z
    .string()
    .regex(/^\d+[kmg]?$/, 'a size such as "8m" or "512k"')
    .default("8m"),
  settings: z.record(z.string(), z.unknown()).optional(),
});

/** An IANA time zone name ("Europe/Moscow", "UTC"). */
export const timeZoneSchema = z.string().refine((name) => canonicalZone(name) !== undefined, {
  error: (issue) =>
    `unknown time zone "${String(issue.input)}"; use an IANA name such as Europe/Berlin or UTC`,
});

/**
 * The config file, and the one place its keys, checks and defaults are declared: every
 * key may be left out, and parsing fills in the default. Keys the environment may set
 * (paths, the HTTP address, Telegram, allowed users) and those derived from others (the
 * global limit, whether the API key is required) are completed by the loader.
 */
/** What every alert route has: its name, which alerts it takes, whether it is on. */
const routeCommon = {
  /** Unique; default: the kind and its place in the list ("webhook-1"). */
  name: z
    .string()
    .regex(/^[a-z0-9][a-z0-9_-]{0,39}$/i, "letters, digits, - and _, at most 40")
    .optional(),
  /** The alert kinds it takes; default: all. */
  kinds: z.array(z.enum(alertKinds)).min(1).optional(),
  /** The servers whose alerts it takes; default: all. */
  servers: z.array(z.enum(serverNames)).min(1).optional(),
  enabled: z.boolean().default(true),
};

/** A JSON POST of each alert, signed with HMAC-SHA256 of the body when `secret` is set. */
const webhookRouteSchema = z.strictObject({
  kind: z.literal("webhook"),
  /** Usually `${NAME}` from the environment: a webhook URL is a secret. */
  url: z.string().min(1),
  secret: z.string().optional(),
  /** Seconds for one POST. */
  timeout: z.number().min(0.1).max(120).default(10),
  ...routeCommon,
});

/** A Slack incoming webhook: Block Kit text. */
const slackRouteSchema = z.strictObject({
  kind: z.literal("slack"),
  /** The incoming webhook's URL, usually `${NAME}`: it is a token. */
  url: z.string().min(1),
  timeout: z.number().min(0.1).max(120).default(10),
  ...routeCommon,
});

/** E-mail over SMTP: a plain-text and an HTML part, one thread per alert. */
const emailRouteSchema = z.strictObject({
  kind: z.literal("email"),
  /** smtp://user:password@host:587 (STARTTLS when offered) or smtps://…:465, usually `${NAME}`. */
  url: z.string().min(1),
  from: z.string().min(3),
  to: z.array(z.string().min(3)).min(1),
  timeout: z.number().min(0.1).max(120).default(10),
  ...routeCommon,
});

/** Another Telegram chat (or a topic of one) the bot posts to: one message per alert change. */
const telegramRouteSchema = z.strictObject({
  kind: z.literal("telegram"),
  chat_id: z.union([z.string().min(1), z.number().int()]),
  thread_id: z.number().int().min(1).optional(),
  /** The kinds sent without a sound; default: as the alert chat's. */
  quiet_kinds: z.array(z.enum(alertKinds)).default(["recovered", "degraded", "rolled_back"]),
  timeout: z.number().min(0.1).max(120).default(10),
  ...routeCommon,
});

export const alertRouteSchema = z.discriminatedUnion("kind", [
  webhookRouteSchema,
  slackRouteSchema,
  emailRouteSchema,
  telegramRouteSchema,
]);
export type AlertRouteConfig = z.output<typeof alertRouteSchema> & { name: string };

export const configFileSchema = z.strictObject({
  /** All data: the database and every local server's files (DATA_DIR wins). */
  data_dir: z.string().min(1).default("data"),
  /** The zone deadlines are read and shown in when a user has not chosen one (else TZ, else the machine's). */
  timezone: timeZoneSchema.optional(),
  /** orchestrator.N.log and monitoring_metrics.json (LOG_DIR wins). */
  logs_dir: z.string().min(1).default("logs"),
  logging: z
    .strictObject({
      max_size: z
        .string()
        .regex(/^\d+[kmg]?$/, 'a size such as "10m" or "512k"')
        .default("10m"),
      max_files: z.number().int().min(1).max(100).default(5),
    })
    .prefault({}),
  sync_interval: interval(5).default(300),
  /** Reminders before a task's deadline, sent to the chat that made it. */
  reminders: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** How long before the deadline, when a task asks for nothing else: "1h", "30m", "1d", "0" (at it). */
      before: z
        .array(
          z
            .string()
            .refine((text) => parseOffsets(text).ok, 'a time before the deadline such as "1h", "30m" or "0"'),
        )
        .max(maxReminders, `at most ${maxReminders} reminders`)
        .default(["1h", "0"]),
      /** How often due reminders are looked for. */
      check_interval: interval(1).default(15),
    })
    .prefault({}),
  health_check_interval: interval(1).default(60),
  circuit_breaker_threshold: z.number().int().min(1).max(100).default(5),
  circuit_breaker_half_open_after: seconds.default(30),
  monitoring_enabled: z.boolean().default(true),
  /** `prefetch`: operations claimed per unit of a server's concurrency (queued at the server). */
  dispatcher: z
    .strictObject({
      /** Default: what the enabled servers take at once (see the loader). */
      concurrency: z.number().int().min(1).max(256).optional(),
      lease_seconds: z.number().positive().max(3600).default(30),
      poll_interval: z
        .number()
        .min(0.05, "at least 0.05 s: a shorter period would keep the process busy")
        .max(60)
        .default(1),
      prefetch: z.number().int().min(1).max(16).default(2),
    })
    .prefault({}),
  /** Re-driving failed operations: wait `delay` s after a failure; give up after `give_up_after` s. */
  recovery: z
    .strictObject({
      delay: seconds.default(30),
      give_up_after: z
        .number()
        .positive()
        .max(30 * 86_400)
        .default(86_400),
    })
    .prefault({}),
  sync_batch_size: z.number().int().min(1).max(1000).default(20),
  /**
   * How many records gone from one server in one sync are taken for deletes made there (each
   * deletes its task everywhere); more at once are taken for data loss and re-created. 0:
   * always re-create.
   */
  sync_deletes: z.number().int().min(0).max(1000).default(3),
  health: z
    .strictObject({
      slow_threshold_ms: z.number().positive().max(600_000).default(2000),
      error_rate_threshold: z.number().min(0).max(1).default(0.5),
      window: z.number().int().min(1).max(1000).default(20),
      probe_timeout: seconds.default(5),
    })
    .prefault({}),
  restart: z
    .strictObject({
      max_delay: seconds.default(60),
      crash_loop_restarts: z.number().int().min(1).max(100).default(5),
      crash_loop_window: seconds.default(300),
      stable_after: seconds.default(60),
    })
    .prefault({}),
  /**
   * The local HTTP server: status page, /metrics, /healthz, /readyz, /api. `allowed_hosts`:
   * Host headers it answers besides loopback and its own address; the limits are in seconds.
   */
  http: z
    .strictObject({
      enabled: z.boolean().default(true),
      /** HTTP_HOST wins. */
      host: z.string().min(1).default("127.0.0.1"),
      /** HTTP_PORT wins. */
      port: z.number().int().min(0).max(65535).default(8787),
      allowed_hosts: z.array(z.string().min(1)).default([]),
      max_connections: z.number().int().min(1).max(100_000).default(256),
      headers_timeout: z.number().min(0.1).max(600).default(10),
      request_timeout: z.number().min(0.1).max(3600).default(30),
    })
    .prefault({}),
  /**
   * Where state lives: SQLite under `data_dir` (the default), or PostgreSQL at `url`
   * (`postgres://user:password@host:5432/db`; DATABASE_URL wins; `${NAME}` reads the
   * environment). SQLite: how long a write waits for another writer (`busy_timeout`, s);
   * PostgreSQL: connections in the pool (`pool_size`). Both: how long the store may keep
   * failing with "busy" before it counts as unavailable (`unavailable_after`, s).
   */
  store: z
    .strictObject({
      kind: z.enum(["sqlite", "postgres"]).optional(),
      url: z.string().optional(),
      busy_timeout: z.number().min(0).max(600).default(5),
      pool_size: z.number().int().min(1).max(1000).default(10),
      unavailable_after: z.number().min(0).max(3600).default(10),
    })
    .prefault({}),
  notifications: z
    .strictObject({
      telegram: z
        .strictObject({
          /** Default: on when there is a bot token. */
          enabled: z.boolean().optional(),
          bot_token: z.string().optional(),
          chat_id: z.union([z.string(), z.number()]).optional(),
          api_root: z.string().url().optional(),
          language: z.enum(["en", "ru"]).optional(),
          webhook_url: z.string().url().optional(),
          webhook_host: z.string().min(1).default("127.0.0.1"),
          webhook_port: z.number().int().min(1).max(65535).default(8080),
          /** A topic of a forum group: alerts are posted there (ALERT_THREAD_ID). */
          thread_id: z.number().int().min(1).optional(),
          /** The alert kinds sent without a sound (`disable_notification`); the rest ring. */
          quiet_kinds: z.array(z.enum(alertKinds)).default(["recovered", "degraded", "rolled_back"]),
          /** Seconds: problems that open within this time of one still open share its message (0: never). */
          group_window: z.number().min(0).max(3600).default(30),
        })
        .prefault({}),
    })
    .prefault({}),
  /** Where alerts go besides the Telegram alert chat. */
  alerts: z
    .strictObject({
      routes: z.array(alertRouteSchema).default([]),
    })
    .prefault({}),
  security: z
    .strictObject({
      rate_limiting: z
        .strictObject({
          enabled: z.boolean().default(true),
          requests_per_minute: z.number().int().min(1).max(10_000).default(100),
        })
        .prefault({}),
      /** Telegram users allowed to use the bot (ALLOWED_USER_IDS). */
      allowed_user_ids: z.array(z.number().int()).default([]),
      /** Default: required off loopback. */
      api_key_required: z.boolean().optional(),
      /** What members of the alert chat who are not allowed users may do: read, or everything. */
      alert_chat_access: z.enum(["read", "full"]).default("read"),
    })
    .prefault({}),
  servers: z.partialRecord(z.enum(serverNames), serverFileSchema).default({}),
});

/** What a config file may say: every key optional. */
export type ConfigFile = z.input<typeof configFileSchema>;
/** A config file as parsed: every defaulted key filled in. */
export type ParsedConfigFile = z.output<typeof configFileSchema>;

export interface ServerConfig {
  name: ServerName;
  enabled: boolean;
  priority: number;
  /** Seconds for one attempt. */
  timeout: number;
  retry_attempts: number;
  required: boolean;
  concurrency: number;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string | undefined;
  /** A hosted server's endpoint: reached over HTTP instead of spawned. */
  url?: string | undefined;
  headers: Record<string, string>;
  transport?: "streamable-http" | "sse" | undefined;
  /** The largest answer, and SSE event, read from a hosted server ("8m"; see sizeInBytes). */
  max_response_size: string;
  settings: Record<string, unknown>;
}

/** "8m", "512k", "1g" or a count of bytes, in bytes. */
export function sizeInBytes(size: string): number {
  const unit = { k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[size.slice(-1)] ?? 1;
  return Number.parseInt(size, 10) * unit;
}

type Telegram = ParsedConfigFile["notifications"]["telegram"];

/** The effective configuration: the parsed file, completed from the environment and the defaults table. */
export type Config = Omit<
  ParsedConfigFile,
  | "data_dir"
  | "timezone"
  | "logs_dir"
  | "dispatcher"
  | "http"
  | "notifications"
  | "security"
  | "servers"
  | "alerts"
> & {
  /** Routes named, with `${NAME}` read from the environment. */
  alerts: { routes: AlertRouteConfig[] };
  data_dir: string;
  /** A canonical IANA name: `timezone`, else TZ, else the machine's. */
  timezone: string;
  logs_dir: string;
  dispatcher: ParsedConfigFile["dispatcher"] & { concurrency: number };
  http: ParsedConfigFile["http"] & { host: string; port: number };
  notifications: {
    telegram: Omit<Telegram, "enabled" | "chat_id" | "language" | "webhook_host" | "webhook_port"> & {
      enabled: boolean;
      /** The alert chat's language: en (default) or ru (ALERT_LANGUAGE). */
      language?: string | undefined;
      chat_id?: string | undefined;
      webhook_host: string;
      webhook_port: number;
      /** The secret Telegram sends with every update (WEBHOOK_SECRET; random per start if unset); never in the file. */
      webhook_secret?: string | undefined;
    };
  };
  security: Omit<ParsedConfigFile["security"], "allowed_user_ids" | "api_key_required"> & {
    allowed_user_ids: number[];
    api_key_required: boolean;
    /** From API_KEY; never in the file. */
    api_key?: string | undefined;
  };
  servers: Record<ServerName, ServerConfig>;
};
