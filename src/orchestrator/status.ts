import type { Operation, TaskStatus } from "../domain/task.js";

/** What a task's status is derived from: a few fields of each of its operations. */
type StatusInput = Pick<Operation, "server" | "kind" | "status" | "waiting" | "attempts">;

export interface DerivedStatus {
  status: TaskStatus;
  /** Nothing is running or about to run: every operation finished or waits for its server. */
  settled: boolean;
  reason: string | null;
}

/** Running, or pending and not parked: it will run without anyone's help. */
export const isActive = (o: StatusInput) => o.status === "running" || (o.status === "pending" && !o.waiting);

/**
 * A task's status follows its operations. Once rolled back (`rollback` holds why), it
 * stays rolled back and settles when every compensation has finished.
 */
export function deriveTaskStatus(
  operations: readonly StatusInput[],
  rollback?: string | null,
): DerivedStatus {
  if (rollback) {
    const undo = operations.filter((o) => o.kind === "compensate");
    const settled = !operations.some(isActive);
    const failed = undo.filter((o) => o.status === "failed").map((o) => o.server);
    const waiting = undo.filter((o) => o.status === "pending" && o.waiting).map((o) => o.server);
    const parts = [rollback];
    if (failed.length > 0) parts.push(`undo failed on ${failed.join(", ")}`);
    if (waiting.length > 0) parts.push(`undo waiting for ${waiting.join(", ")}`);
    return { status: "rolled_back", settled, reason: parts.join("; ") };
  }
  const ops = operations.filter((o) => o.kind === "create");
  const active = ops.filter(isActive);
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
