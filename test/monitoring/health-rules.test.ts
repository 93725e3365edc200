import { describe, expect, it } from "vitest";
import type { Sample } from "../../src/fleet/fleet.js";
import { percentile, rateHealth, type HealthFacts } from "../../src/monitoring/health-rules.js";

const limits = { slowThresholdMs: 100, errorRateThreshold: 0.5 };
const fast = (n: number, ms = 10): Sample[] => Array.from({ length: n }, (_, i) => ({ ok: true, ms, at: i }));
const healthy: HealthFacts = {
  connected: true,
  crashLooping: false,
  breaker: "closed",
  probe: { ok: true, ms: 5 },
  samples: fast(10),
  lastError: undefined,
};

describe("rateHealth", () => {
  it("is ONLINE when the probe answers, calls are fast and the breaker is closed", () => {
    expect(rateHealth(healthy, limits)).toMatchObject({
      status: "ONLINE",
      p50Ms: 10,
      p95Ms: 10,
      errorRate: 0,
    });
  });

  it.each<[string, Partial<HealthFacts>, string]>([
    ["the breaker is half-open", { breaker: "half-open" }, "circuit breaker half-open"],
    [
      "p95 is over the slow threshold",
      { samples: [...fast(18), ...fast(2, 500)] },
      "slow: p95 500 ms over 100 ms",
    ],
    [
      "most recent calls failed",
      { samples: [...fast(4), ...Array.from({ length: 6 }, (_, i) => ({ ok: false, ms: 1, at: i }))] },
      "errors: 60% of recent calls failed",
    ],
  ])("is DEGRADED when %s", (_, facts, reason) => {
    expect(rateHealth({ ...healthy, ...facts }, limits)).toMatchObject({ status: "DEGRADED", reason });
  });

  it.each<[string, Partial<HealthFacts>, RegExp]>([
    [
      "the process is dead",
      { connected: false, lastError: "the server process exited" },
      /process not running: the server process exited/,
    ],
    [
      "it crash-loops",
      { crashLooping: true, connected: false, lastError: "crash loop: 5 restarts in 300 s" },
      /crash loop/,
    ],
    ["the breaker is open", { breaker: "open" }, /circuit breaker open/],
    [
      "the probe failed (a wedged process)",
      { probe: { ok: false, error: "no answer within 5000 ms" } },
      /probe failed: no answer/,
    ],
  ])("is ERROR when %s", (_, facts, reason) => {
    const rating = rateHealth({ ...healthy, ...facts }, limits);
    expect(rating.status).toBe("ERROR");
    expect(rating.reason).toMatch(reason);
  });

  it("lets ERROR win over DEGRADED", () => {
    expect(rateHealth({ ...healthy, breaker: "open", samples: fast(5, 900) }, limits).status).toBe("ERROR");
  });

  it("takes nearest-rank percentiles", () => {
    expect(percentile([], 0.5)).toBeUndefined();
    expect(percentile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(
      percentile(
        Array.from({ length: 100 }, (_, i) => i + 1),
        0.95,
      ),
    ).toBe(95);
  });
});
