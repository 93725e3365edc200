import { McpError, ErrorCode } from "@modelcontextprotocol/sdk/types.js";
import { BrokenCircuitError, CircuitState } from "cockatiel";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { MalformedReplyError, ServerUnavailableError, ToolFailedError } from "../../src/errors.js";
import { createServerPolicy, isTransient } from "../../src/fleet/policy.js";

describe("isTransient", () => {
  it("retries timeouts and lost connections, never a tool's no or an open circuit", () => {
    expect(isTransient(new McpError(ErrorCode.RequestTimeout, "t"))).toBe(true);
    expect(isTransient(new McpError(ErrorCode.ConnectionClosed, "c"))).toBe(true);
    expect(isTransient(new ServerUnavailableError("git", "gone"))).toBe(true);
    expect(isTransient(new McpError(ErrorCode.InvalidParams, "bad"))).toBe(false);
    expect(isTransient(new ToolFailedError("git", "git_commit", "nope"))).toBe(false);
    expect(isTransient(new MalformedReplyError("git", "git_log", "?"))).toBe(false);
    expect(isTransient(new BrokenCircuitError())).toBe(false);
  });
});

describe("server policy", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("retries transient errors after 1 s, 2 s, 4 s", async () => {
    const { policy, retry } = createServerPolicy({
      timeoutMs: 10_000,
      retryAttempts: 3,
      breakerThreshold: 100,
      halfOpenAfterMs: 30_000,
    });
    const delays: number[] = [];
    retry.onRetry((e) => delays.push(e.delay));
    let calls = 0;
    const run = policy.execute(async () => {
      calls += 1;
      if (calls <= 3) throw new ServerUnavailableError("memory", "connection closed");
      return "ok";
    });
    await vi.runAllTimersAsync();
    await expect(run).resolves.toBe("ok");
    expect(calls).toBe(4);
    expect(delays).toEqual([1000, 2000, 4000]);
  });

  it("does not retry a tool's validation error", async () => {
    const { policy } = createServerPolicy({
      timeoutMs: 1000,
      retryAttempts: 3,
      breakerThreshold: 5,
      halfOpenAfterMs: 1000,
    });
    let calls = 0;
    const run = policy.execute(async () => {
      calls += 1;
      throw new ToolFailedError("deltatask", "create_task", "Title is required");
    });
    const settled = expect(run).rejects.toBeInstanceOf(ToolFailedError);
    await vi.runAllTimersAsync();
    await settled;
    expect(calls).toBe(1);
  });

  it("times out a hung attempt, retries it, then gives up with the timeout", async () => {
    const { policy } = createServerPolicy({
      timeoutMs: 500,
      retryAttempts: 1,
      breakerThreshold: 5,
      halfOpenAfterMs: 1000,
    });
    let calls = 0;
    const run = policy.execute(() => {
      calls += 1;
      return new Promise(() => undefined);
    });
    const settled = expect(run).rejects.toThrow(/timed out|cancel/i);
    await vi.runAllTimersAsync();
    await settled;
    expect(calls).toBe(2);
  });

  it("opens the circuit after the threshold of consecutive failures and stops calling", async () => {
    const { policy, breaker } = createServerPolicy({
      timeoutMs: 1000,
      retryAttempts: 0,
      breakerThreshold: 3,
      halfOpenAfterMs: 5000,
    });
    const states: CircuitState[] = [];
    breaker.onStateChange((s) => states.push(s));
    let calls = 0;
    const failing = () =>
      policy.execute(async () => {
        calls += 1;
        throw new ServerUnavailableError("git", "gone");
      });
    for (let i = 0; i < 3; i++) await expect(failing()).rejects.toBeInstanceOf(ServerUnavailableError);
    expect(breaker.state).toBe(CircuitState.Open);
    await expect(failing()).rejects.toBeInstanceOf(BrokenCircuitError);
    expect(calls).toBe(3);
    await vi.advanceTimersByTimeAsync(5000);
    await expect(policy.execute(async () => "back")).resolves.toBe("back");
    expect(states).toEqual([CircuitState.Open, CircuitState.HalfOpen, CircuitState.Closed]);
  });
});
