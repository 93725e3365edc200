/**
 * The error classes of taskfan. Each carries `cause`; a user sees `message`, the log
 * sees the chain. Each says, as data, what a caller may do about it: whether the failed
 * call may have reached its server (`reached`: look before creating again), whether it
 * counts against the server's health (`serverFault`), and when trying again may help
 * (`retry`: now, later once something changes, or never). The policies and the runner read
 * these fields, not the class order.
 */

export type RetryAdvice = "now" | "later" | "never";

export interface Classified {
  retry: RetryAdvice;
  reached: boolean;
  serverFault: boolean;
}

export class TaskfanError extends Error implements Classified {
  readonly retry: RetryAdvice = "never";
  readonly reached: boolean = false;
  readonly serverFault: boolean = false;

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
  override readonly reached = true;

  constructor(
    readonly server: string,
    readonly tool: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${server}: ${tool} failed: ${detail}`, options);
  }
}

/** A tool answered with something we cannot read. Retrying will not help; the server talks nonsense. */
export class MalformedReplyError extends TaskfanError {
  override readonly reached = true;
  override readonly serverFault = true;

  constructor(
    readonly server: string,
    readonly tool: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${server}: ${tool} returned an unreadable reply: ${detail}`, options);
  }
}

/** The connection went away during a call (or could not be made): it may have reached the server. */
export class ServerUnavailableError extends TaskfanError {
  override readonly retry: RetryAdvice = "now";
  override readonly reached: boolean = true;
  override readonly serverFault = true;

  constructor(
    readonly server: string,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${server} is unavailable: ${detail}`, options);
  }
}

/** The server is down (not connected, restart backing off): nothing was sent; wait for it. */
export class ServerDownError extends ServerUnavailableError {
  override readonly retry = "later";
  override readonly reached = false;
}

/**
 * A hosted server refused our credentials (HTTP 401 or 403). Nothing changes until someone
 * fixes the headers or the server: no retry now; the connection tries again on its slowest
 * backoff.
 */
export class UnauthorisedError extends ServerDownError {
  constructor(
    server: string,
    readonly status: number,
    options?: { cause?: unknown },
  ) {
    super(
      server,
      `unauthorised (HTTP ${status}): the server refused our credentials; check servers.${server}.headers`,
      options,
    );
  }
}

/**
 * A hosted server answered a call with HTTP 5xx (it may have acted on it: look before
 * creating again) or 429 (it did not; wait `retryAfterMs` when it said so).
 */
export class HttpRefusalError extends TaskfanError {
  override readonly retry: RetryAdvice;
  override readonly reached: boolean;
  override readonly serverFault: boolean;

  constructor(
    readonly server: string,
    readonly status: number,
    readonly retryAfterMs: number | undefined,
    options?: { cause?: unknown },
  ) {
    super(
      status === 429
        ? `${server} is rate limiting us (HTTP 429${retryAfterMs !== undefined ? `, retry after ${Math.ceil(retryAfterMs / 1000)} s` : ""})`
        : `${server} answered HTTP ${status}`,
      options,
    );
    this.retry = status === 429 ? "later" : "now";
    this.reached = status !== 429;
    this.serverFault = status !== 429;
  }
}

/**
 * A hosted server sent an answer, or one SSE event, longer than its cap: it talks nonsense
 * (or means harm). Nothing more of it is read; its session is closed and opened again on
 * the connection's backoff.
 */
export class ResponseTooLargeError extends TaskfanError {
  override readonly retry = "later";
  override readonly reached = true;
  override readonly serverFault = true;

  constructor(
    readonly server: string,
    readonly limitBytes: number,
    what: "answer" | "event",
  ) {
    super(
      `${server} sent ${what === "answer" ? "an answer" : "an event"} over ${formatBytes(limitBytes)} (servers.${server}.max_response_size); it was not read`,
    );
  }
}

function formatBytes(n: number): string {
  if (n >= 1024 ** 2) return `${+(n / 1024 ** 2).toFixed(1)} MB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KB`;
  return `${n} bytes`;
}

/** One attempt ran past the server's timeout. It may have reached the server. */
export class CallTimeoutError extends TaskfanError {
  override readonly retry = "now";
  override readonly reached = true;
  override readonly serverFault: boolean = true;

  constructor(
    readonly server: string,
    readonly timeoutMs: number,
    options?: { cause?: unknown },
  ) {
    super(`${server} did not answer within ${timeoutMs} ms`, options);
  }
}

/**
 * An attempt's time ran out before its next call was sent (this process was paused or
 * starved meanwhile): that call did not go out (an earlier one of the attempt may have:
 * look before creating again), and it is no fault of the server's.
 */
export class CallOverdueError extends CallTimeoutError {
  override readonly serverFault = false;

  constructor(server: string, timeoutMs: number) {
    super(server, timeoutMs);
    this.message = `${server}: the call's ${timeoutMs} ms ran out before it was sent; it was not sent`;
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
  override readonly retry = "later";

  constructor(
    readonly fault: { code: string; kind: "busy" | "full" | "readonly" | "io" | "corrupt"; reason: string },
    options?: { cause?: unknown; where?: string },
  ) {
    super(`storage unavailable: ${fault.reason}${options?.where ? ` (${options.where})` : ""}`, options);
  }
}

/** The database was migrated by a newer taskfan: this one would misread it, so it does not start. */
export class SchemaTooNewError extends TaskfanError {
  constructor(
    readonly found: number,
    readonly known: number,
    where: string,
  ) {
    super(
      `the database (${where}) has schema version ${found}, newer than this taskfan knows (${known}): run the taskfan that migrated it, or a newer one`,
    );
  }
}

/** A retried request with the same idempotency key carries another task. */
export class IdempotencyConflictError extends TaskfanError {
  constructor(readonly key: string) {
    super("this Idempotency-Key was used for another task");
  }
}

/** No task has this id. */
export class TaskNotFoundError extends TaskfanError {
  constructor(readonly taskId: string) {
    super(`no task ${taskId}`);
  }
}

/** A change the task's state does not allow: it was deleted, or rolled back. */
export class ChangeRefusedError extends TaskfanError {
  constructor(
    readonly taskId: string,
    readonly reason: "deleted" | "rolled_back",
  ) {
    super(
      reason === "deleted"
        ? `task ${taskId} was deleted; it cannot be changed`
        : `task ${taskId} was rolled back (a required server failed); it cannot be changed`,
    );
  }
}

/** The change was made against a version of the task that is no longer the latest. */
export class VersionMismatchError extends TaskfanError {
  constructor(
    readonly taskId: string,
    readonly expected: number,
    readonly current: number,
  ) {
    super(`task ${taskId} is at version ${current}, not ${expected}: read it again and retry`);
  }
}

/** A command line that cannot be run as given. */
export class UsageError extends TaskfanError {}

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
