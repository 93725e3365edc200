/** A problem (or a notice) for the alert chat: one row of the alert outbox. */
export type AlertKind = "breaker_open" | "degraded" | "error" | "crash_loop" | "recovered" | "rolled_back";

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
}
