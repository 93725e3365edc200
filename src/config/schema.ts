import { z } from "zod";
import { canonicalZone } from "../time-zone.js";

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
  settings: z.record(z.string(), z.unknown()).optional(),
});

/** An IANA time zone name ("Europe/Moscow", "UTC"). */
export const timeZoneSchema = z.string().refine((name) => canonicalZone(name) !== undefined, {
  error: (issue) =>
    `unknown time zone "${String(issue.input)}"; use an IANA name such as Europe/Berlin or UTC`,
});

export const configFileSchema = z.strictObject({
  data_dir: z.string().min(1).optional(),
  /** The zone deadlines are read and shown in when a user has not chosen one (else TZ, else the machine's). */
  timezone: timeZoneSchema.optional(),
  logs_dir: z.string().min(1).optional(),
  logging: z
    .strictObject({
      max_size: z
        .string()
        .regex(/^\d+[kmg]?$/, 'a size such as "10m" or "512k"')
        .optional(),
      max_files: z.number().int().min(1).max(100).optional(),
    })
    .optional(),
  sync_interval: interval(5).optional(),
  health_check_interval: interval(1).optional(),
  circuit_breaker_threshold: z.number().int().min(1).max(100).optional(),
  circuit_breaker_half_open_after: seconds.optional(),
  monitoring_enabled: z.boolean().optional(),
  dispatcher: z
    .strictObject({
      concurrency: z.number().int().min(1).max(256).optional(),
      lease_seconds: z.number().positive().max(3600).optional(),
      poll_interval: z
        .number()
        .min(0.05, "at least 0.05 s: a shorter period would keep the process busy")
        .max(60)
        .optional(),
      prefetch: z.number().int().min(1).max(16).optional(),
    })
    .optional(),
  recovery: z
    .strictObject({
      delay: seconds.optional(),
      give_up_after: z
        .number()
        .positive()
        .max(30 * 86_400)
        .optional(),
    })
    .optional(),
  sync_batch_size: z.number().int().min(1).max(1000).optional(),
  health: z
    .strictObject({
      slow_threshold_ms: z.number().positive().max(600_000).optional(),
      error_rate_threshold: z.number().min(0).max(1).optional(),
      window: z.number().int().min(1).max(1000).optional(),
      probe_timeout: seconds.optional(),
    })
    .optional(),
  restart: z
    .strictObject({
      max_delay: seconds.optional(),
      crash_loop_restarts: z.number().int().min(1).max(100).optional(),
      crash_loop_window: seconds.optional(),
      stable_after: seconds.optional(),
    })
    .optional(),
  http: z
    .strictObject({
      enabled: z.boolean().optional(),
      host: z.string().min(1).optional(),
      port: z.number().int().min(0).max(65535).optional(),
      /** Host names (behind a proxy) the server answers to besides loopback and its own address. */
      allowed_hosts: z.array(z.string().min(1)).optional(),
      max_connections: z.number().int().min(1).max(100_000).optional(),
      headers_timeout: z.number().min(0.1).max(600).optional(),
      request_timeout: z.number().min(0.1).max(3600).optional(),
    })
    .optional(),
  store: z
    .strictObject({
      busy_timeout: z.number().min(0).max(600).optional(),
      unavailable_after: z.number().min(0).max(3600).optional(),
    })
    .optional(),
  notifications: z
    .strictObject({
      telegram: z
        .strictObject({
          enabled: z.boolean().optional(),
          bot_token: z.string().optional(),
          chat_id: z.union([z.string(), z.number()]).optional(),
          api_root: z.string().url().optional(),
          language: z.enum(["en", "ru"]).optional(),
          webhook_url: z.string().url().optional(),
          webhook_host: z.string().min(1).optional(),
          webhook_port: z.number().int().min(1).max(65535).optional(),
        })
        .optional(),
    })
    .optional(),
  security: z
    .strictObject({
      rate_limiting: z
        .strictObject({
          enabled: z.boolean().optional(),
          requests_per_minute: z.number().int().min(1).max(10_000).optional(),
        })
        .optional(),
      allowed_user_ids: z.array(z.number().int()).optional(),
      api_key_required: z.boolean().optional(),
      alert_chat_access: z.enum(["read", "full"]).optional(),
    })
    .optional(),
  servers: z.partialRecord(z.enum(serverNames), serverFileSchema).optional(),
});

export type ConfigFile = z.infer<typeof configFileSchema>;

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
  settings: Record<string, unknown>;
}

export interface Config {
  data_dir: string;
  /** The default zone for deadlines (a canonical IANA name): `timezone`, else TZ, else the machine's. */
  timezone: string;
  /** orchestrator.N.log and monitoring_metrics.json (LOG_DIR; default ./logs). */
  logs_dir: string;
  logging: { max_size: string; max_files: number };
  sync_interval: number;
  health_check_interval: number;
  circuit_breaker_threshold: number;
  circuit_breaker_half_open_after: number;
  monitoring_enabled: boolean;
  /** `prefetch`: operations claimed per unit of a server's concurrency (queued at the server). */
  dispatcher: { concurrency: number; lease_seconds: number; poll_interval: number; prefetch: number };
  /** Re-driving failed operations: wait `delay` s after a failure; give up after `give_up_after` s. */
  recovery: { delay: number; give_up_after: number };
  sync_batch_size: number;
  health: { slow_threshold_ms: number; error_rate_threshold: number; window: number; probe_timeout: number };
  restart: {
    max_delay: number;
    crash_loop_restarts: number;
    crash_loop_window: number;
    stable_after: number;
  };
  notifications: {
    telegram: {
      enabled: boolean;
      bot_token?: string | undefined;
      chat_id?: string | undefined;
      /** The alert chat's language: en (default) or ru (ALERT_LANGUAGE). */
      language?: string | undefined;
      /** A self-hosted Bot API server, or a test fake (TELEGRAM_API_ROOT). */
      api_root?: string | undefined;
      /** Webhook mode when set (WEBHOOK_URL): Telegram posts updates to this public URL. */
      webhook_url?: string | undefined;
      /** Where the webhook server listens (behind your reverse proxy): WEBHOOK_HOST, WEBHOOK_PORT. */
      webhook_host: string;
      webhook_port: number;
      /** The secret Telegram sends with every update (WEBHOOK_SECRET; random per start if unset). */
      webhook_secret?: string | undefined;
    };
  };
  security: {
    rate_limiting: { enabled: boolean; requests_per_minute: number };
    /** Telegram users allowed to use the bot (ALLOWED_USER_IDS). */
    allowed_user_ids: number[];
    /** Every /api call needs `Authorization: Bearer <API_KEY>`. */
    api_key_required: boolean;
    /** From API_KEY; never in the file. */
    api_key?: string | undefined;
    /** What members of the alert chat who are not allowed users may do: read, or everything. */
    alert_chat_access: "read" | "full";
  };
  /**
   * The local HTTP server: status page, /metrics, /healthz, /readyz, /api. `allowed_hosts`:
   * Host headers it answers besides loopback and its own address; the limits are in seconds.
   */
  http: {
    enabled: boolean;
    host: string;
    port: number;
    allowed_hosts: string[];
    max_connections: number;
    headers_timeout: number;
    request_timeout: number;
  };
  /**
   * SQLite: how long a write waits for another writer (`busy_timeout`, s), and how long the
   * store may keep failing with "busy" before it counts as unavailable (`unavailable_after`, s).
   */
  store: { busy_timeout: number; unavailable_after: number };
  servers: Record<ServerName, ServerConfig>;
}
