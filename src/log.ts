import { mkdirSync } from "node:fs";
import path from "node:path";
import { pino, type Logger, type LoggerOptions, type TransportTargetOptions } from "pino";
import { maskUrlCredentials } from "./errors.js";

export type { Logger };

/** Paths whose values are secrets wherever they appear in a log object. */
export const redactPaths = [
  "bot_token",
  "botToken",
  "token",
  "password",
  "apiKey",
  "api_key",
  "authorization",
  "*.bot_token",
  "*.botToken",
  "*.token",
  "*.password",
  "*.apiKey",
  "*.api_key",
  "*.authorization",
  "headers.authorization",
  "env.*",
  "*.env.*",
];

// A Telegram bot token, a Bearer credential, or a token inside a Bot API URL.
const secretShapes: Array<[RegExp, string]> = [
  [/\d+:[A-Za-z0-9_-]{30,}/g, "[token]"],
  [/(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi, "$1[key]"],
];

/** Masks anything shaped like a secret inside free text. */
export function maskSecrets(text: string, extra: readonly string[] = []): string {
  let out = text;
  for (const [shape, replacement] of secretShapes) out = out.replace(shape, replacement);
  for (const secret of extra) if (secret.length >= 8) out = out.split(secret).join("[secret]");
  return maskUrlCredentials(out);
}

export interface LogOptions {
  level?: string | undefined;
  /** Folder for orchestrator.N.log files (rotated by size); no file logging when unset. */
  dir?: string | undefined;
  /** Rotate at this size ("10m", "512k"). */
  maxSize?: string | undefined;
  /** Keep this many files. */
  maxFiles?: number | undefined;
  /** Human-readable lines on stderr (default: when stderr is a terminal). */
  pretty?: boolean | undefined;
  /** Also write JSON lines to stderr (default true). */
  stderr?: boolean | undefined;
  /**
   * The terminal shows a chat (the console chat): stderr gets only warnings and errors, one
   * short line each ("WARN: git: server exited; restarting"); the files keep everything.
   */
  brief?: boolean | undefined;
  /** Values to mask wherever they appear (the API key, for one). */
  secrets?: readonly string[] | undefined;
}

/**
 * The one root logger: JSON lines, every line passed through the secret mask before it is
 * written; to stderr (pretty on a terminal) and, with `dir`, to size-rotated files.
 */
export function createLogger(options: LogOptions = {}): Logger {
  const secrets = options.secrets ?? [];
  const opts: LoggerOptions = {
    level: options.level ?? process.env.LOG_LEVEL ?? "info",
    base: { app: "taskfan" },
    redact: { paths: redactPaths, censor: "[redacted]" },
    serializers: { err: pino.stdSerializers.errWithCause },
    // The last word: whatever reached the line (an error's URL, a message), secrets go.
    hooks: { streamWrite: (line) => maskSecrets(line, secrets) },
  };
  const targets: TransportTargetOptions[] = [];
  const pretty = options.pretty ?? Boolean(process.stderr.isTTY);
  if (options.stderr !== false && options.brief) {
    targets.push({
      target: "pino-pretty",
      level: "warn",
      options: {
        destination: 2,
        colorize: Boolean(process.stderr.isTTY),
        hideObject: true,
        ignore: "pid,hostname,app,time",
        messageFormat: "{if server}{server}: {end}{msg}",
      },
    });
  } else if (options.stderr !== false) {
    targets.push(
      pretty
        ? { target: "pino-pretty", options: { destination: 2, colorize: true }, level: opts.level as string }
        : { target: "pino/file", options: { destination: 2 }, level: opts.level as string },
    );
  }
  if (options.dir) {
    mkdirSync(options.dir, { recursive: true });
    targets.push({
      target: "pino-roll",
      level: opts.level as string,
      options: {
        file: path.join(options.dir, "orchestrator"),
        extension: ".log",
        size: options.maxSize ?? "10m",
        limit: { count: options.maxFiles ?? 5 },
        mkdir: true,
        symlink: true,
      },
    });
  }
  if (targets.length === 1 && targets[0]!.target === "pino/file") {
    return pino(opts, pino.destination({ fd: 2, sync: false }));
  }
  if (targets.length === 0) return pino({ ...opts, level: "silent" });
  return pino(opts, pino.transport({ targets }));
}

/** Flushes and closes the logger's outputs; call before the process ends. */
export function closeLogger(log: Logger): Promise<void> {
  return new Promise((resolve) => {
    log.flush(() => {
      const stream = (log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as
        { end?: () => void; once?: (e: string, f: () => void) => void; fd?: number } | undefined;
      if (stream?.end && stream.once && stream.fd === undefined) {
        const timer = setTimeout(resolve, 2000);
        stream.once("close", () => {
          clearTimeout(timer);
          resolve();
        });
        stream.end();
      } else resolve();
    });
  });
}
