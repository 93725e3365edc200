/** A problem (or a notice) for the alert chat: one row of the alert outbox. */
export const alertKinds = [
  "breaker_open",
  "degraded",
  "error",
  "crash_loop",
  "recovered",
  "rolled_back",
  "task_done",
  "task_reopened",
  "task_deleted",
] as const;
export type AlertKind = (typeof alertKinds)[number];

/**
 * A task done, reopened or deleted: a row of the alert outbox for the routes that ask for
 * these kinds by name, born delivered for the alert chat (it is no problem to tell there).
 */
export const taskEventKinds = ["task_done", "task_reopened", "task_deleted"] as const;
export type TaskEventKind = (typeof taskEventKinds)[number];
export function isTaskEvent(kind: AlertKind): kind is TaskEventKind {
  return (taskEventKinds as readonly string[]).includes(kind);
}

export interface Alert {
  id: number;
  kind: AlertKind;
  server: string;
  taskId: string | null;
  status: "open" | "closed";
  firstSeen: number;
  lastSeen: number;
  count: number;
  details: Record<string, unknown>;
  closedAt: number | null;
  deliveredAt: number | null;
  deliveredCount: number;
  /** Who said "I'm on it" while it was open (a Telegram user), and when. */
  acknowledged: Acknowledgement | null;
}

export interface Acknowledgement {
  by: string;
  userId: number;
  at: number;
}
