/**
 * How long an outcome that neither settles nor releases anything waits to share a commit:
 * briefly while work queues behind full servers (the commit also claims for the slots
 * freed), longer otherwise (until the task's next urgent outcome, as a rule).
 */
export const commitDelayMs = { backlog: 10, idle: 50 };

/** What the group commit knows when an outcome arrives. */
export interface OutcomeSituation {
  /** Some server has more work due than room for it. */
  backlogged: boolean;
  /** Other calls of the outcome's task are still with their servers. */
  taskCallsInFlight: boolean;
  /** It ends the wait of a create that waits for nothing else and could be called now. */
  releasesCreate: boolean;
}

/**
 * How long an outcome waits before its commit (0: on the next turn of the event loop).
 * Under a backlog every outcome waits a little for company; otherwise one that may settle
 * its task, or release a waiting create, goes at once and any other waits for it.
 */
export function commitDelay(s: OutcomeSituation): number {
  if (s.backlogged) return commitDelayMs.backlog;
  return !s.taskCallsInFlight || s.releasesCreate ? 0 : commitDelayMs.idle;
}
