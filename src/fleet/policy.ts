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
import { CallTimeoutError, MalformedReplyError, ServerDownError, ServerUnavailableError } from "../errors.js";

/**
 * Worth another try: the call timed out, or the connection or process went away.
 * Never a tool's own "no", never an open circuit.
 */
export function isTransient(error: unknown): boolean {
  if (error instanceof BrokenCircuitError || error instanceof ServerDownError) return false;
  if (error instanceof TaskCancelledError || error instanceof CallTimeoutError) return true;
  if (error instanceof ServerUnavailableError) return true;
  if (error instanceof McpError) {
    return error.code === ErrorCode.RequestTimeout || error.code === ErrorCode.ConnectionClosed;
  }
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === "ECONNRESET" || code === "EPIPE" || code === "ERR_STREAM_DESTROYED";
}

/** Counts against the server's health: it is slow, gone, or talks nonsense. */
export function isServerFault(error: unknown): boolean {
  return isTransient(error) || error instanceof MalformedReplyError || error instanceof ServerDownError;
}

/** May have reached the server before failing: look before creating again. */
export function mayHaveReachedServer(error: unknown): boolean {
  return (
    error instanceof TaskCancelledError ||
    error instanceof CallTimeoutError ||
    // The connection dropped during a call (not a server we never reached).
    (error instanceof ServerUnavailableError && !(error instanceof ServerDownError)) ||
    (error instanceof McpError && isTransient(error))
  );
}

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
