import type { ServerName } from "../config/schema.js";
import { isChangeKind, type ChangeKind, type Operation, type Task } from "../domain/task.js";
import { describeError } from "../errors.js";
import { classify, mayHaveReachedServer } from "../fleet/policy.js";
import { noToolFor, type CallTool, type CreateOutcome } from "../integrations/integration.js";
import type { OrchestratorContext, Parts } from "./context.js";
import { LeaseLostError, type Lease } from "./leases.js";

type AttemptOutcome = CreateOutcome & { verified?: boolean };

/** How one operation ended, as its record says. */
type Outcome =
  | { kind: "done"; outcome: AttemptOutcome }
  | { kind: "waiting"; reason: string; until: number }
  | { kind: "failed"; error: unknown; message: string; retryable: boolean };

/**
 * Runs one claimed operation under its server's policy: creates the task's record (or,
 * for a compensation, undoes it), looking first whenever an earlier attempt may have
 * reached the server, so a retry never makes a second copy; then records the outcome.
 * Every attempt, the first included, passes the lease fence before its calls go out.
 */
export class OperationRunner {
  constructor(
    private readonly ctx: OrchestratorContext,
    private readonly parts: Parts,
  ) {}

  async run(op: Operation, task: Task, lease: Lease): Promise<void> {
    const { fleet, events } = this.ctx;
    const { leases } = this.parts;
    const server = op.server as ServerName;
    events.emit("operation.started", { taskId: op.taskId, operationId: op.id, server, attempt: op.attempts });
    const integration = fleet.integration(server);
    const callMs = fleet.config(server).timeout * 1000;
    let recheck = op.recheck;
    const started = performance.now();
    // A change goes to the record its task's create made there: none, and it is skipped.
    const target = isChangeKind(op.kind) ? await this.recordOf(op) : undefined;
    if (typeof target === "object") {
      this.parts.dispatcher.callEnded(lease, true);
      return this.record(op, lease, { kind: "done", outcome: target }, 0, recheck);
    }
    let outcome: AttemptOutcome;
    try {
      outcome = await fleet.execute<AttemptOutcome>(
        server,
        async ({ call, signal, attempt, tools }) => {
          // The claim counted the first attempt; a retry is counted here. Either goes out
          // only with this attempt's time left on the lease.
          await leases.fence(lease, attempt, callMs);
          if (isChangeKind(op.kind)) {
            const kind: ChangeKind = op.kind;
            const remoteId = target ?? "";
            if (!integration.change) return noToolFor(server, kind);
            try {
              const done = await integration.change(
                {
                  kind,
                  remoteId,
                  key: op.idempotencyKey,
                  recheck: recheck || attempt > 1,
                  has: (t) => tools.has(t),
                },
                task,
                call,
                signal,
              );
              return done.skipped !== undefined
                ? { skipped: done.skipped }
                : { remoteId: done.remoteId ?? remoteId };
            } catch (error) {
              if (mayHaveReachedServer(error)) recheck = true;
              throw error;
            }
          }
          if (op.kind === "compensate") {
            // Undo: look first when an earlier attempt may have done it already.
            if ((recheck || attempt > 1) && (await this.alreadyUndone(op, task, call, signal))) {
              return { remoteId: op.remoteId ?? "", verified: true };
            }
            try {
              await integration.compensate(task, op.remoteId ?? "", call, signal);
            } catch (error) {
              if (mayHaveReachedServer(error)) recheck = true;
              throw error;
            }
            return { remoteId: op.remoteId ?? "" };
          }
          if (recheck || attempt > 1) {
            const found = await integration.verify(task, op.remoteId, call, signal);
            if (found.found) return { remoteId: found.remoteId, verified: true };
          }
          try {
            return await integration.create(task, call, signal);
          } catch (error) {
            if (mayHaveReachedServer(error)) recheck = true;
            throw error;
          }
        },
        this.ctx.shutdown.signal,
        () => leases.check(lease),
      );
    } catch (error) {
      const ms = performance.now() - started;
      const at = { taskId: op.taskId, server, operationId: op.id };
      if (error instanceof LeaseLostError) {
        this.ctx.log.warn(
          { ...at, reason: error.message },
          "lease lost; leaving the operation to its next holder",
        );
        return;
      }
      if (this.ctx.shutdown.signal.aborted) {
        this.ctx.log.info(at, "operation interrupted by shutdown");
        return; // the shutdown returns it to pending
      }
      const message = describeError(error);
      const advice = classify(error);
      // Not called (its circuit is open, its server down), or a transient failure that opened
      // the circuit: wait for the server.
      if (advice.retry === "later" || (advice.retry === "now" && fleet.breakerState(server) === "open")) {
        const availability = fleet.availability(server);
        const reason = availability.ok ? message : availability.reason;
        const until = availability.ok ? this.ctx.now() + 1000 : availability.retryAt;
        return this.record(op, lease, { kind: "waiting", reason, until }, ms, recheck);
      }
      return this.record(
        op,
        lease,
        { kind: "failed", error, message, retryable: advice.retry === "now" },
        ms,
        recheck,
      );
    }
    const ms = performance.now() - started;
    this.parts.dispatcher.callEnded(lease, true);
    this.parts.dispatcher.answered(server, ms);
    return this.record(op, lease, { kind: "done", outcome }, ms, recheck);
  }

  /**
   * Every outcome, the same way: written through the group commit (with the task's status,
   * and for a required server's "no", the task's rollback), then logged and said.
   */
  private async record(op: Operation, lease: Lease, o: Outcome, ms: number, recheck: boolean): Promise<void> {
    const { log, events, config, now } = this.ctx;
    const { status, commits } = this.parts;
    const server = op.server as ServerName;
    const ref = { taskId: op.taskId, operationId: op.id, kind: op.kind };
    // The store writes it only while the claim is still this one (owner and token).
    const { claim } = lease;
    const { value, effects } = await commits.enqueue(op.taskId, server, async (tx) => {
      switch (o.kind) {
        case "done": {
          const skipped = "skipped" in o.outcome;
          const remoteId = "skipped" in o.outcome ? null : o.outcome.remoteId;
          const ok = await tx.operations.finish(op.id, claim, {
            status: skipped ? "skipped" : "done",
            remoteId,
            note: "skipped" in o.outcome ? o.outcome.skipped : undefined,
            durationMs: ms,
          });
          if (ok) {
            await tx.events.append("operation.done", ref, {
              server,
              ms: Math.round(ms),
              remoteId,
              ...("skipped" in o.outcome ? { skipped: o.outcome.skipped } : {}),
              ...(o.outcome.verified ? { verified: true } : {}),
            });
          }
          return { ok, create: ok && op.kind === "create" };
        }
        case "waiting": {
          const ok = await tx.operations.park(op.id, claim, {
            reason: o.reason,
            until: o.until,
            durationMs: ms,
            recheck,
          });
          if (ok) await tx.events.append("operation.waiting", ref, { server, reason: o.reason });
          return { ok };
        }
        case "failed": {
          const ok = await tx.operations.fail(op.id, claim, {
            error: o.message,
            retryable: o.retryable,
            durationMs: ms,
            recheck,
            recoverAt: o.retryable ? now() + config.recovery.delay * 1000 : undefined,
          });
          if (!ok) return { ok };
          await tx.events.append("operation.failed", ref, {
            server,
            error: o.message,
            retryable: o.retryable,
          });
          // A required server's "no" rolls the task back, in the same commit.
          return { ok, rolledBack: o.retryable ? undefined : await status.rollback(tx, op.taskId) };
        }
      }
    });
    const at = { ...ref, server };
    if (!value.ok) {
      log.warn(
        { ...at, outcome: o.kind, token: claim.token },
        "outcome not recorded: the operation was claimed by another holder meanwhile",
      );
    }
    switch (o.kind) {
      case "done": {
        const remoteId = "skipped" in o.outcome ? null : o.outcome.remoteId;
        if (value.ok) {
          log.info(
            { ...at, ms: Math.round(ms), remoteId, verified: o.outcome.verified ?? false },
            "skipped" in o.outcome ? "operation skipped" : "operation done",
          );
          events.emit("operation.done", { ...ref, server, ms, remoteId, skipped: "skipped" in o.outcome });
        }
        break;
      }
      case "waiting":
        log.warn({ ...at, reason: o.reason }, "operation waits for its server");
        if (value.ok) events.emit("operation.waiting", { ...ref, server, error: o.reason });
        break;
      case "failed":
        log.warn({ ...at, err: o.error, retryable: o.retryable }, "operation failed");
        if (value.ok) {
          events.emit("operation.failed", { ...ref, server, ms, error: o.message, retryable: o.retryable });
        }
        break;
    }
    if ("rolledBack" in value && value.rolledBack) status.rolledBack(op.taskId, value.rolledBack);
    if (effects) await status.committed(op.taskId, effects);
  }

  /**
   * The record a change goes to: its task's create's remote id on this server, or why there
   * is none (the create failed or was skipped there), as the change's skip.
   */
  private async recordOf(op: Operation): Promise<string | { skipped: string }> {
    if (op.remoteId) return op.remoteId;
    const create = (await this.ctx.store.operations.forTask(op.taskId)).find(
      (o) => o.kind === "create" && o.server === op.server,
    );
    if (create?.status === "done" && create.remoteId) return create.remoteId;
    return {
      skipped: `the task never reached ${op.server} (its create ${create ? create.status : "is missing"})`,
    };
  }

  /** Whether an earlier attempt already undid this record. */
  private async alreadyUndone(
    op: Operation,
    task: Task,
    call: CallTool,
    signal: AbortSignal,
  ): Promise<boolean> {
    const integration = this.ctx.fleet.integration(op.server as ServerName);
    if (integration.isUndone) return integration.isUndone(task, op.remoteId ?? "", call, signal);
    const found = await integration.verify(task, op.remoteId, call, signal);
    return !found.found;
  }
}
