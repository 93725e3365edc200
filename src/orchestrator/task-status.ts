import type { ServerName } from "../config/schema.js";
import { isChangeKind, type Task } from "../domain/task.js";
import { blockedUntil, type OperationState, type StoreQueries } from "../store/store.js";
import type { OrchestratorContext, Parts, TaskEffects } from "./context.js";
import { deriveTaskStatus, isActive } from "./status.js";

/**
 * A task's status, kept with its operations: recomputed inside the transaction that
 * changes them, said (task.settled, task.rolled_back) once that transaction committed.
 * Also the rollback of a task whose required server failed for good.
 */
export class TaskStatus {
  private readonly retry;

  constructor(
    private readonly ctx: OrchestratorContext,
    private readonly parts: Parts,
  ) {
    this.retry = ctx.retry("task events");
  }

  /**
   * Inside the caller's transaction: undoes creates that finished after the task was rolled
   * back (`created`: one just did), releases the task's operations whose wait is over and
   * stores its status as derived from its operations.
   */
  async recompute(tx: StoreQueries, taskId: string, created = false): Promise<TaskEffects & { task?: Task }> {
    // Two instances recording outcomes of one task at once: the second waits for the first
    // to commit and then sees its outcome, so the last one releases what waits for both.
    const task = await tx.tasks.lock(taskId);
    if (!task) return { released: [], settled: false };
    const undo = created && task.rollbackReason ? await tx.operations.rollback(taskId) : 0;
    const operations = await tx.operations.statesOf(taskId);
    const released = waitIsOver(operations)
      ? ((await tx.operations.releaseWaiting(taskId)) as ServerName[])
      : [];
    // Compensations are due at once, on the servers that had the record.
    if (undo > 0)
      released.push(...operations.filter((o) => o.kind === "compensate").map((o) => o.server as ServerName));
    const derived = deriveTaskStatus(operations, task.rollbackReason);
    const changesSettled =
      operations.some((o) => isChangeKind(o.kind)) &&
      !operations.some((o) => isChangeKind(o.kind) && isActive(o));
    if (
      derived.status === task.status &&
      derived.reason === task.statusReason &&
      derived.settled === (task.settledAt !== null)
    ) {
      return { released, settled: false, changesSettled, task };
    }
    // No event row for the settle: nothing reads one back (listeners hear it once committed).
    const at = await tx.tasks.setStatus(taskId, derived.status, derived.reason, derived.settled);
    return {
      released,
      settled: derived.settled,
      changesSettled,
      task: {
        ...task,
        status: derived.status,
        statusReason: derived.reason,
        updatedAt: at,
        settledAt: derived.settled ? at : null,
      },
    };
  }

  /** Once the recompute committed: released work is dispatched, a settled task is said. */
  async committed(taskId: string, effects: TaskEffects): Promise<void> {
    if (effects.released.length > 0) this.parts.dispatcher.schedulePump(effects.released);
    if (!effects.settled && !effects.changesSettled) return;
    let view;
    try {
      view = await this.ctx.store.taskView(taskId);
      this.retry.succeeded();
    } catch (error) {
      // The task settled and that is stored; only the event is lost (waiters read it themselves).
      this.retry.failed(error);
      return;
    }
    if (!view) return;
    if (effects.changesSettled) this.ctx.events.emit("task.changes_settled", view);
    if (!effects.settled) return;
    this.ctx.log.info({ taskId, status: view.task.status, reason: view.task.statusReason }, "task settled");
    this.ctx.events.emit("task.settled", view);
  }

  /** Recomputes a task's status in a transaction of its own, and says what changed. */
  async refresh(taskId: string): Promise<void> {
    await this.committed(taskId, await this.ctx.store.transaction((tx) => this.recompute(tx, taskId)));
  }

  /**
   * Inside the caller's transaction: when a required server's create failed for good, marks
   * the task rolled back, skips its unfinished creates and adds a compensation for each
   * create that succeeded. Returns the reason when it rolled the task back now.
   */
  async rollback(tx: StoreQueries, taskId: string): Promise<string | undefined> {
    const { fleet } = this.ctx;
    const failed = (await tx.operations.forTask(taskId)).find(
      (o) =>
        o.kind === "create" &&
        o.status === "failed" &&
        !o.retryable &&
        fleet.config(o.server as ServerName).required,
    );
    if (!failed) return undefined;
    const reason = `${failed.server} failed for good: ${failed.lastError}`;
    if (!(await tx.tasks.markRolledBack(taskId, reason))) return undefined;
    const n = await tx.operations.rollback(taskId);
    await tx.events.append("task.rolled_back", { taskId }, { reason, compensations: n });
    return reason;
  }

  /** Once a rollback committed: say so, and run its compensations. */
  rolledBack(taskId: string, reason: string): void {
    this.ctx.log.warn({ taskId, reason }, "task rolled back");
    this.ctx.events.emit("task.rolled_back", { taskId, reason });
    this.parts.dispatcher.schedulePump();
  }
}

/** Whether one of these operations of a task is blocked on others that are no longer active. */
function waitIsOver(operations: readonly OperationState[]): boolean {
  return operations.some(
    (o) =>
      o.status === "pending" &&
      o.nextAttemptAt === blockedUntil &&
      // A change waits for the earlier operations on its server; the store knows which are earlier.
      (isChangeKind(o.kind) ||
        o.waitsFor.every((server) =>
          operations.every((p) => p.server !== server || p.kind !== o.kind || !isActive(p)),
        )),
  );
}
