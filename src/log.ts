import { pino, type Logger, type LoggerOptions } from "pino";

export type { Logger };

/** Paths whose values are secrets wherever they appear in a log object. */
export const redactPaths = [
  "bot_token",
  "botToken",
  "token",
  "password",
  "apiKey",
  "api_key",
  "*.bot_token",
  "*.botToken",
  "*.token",
  "*.password",
  "*.apiKey",
  "*.api_key",
  "env.*",
  "*.env.*",
];

const tokenShape = /\b\d{5,}:[A-Za-z0-9_-]{30,}\b/g;

/** Masks anything shaped like a Telegram bot token inside free text. */
export function maskSecrets(text: string): string {
  return text.replace(tokenShape, "[token]");
}

/** The one root logger: JSON lines on stderr (stdout is for command output). */
export function createLogger(options: { level?: string; destination?: number } = {}): Logger {
  const opts: LoggerOptions = {
    level: options.level ?? process.env.LOG_LEVEL ?? "info",
    base: { app: "taskfan" },
    redact: { paths: redactPaths, censor: "[redacted]" },
    hooks: {
      logMethod(args, method) {
        method.apply(
          this,
          args.map((a) => (typeof a === "string" ? maskSecrets(a) : a)) as Parameters<typeof method>,
        );
      },
    },
    serializers: {
      err: (err: unknown) => {
        const s = pino.stdSerializers.errWithCause(err as Error);
        if (typeof s.message === "string") s.message = maskSecrets(s.message);
        if (typeof s.stack === "string") s.stack = maskSecrets(s.stack);
        return s;
      },
    },
  };
  return pino(opts, pino.destination({ fd: options.destination ?? 2, sync: false }));
}
