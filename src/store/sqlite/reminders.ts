import { toDue, toPlan, toUpcoming, type PlanRow, type ReminderRow } from "../rows.js";
import type { Db } from "./open-database.js";

/** The reminders table; claims are single statements, so two processes never take one row. */
export function createReminderStore(db: Db, now: () => number) {
  const toPlanRows = db.prepare<[number], PlanRow>(
    `SELECT id, version, state, deadline, chat_id, remind FROM tasks
     WHERE reminders_planned IS NOT version ORDER BY created_at LIMIT ?`,
  );
  const dropBefore = db.prepare<[string]>(
    "DELETE FROM reminders WHERE task_id = ? AND status = 'pending' AND kind = 'before'",
  );
  const dropSnoozes = db.prepare<[string]>(
    "DELETE FROM reminders WHERE task_id = ? AND status = 'pending' AND kind = 'snooze'",
  );
  const insert = db.prepare<[string, number, number, number]>(
    "INSERT INTO reminders (task_id, kind, offset_ms, fire_at, created_at) VALUES (?, 'before', ?, ?, ?)",
  );
  const markPlanned = db.prepare<[string, number]>(
    "UPDATE tasks SET reminders_planned = version WHERE id = ? AND version = ?",
  );
  const claim = db.prepare<[string, number, number, number, number], ReminderRow>(
    `UPDATE reminders SET status = 'firing', lease_owner = ?, lease_expires_at = ?
     WHERE id IN (SELECT r.id FROM reminders r JOIN tasks t ON t.id = r.task_id
                  WHERE t.state = 'open' AND t.chat_id IS NOT NULL
                    AND ((r.status = 'pending' AND r.fire_at <= ?) OR (r.status = 'firing' AND r.lease_expires_at < ?))
                  ORDER BY r.fire_at LIMIT ?)
     RETURNING id, task_id, kind, offset_ms, fire_at,
       (SELECT title FROM tasks WHERE id = task_id) AS title,
       (SELECT deadline FROM tasks WHERE id = task_id) AS deadline,
       (SELECT chat_id FROM tasks WHERE id = task_id) AS chat_id,
       (SELECT user_id FROM tasks WHERE id = task_id) AS user_id`,
  );
  const sent = db.prepare<[number, number, number, string]>(
    `UPDATE reminders SET status = 'sent', fired_at = ?, late = ?, lease_owner = NULL, lease_expires_at = NULL
     WHERE id = ? AND status = 'firing' AND lease_owner = ?`,
  );
  const retry = db.prepare<[number, number, string]>(
    `UPDATE reminders SET status = 'pending', fire_at = ?, lease_owner = NULL, lease_expires_at = NULL
     WHERE id = ? AND status = 'firing' AND lease_owner = ?`,
  );
  const snooze = db.prepare<[number, number, number], { id: number }>(
    `INSERT INTO reminders (task_id, kind, fire_at, snoozed_from, created_at)
     SELECT task_id, 'snooze', ?, id, ? FROM reminders WHERE id = ?
     ON CONFLICT (snoozed_from) DO NOTHING RETURNING id`,
  );
  const taskOf = db.prepare<[number], { task_id: string }>("SELECT task_id FROM reminders WHERE id = ?");
  const upcoming = db.prepare<[string, number], ReminderRow>(
    `SELECT r.id, r.task_id, r.kind, r.offset_ms, r.fire_at, t.title, t.deadline, t.chat_id, t.user_id
     FROM reminders r JOIN tasks t ON t.id = r.task_id
     WHERE t.chat_id = ? AND t.state = 'open' AND r.status <> 'sent'
     ORDER BY r.fire_at, r.id LIMIT ?`,
  );
  const replan = db.transaction(
    (
      taskId: string,
      version: number,
      before: ReadonlyArray<{ offsetMs: number; fireAt: number }>,
      keep: boolean,
    ) => {
      if (markPlanned.run(taskId, version).changes === 0) return false;
      dropBefore.run(taskId);
      if (!keep) dropSnoozes.run(taskId);
      const t = now();
      for (const b of before) insert.run(taskId, b.offsetMs, b.fireAt, t);
      return true;
    },
  );
  return {
    toPlan: (limit: number) => toPlanRows.all(limit).map(toPlan),
    replan: (
      taskId: string,
      version: number,
      before: ReadonlyArray<{ offsetMs: number; fireAt: number }>,
      keepSnoozes: boolean,
    ) => replan.immediate(taskId, version, before, keepSnoozes),
    claim(owner: string, at: number, limit: number, leaseMs: number) {
      return claim.all(owner, at + leaseMs, at, at, limit).map(toDue);
    },
    sent: (id: number, owner: string, late: boolean) => sent.run(now(), late ? 1 : 0, id, owner).changes > 0,
    retry(id: number, owner: string, at: number) {
      retry.run(at, id, owner);
    },
    snooze: (id: number, at: number) => snooze.get(at, now(), id)?.id,
    taskOf: (id: number) => taskOf.get(id)?.task_id,
    upcoming: (chatId: string, limit: number) => upcoming.all(chatId, limit).map(toUpcoming),
  };
}
