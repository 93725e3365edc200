import type { ServerName } from "../config/schema.js";
import { storeFault } from "../store/store-health.js";
import { commitDelay } from "./commit-rule.js";
import type { StoreQueries } from "../store/store.js";
import type { OrchestratorContext, Parts, TaskEffects } from "./context.js";

interface Queued {
  taskId: string;
  write: (tx: StoreQueries) => Promise<{ create?: boolean }>;
  resolve: (result: { value: unknown; effects?: TaskEffects }) => void;
  reject: (error: unknown) => void;
}

/**
 * Group commit: outcomes queued together go to the store in one transaction, with the status
 * of each task they touch and, through the dispatcher's hook, the claims for the slots their
 * calls freed. When each outcome goes is `commitDelay`'s rule: a task's ten outcomes take a
 * few commits, not ten. Each caller gets its own write's result; the last caller of each
 * task also gets that task's effects, so its listeners hear of every operation before they
 * hear the task settled.
 *
 * The commit is relaxed (no fsync): if a power cut takes it, the operations are still
 * claimed (running, lease expiring) and the next claim looks on the server before creating
 * again, so nothing is lost or made twice. When the store does not answer, the outcomes
 * stay queued, in order, and are tried again after a backoff or as soon as it answers.
 */
export class CommitQueue {
  private readonly queue: Queued[] = [];
  private timer: { timer: NodeJS.Timeout; due: number } | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly retry;
  private stopped = false;
  /** The commit under way; a flush meanwhile (`again`) runs when it is done. */
  private current: Promise<void> | undefined;
  private again: boolean | undefined;

  constructor(
    private readonly ctx: OrchestratorContext,
    private readonly parts: Parts,
  ) {
    this.retry = ctx.retry("outcome commit");
  }

  /** Outcomes waiting for their commit. */
  get pending(): number {
    return this.queue.length;
  }

  /**
   * Queues an outcome's write (a function of the commit's transaction, run inside it; it may
   * run again if a commit fails) for `server`'s operation of `taskId`.
   */
  enqueue<T extends { create?: boolean }>(
    taskId: string,
    server: ServerName,
    write: (tx: StoreQueries) => Promise<T>,
  ): Promise<{ value: T; effects?: TaskEffects }> {
    return new Promise((resolve, reject) => {
      this.queue.push({
        taskId,
        write: write as Queued["write"],
        resolve: resolve as (result: { value: unknown; effects?: TaskEffects }) => void,
        reject,
      });
      const delay = commitDelay(this.parts.dispatcher.situation(taskId, server));
      if (delay === 0) this.immediate ??= setImmediate(() => this.flush());
      else if (!this.immediate) {
        const due = performance.now() + delay;
        if (!this.timer || this.timer.due > due) {
          clearTimeout(this.timer?.timer);
          this.timer = { timer: setTimeout(() => this.flush(), delay), due };
        }
      }
    });
  }

  /**
   * Writes the queued outcomes. When the store does not answer they stay queued, in order,
   * and are tried again after a backoff, or as soon as the store answers (`force`). One
   * commit at a time: a flush while one is under way follows it.
   */
  flush(force = false): void {
    clearTimeout(this.timer?.timer);
    clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    if (this.current) {
      this.again = (this.again ?? false) || force;
      return;
    }
    if (!force && !this.retry.due) return; // the retry timer flushes them
    clearTimeout(this.retryTimer);
    const batch = this.queue.splice(0);
    if (batch.length === 0) return;
    this.current = this.commit(batch).finally(() => {
      this.current = undefined;
      const again = this.again;
      this.again = undefined;
      if (again !== undefined && this.queue.length > 0) this.flush(again);
    });
  }

  /** `batch` in one transaction, with the statuses it changes and the claims it frees. */
  private async commit(batch: Queued[]): Promise<void> {
    const { status, dispatcher } = this.parts;
    try {
      const { values, effects } = await dispatcher.claiming(async (tx, claims) => {
        // All at once: the store may send outcomes of one turn as one statement.
        const values = await Promise.all(batch.map((c) => c.write(tx)));
        // A create that finished after its task was rolled back is undone as well.
        const created = new Set(batch.filter((_, i) => values[i]!.create).map((c) => c.taskId));
        const effects = new Map<string, TaskEffects>();
        // In id order, as every transaction that updates several tasks does: none waits for another.
        for (const taskId of [...new Set(batch.map((c) => c.taskId))].sort()) {
          effects.set(taskId, await status.recompute(tx, taskId, created.has(taskId)));
        }
        // What these outcomes released, and what waits for the slots their calls freed, is
        // claimed in the same commit (launched once it committed).
        for (const e of effects.values()) {
          dispatcher.markDue(e.released);
          e.released = [];
        }
        await claims.claimFreed();
        return { values, effects };
      }, "relaxed");
      this.retry.succeeded();
      // Whatever the limits left is taken by the next pass.
      dispatcher.schedulePump([]);
      const last = new Map(batch.map((c, i) => [c.taskId, i]));
      batch.forEach((c, i) =>
        c.resolve({
          value: values[i],
          ...(last.get(c.taskId) === i ? { effects: effects.get(c.taskId)! } : {}),
        }),
      );
    } catch (error) {
      if (storeFault(error)) {
        // Kept, ahead of whatever came since; the calls were made, only their record waits.
        this.queue.unshift(...batch);
        const delay = this.retry.failed(error);
        if (!this.stopped) this.retryTimer = setTimeout(() => this.flush(), delay);
        return;
      }
      for (const c of batch) c.reject(error);
      // Its claims rolled back with it: look at every server again.
      dispatcher.schedulePump();
    }
  }

  /** Resolves once no commit is under way (shutdown waits for the last one). */
  async idle(): Promise<void> {
    while (this.current) await this.current;
  }

  /** No more retries on a timer (shutdown flushes what is left itself). */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
  }
}
