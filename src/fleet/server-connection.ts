import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ErrorCode, ListRootsRequestSchema, McpError } from "@modelcontextprotocol/sdk/types.js";
import type {
  JsonSchemaType,
  JsonSchemaValidator,
  jsonSchemaValidator,
} from "@modelcontextprotocol/sdk/validation";
import { AjvJsonSchemaValidator } from "@modelcontextprotocol/sdk/validation/ajv";
import type { ServerConfig } from "../config/schema.js";
import {
  HttpRefusalError,
  MissingToolsError,
  ResponseTooLargeError,
  ServerDownError,
  ServerUnavailableError,
  UnauthorisedError,
  describeError,
} from "../errors.js";
import type { ToolResult } from "../integrations/integration.js";
import type { Logger } from "../log.js";
import { oneAtATime } from "../one-at-a-time.js";
import { alive, waitForExit } from "./pid-files.js";
import {
  httpStatus,
  openServer,
  transportOf,
  type OpenTransport,
  type ServerTransport,
  type TransportKind,
} from "./transport.js";

const stderrLinesPerMinute = 30;
const stderrLineLimit = 500;

/**
 * The SDK compiles a validator for every tool's output schema as soon as the tools are
 * listed (git-mcp-server offers dozens) while we call two or three tools per server: the
 * same validation (the SDK's ajv provider, one for all servers), compiled on first use.
 */
class CompileOnFirstUse implements jsonSchemaValidator {
  private readonly ajv = new AjvJsonSchemaValidator();
  getValidator<T>(schema: JsonSchemaType): JsonSchemaValidator<T> {
    let compiled: JsonSchemaValidator<T> | undefined;
    return (input) => (compiled ??= this.ajv.getValidator<T>(schema))(input);
  }
}
const outputValidation = new CompileOnFirstUse();

/** One MCP server and the SDK client talking to it, through the transport its opener gives. */
export class ServerConnection {
  private client: Client | undefined;
  private transport: ServerTransport | undefined;
  /** Spawns and connects; resolves once the tools the integration needs are confirmed. */
  readonly start = oneAtATime(() => this.connect());
  private toolNames = new Set<string>();
  private stderrBudget = { windowStart: 0, lines: 0, dropped: 0 };
  private state: { connected: boolean; lastError?: string; startedAt?: number; pid?: number } = {
    connected: false,
  };
  private kind: TransportKind;
  /** Why this connection closed its own transport (a hosted server's lost session). */
  private dropped: string | undefined;
  /** Every process this connection started, so none outlives it. */
  private readonly spawned = new Set<number>();
  /** The Retry-After of the server's last 429, and until when it asked us to wait. */
  private retryAfter: number | undefined;
  private limitedUntil = 0;
  /** The answer over the cap that closed this session, if one did. */
  private tooLarge: ResponseTooLargeError | undefined;

  constructor(
    readonly config: ServerConfig,
    private readonly requiredTools: readonly string[],
    private readonly log: Logger,
    /** Called when the process goes away without our asking. */
    private readonly onExit: (reason: string) => void = () => undefined,
    private readonly openTransport: OpenTransport = openServer,
  ) {
    this.kind = transportOf(config);
  }

  /** The transport in use (after a fallback, "sse"), or the one to try first. */
  get transportKind(): TransportKind {
    return this.kind;
  }

  get tools(): ReadonlySet<string> {
    return this.toolNames;
  }

  get connected(): boolean {
    return this.state.connected;
  }

  /** Why the server is not connected, or what went wrong last. */
  get lastError(): string | undefined {
    return this.state.lastError;
  }

  /** When the current process was connected. */
  get startedAt(): number | undefined {
    return this.state.startedAt;
  }

  /** The current process's id. */
  get pid(): number | undefined {
    return this.state.pid;
  }

  /** Until when a hosted server asked us not to call (HTTP 429 with Retry-After); 0 if not. */
  get rateLimitedUntil(): number {
    return this.limitedUntil;
  }

  /** Records why the server is not running as it should (setup failed, wedged, crash loop). */
  noteFailure(reason: string): void {
    this.state.lastError = reason;
  }

  private async connect(fallback = false): Promise<void> {
    const { config } = this;
    this.tooLarge = undefined;
    const transport: ServerTransport = this.openTransport(
      config,
      {
        onStderr: (chunk) => this.logStderr(chunk),
        onRetryAfter: (ms) => (this.retryAfter = ms),
        // Nothing more of it is read: the session is closed, and opened again on the backoff.
        onTooLarge: (error) => {
          if (this.tooLarge) return;
          this.tooLarge = error;
          this.log.warn({ err: error }, "hosted server sent more than its cap; closing the session");
          this.dropped = error.message;
          void transport.close().catch(() => undefined);
        },
      },
      fallback,
    );
    // Roots: none to offer, so each server keeps the folders its configuration gives it.
    // Said as an answer rather than "unsupported": shrimp asks on every file access and
    // logs a stack trace to stderr for each refusal.
    const client = new Client(
      { name: "taskfan", version: "0.1.0" },
      { capabilities: { roots: { listChanged: false } }, jsonSchemaValidator: outputValidation },
    );
    client.setRequestHandler(ListRootsRequestSchema, () => ({ roots: [] }));
    transport.onclose = () => {
      if (this.transport !== transport) return;
      this.transport = undefined;
      this.client = undefined;
      this.state.connected = false;
      this.state.lastError =
        this.dropped ??
        (this.config.url ? "the connection to the server closed" : "the server process exited");
      this.dropped = undefined;
      if (!this.config.url) this.log.warn({ pid: this.pid }, "server process exited");
      this.onExit(this.state.lastError);
    };
    try {
      await client.connect(transport, { timeout: Math.max(config.timeout * 1000, 15_000) });
      const listed = await client.listTools(undefined, { timeout: config.timeout * 1000 });
      this.toolNames = new Set(listed.tools.map((t) => t.name));
    } catch (error) {
      await transport.close().catch(() => undefined);
      // A hosted server that refuses Streamable HTTP with a 4xx may speak the older HTTP+SSE.
      const status = httpStatus(error);
      if (
        config.url &&
        !config.transport &&
        !fallback &&
        status !== undefined &&
        status >= 400 &&
        status < 500 &&
        status !== 401 &&
        status !== 403
      ) {
        this.log.info({ status }, "Streamable HTTP refused; trying HTTP+SSE");
        return this.connect(true);
      }
      if (config.url && (status === 401 || status === 403)) {
        const refused = new UnauthorisedError(config.name, status, { cause: error });
        this.state.lastError = refused.message;
        throw refused;
      }
      // (Set by the hook meanwhile: the narrowing from the reset above does not hold.)
      const overCap = this.tooLarge as ResponseTooLargeError | undefined;
      this.state.lastError = overCap?.message ?? describeError(error);
      throw new ServerUnavailableError(config.name, `could not start: ${this.state.lastError}`, {
        cause: overCap ?? error,
      });
    }
    const missing = this.requiredTools.filter((t) => !this.toolNames.has(t));
    if (missing.length > 0) {
      await transport.close().catch(() => undefined);
      const error = new MissingToolsError(config.name, missing);
      this.state.lastError = error.message;
      throw error;
    }
    this.client = client;
    this.transport = transport;
    this.kind = transportOf(config, fallback);
    const pid = transport.pid ?? undefined;
    if (pid !== undefined) this.spawned.add(pid);
    this.state = { connected: true, startedAt: Date.now(), ...(pid !== undefined ? { pid } : {}) };
    this.log.info({ pid: this.pid, tools: this.toolNames.size }, "server connected");
  }

  /** One tool call with our own timeout and the caller's signal. */
  async callTool(
    name: string,
    args: Record<string, unknown>,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<ToolResult> {
    const client = this.client;
    if (!client || !this.connected) {
      throw new ServerUnavailableError(this.config.name, this.lastError ?? "not connected");
    }
    try {
      const result = await whileRunning(signal, (scoped) =>
        client.callTool({ name, arguments: args }, undefined, { signal: scoped, timeout: timeoutMs }),
      );
      return result as ToolResult;
    } catch (error) {
      // An answer over the cap closed the session under the call.
      if (this.tooLarge) throw this.tooLarge;
      if (error instanceof McpError && error.code === ErrorCode.ConnectionClosed) {
        this.state.connected = false;
        throw new ServerUnavailableError(this.config.name, "connection closed", { cause: error });
      }
      throw await this.fromHttp(error);
    }
  }

  /**
   * What a hosted server's HTTP answer means for the failed request. 429 and 5xx: a refusal
   * for now (the 429's Retry-After kept). 401/403: unauthorised; the session is closed.
   * 404 on our session (the server restarted) or no answer at all: the session is closed,
   * so the supervisor opens a new one with its backoff (the SDK would keep sending the old
   * session id); that call did not reach the server. Anything else is returned as it is.
   */
  private async fromHttp(error: unknown): Promise<unknown> {
    if (!this.config.url || !this.transport) return error;
    const status = httpStatus(error);
    if (status === 429 || (status !== undefined && status >= 500)) {
      const wait = status === 429 ? this.retryAfter : undefined;
      if (wait !== undefined) this.limitedUntil = Date.now() + wait;
      return new HttpRefusalError(this.config.name, status, wait, { cause: error });
    }
    if (status === 401 || status === 403) {
      const refused = new UnauthorisedError(this.config.name, status, { cause: error });
      this.log.warn({ status }, "hosted server refused our credentials; closing the session");
      this.dropped = refused.message;
      await this.transport.close().catch(() => undefined);
      return refused;
    }
    const refused = /ECONNREFUSED|ECONNRESET|fetch failed/.test(describeError(error));
    if (status !== 404 && !refused) return error;
    const reason = status === 404 ? "the server forgot the session (HTTP 404)" : "the server does not answer";
    this.log.warn({ reason }, "hosted server lost; opening a new session");
    this.dropped = reason;
    await this.transport.close().catch(() => undefined);
    return new ServerDownError(this.config.name, reason, { cause: error });
  }

  /** An MCP ping with our own timeout: answers only if the process reads and writes stdio. */
  async ping(signal: AbortSignal, timeoutMs: number): Promise<void> {
    const client = this.client;
    if (!client || !this.connected) {
      throw new ServerUnavailableError(this.config.name, this.lastError ?? "not connected");
    }
    try {
      await whileRunning(signal, (scoped) => client.ping({ signal: scoped, timeout: timeoutMs }));
    } catch (error) {
      if (this.tooLarge) throw this.tooLarge;
      throw await this.fromHttp(error);
    }
  }

  /** Closes stdin, then SIGTERM, then SIGKILL (the SDK's transport does the escalation). */
  async close(): Promise<void> {
    await this.start.settled();
    const transport = this.transport;
    const pid = this.pid;
    this.transport = undefined;
    this.client = undefined;
    this.state.connected = false;
    if (transport) {
      // A hosted server is told the session ended (DELETE), so it can let it go now.
      if (transport instanceof StreamableHTTPClientTransport) {
        const ended = transport.terminateSession().catch(() => undefined);
        await Promise.race([ended, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      }
      await transport.close().catch(() => undefined);
    }
    // The transport's last resort is SIGKILL without waiting; and a process from an earlier
    // start may linger: make sure every one of them is gone.
    if (pid !== undefined) await waitForExit(pid, 3000);
    for (const old of this.spawned) {
      if (alive(old)) {
        this.log.warn({ pid: old }, "server process outlived its connection; killing it");
        process.kill(old, "SIGKILL");
        await waitForExit(old, 2000);
      }
      this.spawned.delete(old);
    }
  }

  private logStderr(chunk: Buffer): void {
    const now = Date.now();
    const budget = this.stderrBudget;
    if (now - budget.windowStart > 60_000) {
      if (budget.dropped > 0) this.log.debug({ dropped: budget.dropped }, "stderr lines dropped");
      budget.windowStart = now;
      budget.lines = 0;
      budget.dropped = 0;
    }
    for (const line of chunk.toString("utf8").split("\n")) {
      if (!line.trim()) continue;
      if (budget.lines >= stderrLinesPerMinute) {
        budget.dropped += 1;
        continue;
      }
      budget.lines += 1;
      this.log.debug({ stderr: line.slice(0, stderrLineLimit) }, "server stderr");
    }
  }
}

/**
 * Runs one SDK request with a signal that follows `signal` only until the request settles.
 * The SDK never stops listening to a request's signal, and aborting it after the reply
 * (as a timeout policy does when the call returns) would send the server a
 * `notifications/cancelled` for a request it already answered.
 */
async function whileRunning<T>(
  signal: AbortSignal,
  request: (scoped: AbortSignal) => Promise<T>,
): Promise<T> {
  signal.throwIfAborted();
  const scoped = new AbortController();
  const follow = () => scoped.abort(signal.reason);
  signal.addEventListener("abort", follow, { once: true });
  try {
    return await request(scoped.signal);
  } finally {
    signal.removeEventListener("abort", follow);
  }
}
