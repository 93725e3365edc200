import type { Operation } from "../domain/task.js";
import { TaskfanError } from "../errors.js";
import type { ClaimRef } from "../store/store.js";
import type { OrchestratorContext } from "./context.js";

/** The claim is no longer this dispatcher's: its call must not go out, its outcome is not written. */
export class LeaseLostError extends TaskfanError {
  constructor(message = "another dispatcher took over this operation") {
    super(message);
  }
}

/** One claim of one operation, held by one run of it. */
export interface Lease {
  readonly id: number;
  /** The claim as the store knows it now: what the outcome's write names. */
  readonly claim: Readonly<ClaimRef>;
}

interface Held extends Lease {
  claim: ClaimRef;
  /** Until when the lease is surely this dispatcher's (by this process's clock, from before the write). */
  until: number;
}

/**
 * The leases of this dispatcher's claims, as far as it knows them, and the fence every
 * attempt passes: a call goes out only while the claim is still this dispatcher's with at
 * least one call timeout of lease left. A lease known to last long enough (the claim or a
 * renewal set it, and this process's clock has not passed it) needs no round trip; any
 * other (after a pause, a starved heartbeat, a retry) is renewed by a conditional write
 * of the claim, owner and token, first. A lease that ran out is never renewed: another
 * dispatcher may have called the server since.
 */
export class Leases {
  /** The latest claim of each operation held here (an older run of it keeps its own, stale one). */
  private readonly held = new Map<number, Held>();
  private readonly retries;

  constructor(private readonly ctx: OrchestratorContext) {
    this.retries = { renewal: ctx.retry("lease renewal"), fence: ctx.retry("lease check") };
  }

  /** A claim committed: its lease, as the claim wrote it, for the run of the operation. */
  hold(op: Operation): Lease {
    const lease: Held = {
      id: op.id,
      claim: { owner: this.ctx.owner, token: op.attempts },
      until: op.leaseExpiresAt ?? this.ctx.now(),
    };
    this.held.set(op.id, lease);
    return lease;
  }

  /** The run is over. */
  drop(lease: Lease): void {
    if (this.held.get(lease.id) === lease) this.held.delete(lease.id);
  }

  /** The heartbeat: renews every lease still held; one that ran out is left to run out. */
  async renew(): Promise<void> {
    if (this.held.size === 0) return;
    const { store, owner, leaseMs, now } = this.ctx;
    const t = now();
    const renewed = await this.retries.renewal.run(() => store.operations.renewLeases(owner, leaseMs));
    for (const id of renewed ?? []) {
      const h = this.held.get(id);
      if (h) h.until = Math.max(h.until, t + leaseMs);
    }
  }

  /**
   * As a call's turn comes: throws LeaseLostError if the lease this run knows has run out
   * (by this process's clock) since the attempt's fence.
   */
  check(lease: Lease): void {
    if ((lease as Held).until <= this.ctx.now())
      throw new LeaseLostError("the lease ran out before the call went out");
  }

  /**
   * Before attempt `attempt` of a run, whose calls may take `callMs`: resolves once the
   * lease is this run's for at least that long, counting a retry (the token moves on);
   * throws LeaseLostError when the claim is gone, or cannot be confirmed because the store
   * does not answer (the lease then runs out and the operation is claimed again).
   */
  async fence(lease: Lease, attempt: number, callMs: number): Promise<void> {
    const h = lease as Held;
    const { store, leaseMs, now } = this.ctx;
    const t = now();
    if (attempt === 1 && h.until - t >= callMs) return;
    const claim = { ...h.claim };
    // A lease shorter than the call's timeout is lengthened for it.
    const ms = Math.max(leaseMs, callMs);
    const confirmed = await this.retries.fence.run(() =>
      attempt === 1
        ? store.operations.renewClaim(h.id, claim, ms)
        : store.operations.startAttempt(h.id, claim, ms),
    );
    if (confirmed === undefined) {
      throw new LeaseLostError("the store does not answer, so the lease cannot be confirmed");
    }
    if (!confirmed) throw new LeaseLostError();
    if (attempt > 1) h.claim.token += 1;
    h.until = Math.max(h.until, t + ms);
  }
}
