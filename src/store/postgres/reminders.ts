import { toDue, toPlan, toUpcoming, type PlanRow, type ReminderRow } from "../rows.js";
import type { ReminderStore } from "../store.js";
import { atomic, statementsOn, type Queryable } from "./sql.js";

/**
 * The reminders table. A claim takes due rows with FOR UPDATE SKIP LOCKED, so instances
 * claiming at once each get others; a claim whose lease ran out is taken again.
 */
export function createReminderStore(q: Queryable, now: () => number): ReminderStore {
  const { rows, changes } = statementsOn(q);
  return {
    async toPlan(limit) {
      const found = await rows<PlanRow>(
        `SELECT id, version, state, deadline, chat_id, remind FROM tasks
         WHERE reminders_planned IS DISTINCT FROM version ORDER BY created_at LIMIT $1`,
        [limit],
      );
      return found.map(toPlan);
    },
    replan(taskId, version, before, keepSnoozes) {
      return atomic(q, async (c) => {
        const tx = statementsOn(c);
        const marked = await tx.changes(
          "UPDATE tasks SET reminders_planned = version WHERE id = $1 AND version = $2",
          [taskId, version],
        );
        if (marked === 0) return false;
        await tx.changes(
          `DELETE FROM reminders WHERE task_id = $1 AND status = 'pending' AND (kind = 'before' OR NOT $2)`,
          [taskId, keepSnoozes],
        );
        const t = now();
        for (const b of before) {
          await tx.changes(
            "INSERT INTO reminders (task_id, kind, offset_ms, fire_at, created_at) VALUES ($1, 'before', $2, $3, $4)",
            [taskId, b.offsetMs, b.fireAt, t],
          );
        }
        return true;
      });
    },
    async claim(owner, at, limit, leaseMs) {
      const claimed = await rows<ReminderRow>(
        `WITH due AS (
           SELECT r.id FROM reminders r JOIN tasks t ON t.id = r.task_id
           WHERE t.state = 'open' AND t.chat_id IS NOT NULL
             AND ((r.status = 'pending' AND r.fire_at <= $3) OR (r.status = 'firing' AND r.lease_expires_at < $3))
           ORDER BY r.fire_at LIMIT $4 FOR UPDATE OF r SKIP LOCKED),
         taken AS (
           UPDATE reminders SET status = 'firing', lease_owner = $1, lease_expires_at = $2
           FROM due WHERE reminders.id = due.id
           RETURNING reminders.id, reminders.task_id, reminders.kind, reminders.offset_ms, reminders.fire_at)
         SELECT taken.*, t.title, t.deadline, t.chat_id, t.user_id
         FROM taken JOIN tasks t ON t.id = taken.task_id ORDER BY taken.fire_at`,
        [owner, at + leaseMs, at, limit],
      );
      return claimed.map(toDue);
    },
    async sent(id, owner, late) {
      return (
        (await changes(
          `UPDATE reminders SET status = 'sent', fired_at = $1, late = $2, lease_owner = NULL, lease_expires_at = NULL
           WHERE id = $3 AND status = 'firing' AND lease_owner = $4`,
          [now(), late, id, owner],
        )) > 0
      );
    },
    async retry(id, owner, at) {
      await changes(
        `UPDATE reminders SET status = 'pending', fire_at = $1, lease_owner = NULL, lease_expires_at = NULL
         WHERE id = $2 AND status = 'firing' AND lease_owner = $3`,
        [at, id, owner],
      );
    },
    async snooze(id, at) {
      const [row] = await rows<{ id: number }>(
        `INSERT INTO reminders (task_id, kind, fire_at, snoozed_from, created_at)
         SELECT task_id, 'snooze', $1, id, $2 FROM reminders WHERE id = $3
         ON CONFLICT (snoozed_from) DO NOTHING RETURNING id`,
        [at, now(), id],
      );
      return row?.id;
    },
    async taskOf(id) {
      const [row] = await rows<{ task_id: string }>("SELECT task_id FROM reminders WHERE id = $1", [id]);
      return row?.task_id;
    },
    async upcoming(chatId, limit) {
      const found = await rows<ReminderRow>(
        `SELECT r.id, r.task_id, r.kind, r.fire_at, t.title, t.deadline
         FROM reminders r JOIN tasks t ON t.id = r.task_id
         WHERE t.chat_id = $1 AND t.state = 'open' AND r.status <> 'sent'
         ORDER BY r.fire_at, r.id LIMIT $2`,
        [chatId, limit],
      );
      return found.map(toUpcoming);
    },
  };
}
