import { describe, expect, it } from "vitest";
import { commitDelay, commitDelayMs } from "../../src/orchestrator/commit-rule.js";

// The group commit's rule; how many commits it saves under load is measured by `npm run bench`.
describe("when an outcome is committed", () => {
  it.each([
    // backlogged, other calls of its task in flight, releases a waiting create → delay
    [true, false, false, commitDelayMs.backlog],
    [true, true, false, commitDelayMs.backlog],
    [true, true, true, commitDelayMs.backlog],
    [false, false, false, 0],
    [false, true, true, 0],
    [false, true, false, commitDelayMs.idle],
  ])(
    "backlog %s, task calls in flight %s, releases a create %s: waits %i ms",
    (backlogged, inFlight, releases, ms) => {
      expect(commitDelay({ backlogged, taskCallsInFlight: inFlight, releasesCreate: releases })).toBe(ms);
    },
  );

  it("waits briefly under a backlog, longer for a task's own company", () => {
    expect(commitDelayMs.backlog).toBeGreaterThan(0);
    expect(commitDelayMs.backlog).toBeLessThan(commitDelayMs.idle);
  });
});
