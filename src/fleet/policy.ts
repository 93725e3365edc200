import { McpError, ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import {
  BrokenCircuitError,
  ConsecutiveBreaker,
  ExponentialBackoff,
  TaskCancelledError,
  TimeoutStrategy,
  circuitBreaker,
  handleWhen,
  noJitterGenerator,
  retry,
  timeout,
  wrap,
  type CircuitBreakerPolicy,
  type IPolicy,
  type RetryPolicy,
} from "cockatiel";
import { TaskfanError, type Classified } from "../errors.js";

/**
 * What a failure says, read from the error's own fields (taskfan's errors) or from what
 * other libraries throw: a cancelled or timed-out MCP request and a lost connection may
 * have reached the server and are worth another try now; an open circuit means later.
 */
export function classify(error: unknown): Classified {
  if (error instanceof TaskfanError) return error;
  if (error instanceof BrokenCircuitError) return { retry: "later", reached: false, serverFault: false };
  if (error instanceof TaskCancelledError) return { retry: "now", reached: true, serverFault: true };
  if (error instanceof McpError) {
    const lost = error.code === ErrorCode.RequestTimeout || error.code === ErrorCode.ConnectionClosed;
    return lost ? { retry: "now", reached: true, serverFault: true } : neverAgain;
  }
  const code = (error as { code?: unknown } | undefined)?.code;
  if (code === "ECONNRESET" || code === "EPIPE" || code === "ERR_STREAM_DESTROYED") {
    return { retry: "now", reached: false, serverFault: true };
  }
  return neverAgain;
}

const neverAgain: Classified = { retry: "never", reached: false, serverFault: false };

/** Worth another try now: a timeout, a lost connection. Never a tool's own "no", never an open circuit. */
export const isTransient = (error: unknown) => classify(error).retry === "now";

/** Counts against the server's health: it is slow, gone, or talks nonsense. */
export const isServerFault = (error: unknown) => classify(error).serverFault;

/** May have reached the server before failing: look before creating again. */
export const mayHaveReachedServer = (error: unknown) => classify(error).reached;

export interface PolicyOptions {
  timeoutMs: number;
  retryAttempts: number;
  breakerThreshold: number;
  halfOpenAfterMs: number;
  /** First backoff; doubles per retry up to 4x (1 s, 2 s, 4 s by default). */
  initialDelayMs?: number;
}

export interface ServerPolicy {
  policy: IPolicy;
  retry: RetryPolicy;
  breaker: CircuitBreakerPolicy;
}

/**
 * Built once per server: retry (transient errors only, exponential 1 s, 2 s, 4 s) around
 * a circuit breaker (consecutive server faults) around a timeout for each attempt.
 */
export function createServerPolicy(options: PolicyOptions): ServerPolicy {
  const initialDelay = options.initialDelayMs ?? 1000;
  const retryPolicy = retry(handleWhen(isTransient), {
    maxAttempts: options.retryAttempts,
    backoff: new ExponentialBackoff({
      initialDelay,
      maxDelay: initialDelay * 4,
      exponent: 2,
      generator: noJitterGenerator,
    }),
  });
  const breaker = circuitBreaker(handleWhen(isServerFault), {
    halfOpenAfter: options.halfOpenAfterMs,
    breaker: new ConsecutiveBreaker(options.breakerThreshold),
  });
  // Its signal is aborted on timeout only: a call that returned needs no cleanup (see whileRunning).
  const perAttempt = timeout(options.timeoutMs, {
    strategy: TimeoutStrategy.Aggressive,
    abortOnReturn: false,
  });
  return { policy: wrap(retryPolicy, breaker, perAttempt), retry: retryPolicy, breaker };
}
