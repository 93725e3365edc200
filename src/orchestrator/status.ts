import type { Operation, TaskStatus } from "./task.js";

export interface DerivedStatus {
  status: TaskStatus;
  /** Nothing is running or about to run: every operation finished or waits for its server. */
  settled: boolean;
  reason: string | null;
}

/** A task's status follows its create operations. */
export function deriveTaskStatus(operations: readonly Operation[]): DerivedStatus {
  const ops = operations.filter((o) => o.kind === "create");
  const active = ops.filter((o) => o.status === "running" || (o.status === "pending" && !o.waiting));
  if (active.length > 0) {
    const started = ops.some((o) => o.status !== "pending" || o.attempts > 0);
    return { status: started ? "running" : "pending", settled: false, reason: null };
  }
  const ok = ops.filter((o) => o.status === "done" || o.status === "skipped");
  if (ok.length === ops.length) return { status: "done", settled: true, reason: null };
  const waiting = ops.filter((o) => o.status === "pending");
  const failed = ops.filter((o) => o.status === "failed");
  const parts: string[] = [];
  if (failed.length > 0) parts.push(`failed on ${failed.map((o) => o.server).join(", ")}`);
  if (waiting.length > 0) parts.push(`waiting for ${waiting.map((o) => o.server).join(", ")}`);
  const status = ok.length === 0 && waiting.length === 0 ? "failed" : "partial";
  return { status, settled: true, reason: parts.join("; ") };
}
