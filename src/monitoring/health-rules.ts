import type { BreakerState, Sample } from "../fleet/fleet.js";

export type HealthStatus = "ONLINE" | "DEGRADED" | "ERROR";

export interface HealthFacts {
  connected: boolean;
  /** Reached over HTTP (not a child process of ours). */
  hosted?: boolean;
  crashLooping: boolean;
  breaker: BreakerState;
  /** The latest probe, if one ran. */
  probe: { ok: true; ms: number } | { ok: false; error: string } | undefined;
  /** Recent calls and probes, oldest first. */
  samples: readonly Sample[];
  lastError: string | undefined;
}

export interface HealthThresholds {
  /** p95 of recent response times above this is slow. */
  slowThresholdMs: number;
  /** Share of failed recent calls above this is too many. */
  errorRateThreshold: number;
}

export interface Rating {
  status: HealthStatus;
  reason: string;
  p50Ms: number | undefined;
  p95Ms: number | undefined;
  errorRate: number | undefined;
}

/** The value below which `q` of the sorted values fall (nearest rank). */
export function percentile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];
}

/**
 * ERROR: the process is dead or crash-looping, the breaker is open, or the probe failed.
 * DEGRADED: the breaker is half-open, the recent p95 is over the slow threshold, or the
 * recent error rate is over its threshold. ONLINE otherwise.
 */
export function rateHealth(facts: HealthFacts, limits: HealthThresholds): Rating {
  const times = facts.samples.filter((s) => s.ok).map((s) => s.ms);
  const p50Ms = percentile(times, 0.5);
  const p95Ms = percentile(times, 0.95);
  const errorRate =
    facts.samples.length > 0 ? facts.samples.filter((s) => !s.ok).length / facts.samples.length : undefined;
  const rate = (status: HealthStatus, reason: string): Rating => ({
    status,
    reason,
    p50Ms,
    p95Ms,
    errorRate,
  });

  if (facts.crashLooping) return rate("ERROR", facts.lastError ?? "crash loop");
  if (!facts.connected) {
    const what = facts.hosted ? "not connected" : "process not running";
    return rate("ERROR", `${what}: ${facts.lastError ?? "not connected"}`);
  }
  if (facts.breaker === "open" || facts.breaker === "isolated") return rate("ERROR", "circuit breaker open");
  if (facts.probe && !facts.probe.ok) return rate("ERROR", `probe failed: ${facts.probe.error}`);
  if (facts.breaker === "half-open") return rate("DEGRADED", "circuit breaker half-open");
  if (p95Ms !== undefined && p95Ms > limits.slowThresholdMs) {
    return rate("DEGRADED", `slow: p95 ${Math.round(p95Ms)} ms over ${limits.slowThresholdMs} ms`);
  }
  if (errorRate !== undefined && errorRate > limits.errorRateThreshold) {
    return rate("DEGRADED", `errors: ${Math.round(errorRate * 100)}% of recent calls failed`);
  }
  return rate("ONLINE", "ok");
}
