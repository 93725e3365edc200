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

/** One line for a person: the message of the error, never a stack. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message.split("\n")[0] ?? error.name;
  return String(error);
}
