/** A problem (or a notice) for the alert chat: one row of the alert outbox. */
export const alertKinds = [
  "breaker_open",
  "degraded",
  "error",
  "crash_loop",
  "recovered",
  "rolled_back",
] as const;
export type AlertKind = (typeof alertKinds)[number];

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
