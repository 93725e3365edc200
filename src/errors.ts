/**
 * The error classes of taskfan. Each carries `cause`; a user sees `message`, the log
 * sees the chain.
 */

export class TaskfanError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A config file that does not match the schema; `issues` name each key path. */
export class ConfigError extends TaskfanError {
  constructor(
    message: string,
    readonly issues: readonly string[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Input that can never succeed (a title too long, a deadline in the past). */
export class ValidationError extends TaskfanError {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** A tool answered, and its answer says it failed. Retrying will not help. */
export class ToolFailedError extends TaskfanError {
  constructor(
    readonly server: string,
    readonly tool: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${server}: ${tool} failed: ${detail}`, options);
  }
}

/** A tool answered with something we cannot read. Retrying will not help. */
export class MalformedReplyError extends TaskfanError {
  constructor(
    readonly server: string,
    readonly tool: string,
    detail: string,
  ) {
    super(`${server}: ${tool} returned an unreadable reply: ${detail}`);
  }
}

/** The server could not be reached: connection closed, process gone, start failed. */
export class ServerUnavailableError extends TaskfanError {
  constructor(
    readonly server: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${server} is unavailable: ${detail}`, options);
  }
}

/** The server is down (not connected, restart backing off): wait for it, do not retry now. */
export class ServerDownError extends ServerUnavailableError {}

/** One attempt ran past the server's timeout. It may have reached the server. */
export class CallTimeoutError extends TaskfanError {
  constructor(
    readonly server: string,
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(`${server} did not answer within ${timeoutMs} ms`, options);
  }
}

/** A server started but lacks tools its integration needs. */
export class MissingToolsError extends TaskfanError {
  constructor(
    readonly server: string,
    readonly missing: readonly string[],
  ) {
    super(`${server} does not offer the tools taskfan needs: ${missing.join(", ")}`);
  }
}

/** The database does not answer (busy past its timeout, full, read-only, failing): nothing was written. */
export class StoreUnavailableError extends TaskfanError {
  constructor(
    readonly fault: { code: string; kind: "busy" | "full" | "readonly" | "io" | "corrupt"; reason: string },
    options?: { cause?: unknown },
  ) {
    super(`storage unavailable: ${fault.reason}`, options);
  }
}

/** A retried request with the same idempotency key carries another task. */
export class IdempotencyConflictError extends TaskfanError {
  constructor(readonly key: string) {
    super("this Idempotency-Key was used for another task");
  }
}

// scheme://user:password@ (or scheme://token@) inside any text.
const urlCredentials = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@]+@/gi;

/** Replaces the credentials of every URL in `text`. */
export function maskUrlCredentials(text: string): string {
  return text.replace(urlCredentials, "$1***:***@");
}

/**
 * One line for a person: the message of the error, never a stack, and never the
 * credentials of a URL it quotes (it is stored, shown in the chat and the API, and logged).
 */
export function describeError(error: unknown): string {
  const text = error instanceof Error ? (error.message.split("\n")[0] ?? error.name) : String(error);
  return maskUrlCredentials(text);
}
