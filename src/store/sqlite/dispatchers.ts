import type { Db } from "./open-database.js";

export function createDispatcherStore(db: Db, now: () => number) {
  const all = db.prepare<[], { owner: string; process: string }>("SELECT owner, process FROM dispatchers");
  const remove = db.prepare<[string]>("DELETE FROM dispatchers WHERE owner = ?");
  const insert = db.prepare<[string, string, number]>(
    "INSERT OR REPLACE INTO dispatchers (owner, process, started_at) VALUES (?, ?, ?)",
  );
  // One statement per status, each on that status's index.
  const recheck = (["pending", "running"] as const).map((status) =>
    db.prepare<[number]>(
      `UPDATE operations SET recheck = 1, updated_at = ? WHERE status = '${status}' AND recheck = 0`,
    ),
  );
  // A dead run's claims: nothing of its runs any more, so they need not wait for their leases.
  const releaseOf = db.prepare<[number, string]>(
    `UPDATE operations SET status = 'pending', recheck = 1, lease_owner = NULL, lease_expires_at = NULL,
       updated_at = ? WHERE status = 'running' AND lease_owner = ?`,
  );
  return {
    /**
     * Registers a starting dispatcher. Runs whose process is gone (`isGone`) did not stop
     * cleanly: their rows are removed, their claims go back to pending at once, and every
     * unfinished operation is marked to be looked up before it is created. Returns those
     * runs' owners and how many were marked.
     */
    register(owner: string, process: string, isGone: (process: string) => boolean) {
      return db
        .transaction(() => {
          const gone = all.all().filter((r) => r.owner !== owner && isGone(r.process));
          for (const r of gone) remove.run(r.owner);
          const rechecked =
            gone.length > 0 ? recheck.reduce((n, statement) => n + statement.run(now()).changes, 0) : 0;
          for (const r of gone) releaseOf.run(now(), r.owner);
          insert.run(owner, process, now());
          return { gone: gone.map((r) => r.owner), rechecked };
        })
        .immediate();
    },
    /** A clean stop: nothing this run claimed is left unrecorded. */
    unregister(owner: string): void {
      remove.run(owner);
    },
  };
}
