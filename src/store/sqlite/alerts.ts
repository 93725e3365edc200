import { isTaskEvent, type Alert, type AlertKind } from "../../domain/alert.js";
import { toAlert, type AlertRow } from "../rows.js";
import type { Db } from "./open-database.js";

export function createAlertStore(db: Db, now: () => number) {
  const findOpen = db.prepare<[string, string], AlertRow>(
    "SELECT * FROM alerts WHERE kind = ? AND server = ? AND status = 'open' AND task_id IS NULL",
  );
  const bump = db.prepare<[number, string, number]>(
    "UPDATE alerts SET count = count + 1, last_seen = ?, details = ? WHERE id = ?",
  );
  const insert = db.prepare<[string, string, string | null, string, number, number, string, number | null]>(
    `INSERT INTO alerts (kind, server, task_id, status, first_seen, last_seen, details, closed_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  // A task event: born closed, and delivered as far as the alert chat goes.
  const insertEvent = db.prepare<{ kind: string; taskId: string | null; t: number; details: string }>(
    `INSERT INTO alerts (kind, server, task_id, status, first_seen, last_seen, details, closed_at,
       delivered_at, delivered_count)
     VALUES (@kind, '', @taskId, 'closed', @t, @t, @details, @t, @t, 1)`,
  );
  const openForServer = db.prepare<[string], AlertRow>(
    "SELECT * FROM alerts WHERE server = ? AND status = 'open' ORDER BY id",
  );
  const close = db.prepare<[number, number]>(
    "UPDATE alerts SET status = 'closed', closed_at = ? WHERE id = ?",
  );
  const byId = db.prepare<[number], AlertRow>("SELECT * FROM alerts WHERE id = ?");
  const undelivered = db.prepare<[number, number], AlertRow>(
    `SELECT * FROM alerts WHERE delivered_count < count AND (claim_expires_at IS NULL OR claim_expires_at < ?)
     ORDER BY id LIMIT ?`,
  );
  const claimOne = db.prepare<[string, number, number, number]>(
    `UPDATE alerts SET claim_owner = ?, claim_expires_at = ?
     WHERE id = ? AND (claim_expires_at IS NULL OR claim_expires_at < ?)`,
  );
  const delivered = db.prepare<[number, number, number, string]>(
    `UPDATE alerts SET delivered_at = ?, delivered_count = ?, claim_owner = NULL, claim_expires_at = NULL
     WHERE id = ? AND claim_owner = ?`,
  );
  const release = db.prepare<[number, string]>(
    "UPDATE alerts SET claim_owner = NULL, claim_expires_at = NULL WHERE id = ? AND claim_owner = ?",
  );
  const ack = db.prepare<[string, number, number, number]>(
    `UPDATE alerts SET acked_by = ?, acked_by_id = ?, acked_at = ?
     WHERE id = ? AND status = 'open' AND acked_at IS NULL`,
  );
  const recent = db.prepare<[number], AlertRow>("SELECT * FROM alerts ORDER BY id DESC LIMIT ?");
  const openAll = db.prepare<[], AlertRow>("SELECT * FROM alerts WHERE status = 'open' ORDER BY id");

  return {
    /**
     * Records a condition: a repeat of an open alert of the same kind and server updates
     * that row (count, last seen) instead of adding one. Returns the row.
     */
    raise(kind: AlertKind, server: string, details: Record<string, unknown> = {}): Alert {
      return db
        .transaction(() => {
          const t = now();
          const open = findOpen.get(kind, server);
          if (open) {
            bump.run(t, JSON.stringify(details), open.id);
            return toAlert(byId.get(open.id)!);
          }
          const id = insert.run(
            kind,
            server,
            null,
            "open",
            t,
            t,
            JSON.stringify(details),
            null,
          ).lastInsertRowid;
          return toAlert(byId.get(Number(id))!);
        })
        .immediate();
    },
    /** A one-off notice (recovered, rolled back): born closed, still to be delivered. */
    notice(kind: AlertKind, server: string, taskId: string | null, details: Record<string, unknown>): Alert {
      const t = now();
      const id = isTaskEvent(kind)
        ? insertEvent.run({ kind, taskId, t, details: JSON.stringify(details) }).lastInsertRowid
        : insert.run(kind, server, taskId, "closed", t, t, JSON.stringify(details), t).lastInsertRowid;
      return toAlert(byId.get(Number(id))!);
    },
    /** Closes a server's open alerts; returns those it closed. */
    resolve(server: string): Alert[] {
      return db
        .transaction(() => {
          const t = now();
          const open = openForServer.all(server);
          for (const a of open) close.run(t, a.id);
          return open.map(toAlert);
        })
        .immediate();
    },
    open(): Alert[] {
      return openAll.all().map(toAlert);
    },
    recent(limit: number): Alert[] {
      return recent.all(limit).map(toAlert);
    },
    get(id: number): Alert | undefined {
      const row = byId.get(id);
      return row ? toAlert(row) : undefined;
    },
    /** Claims alerts not yet delivered at their current count, for one deliverer at a time. */
    claimUndelivered(owner: string, limit: number, leaseMs: number): Alert[] {
      return db
        .transaction(() => {
          const t = now();
          const claimed: Alert[] = [];
          for (const row of undelivered.all(t, limit)) {
            if (claimOne.run(owner, t + leaseMs, row.id, t).changes === 1) claimed.push(toAlert(row));
          }
          return claimed;
        })
        .immediate();
    },
    /** Marks an alert delivered at `count` (the count the delivered message showed). */
    markDelivered(id: number, owner: string, count: number): boolean {
      return delivered.run(now(), count, id, owner).changes === 1;
    },
    /** Gives a claim back after a failed delivery, so it is tried again. */
    releaseClaim(id: number, owner: string): void {
      release.run(id, owner);
    },
    acknowledge(id: number, by: { name: string; userId: number }): Alert | undefined {
      ack.run(by.name, by.userId, now(), id);
      const row = byId.get(id);
      return row ? toAlert(row) : undefined;
    },
  };
}
