import { offsetMinutes } from "../time-zone.js";

/** The most reminders one task may ask for, and the earliest one before its deadline. */
export const maxReminders = 5;
export const maxRemindMinutes = 30 * 24 * 60;

const units: Record<string, number> = {
  m: 1,
  min: 1,
  м: 1,
  мин: 1,
  h: 60,
  ч: 60,
  d: 1440,
  д: 1440,
};

/**
 * Minutes before a deadline from text such as "1h", "30m", "1d", "0" (at the deadline), a
 * few at once ("1h 10m", "1h, 0"), or "none" / "нет" (no reminders). An error names the part
 * it could not read.
 */
export function parseOffsets(text: string): { ok: true; minutes: number[] } | { ok: false; part: string } {
  const trimmed = text.trim().toLowerCase();
  if (/^(none|off|no|нет|без)$/.test(trimmed)) return { ok: true, minutes: [] };
  const minutes: number[] = [];
  for (const part of trimmed.split(/[\s,]+/).filter(Boolean)) {
    const m = /^(\d{1,5})\s*([a-zа-я]*)$/u.exec(part);
    const unit = m ? (m[2] === "" ? (m[1] === "0" ? 1 : undefined) : units[m[2]!]) : undefined;
    if (!m || unit === undefined) return { ok: false, part };
    const value = Number(m[1]) * unit;
    if (value > maxRemindMinutes) return { ok: false, part };
    minutes.push(value);
  }
  if (minutes.length === 0 || minutes.length > maxReminders) return { ok: false, part: text.trim() };
  return { ok: true, minutes: [...new Set(minutes)].sort((a, b) => b - a) };
}

/** "1h", "30m", "1d 2h", "0" as the config and the quick form write an offset. */
export function offsetText(minutes: number): string {
  if (minutes === 0) return "0";
  const d = Math.floor(minutes / 1440);
  const h = Math.floor((minutes % 1440) / 60);
  const m = minutes % 60;
  return [d ? `${d}d` : "", h ? `${h}h` : "", m ? `${m}m` : ""].filter(Boolean).join(" ");
}

/** When each reminder before `deadline` fires; those already past at `now` are left out. */
export function reminderTimes(
  deadline: string,
  minutes: readonly number[],
  now: number,
): Array<{ offsetMs: number; fireAt: number }> {
  const at = Date.parse(deadline);
  if (Number.isNaN(at)) return [];
  return minutes
    .map((m) => ({ offsetMs: m * 60_000, fireAt: at - m * 60_000 }))
    .filter((r) => r.fireAt > now);
}

/** The instant of `hour`:00 tomorrow in `zone`, as seen at `now`. */
export function tomorrowAt(zone: string, now: number, hour = 9): number {
  const local = new Date(now + offsetMinutes(zone, new Date(now)) * 60_000);
  const wall = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate() + 1, hour);
  // The zone's offset at that wall time (it may differ from now's across a clock change).
  const guess = wall - offsetMinutes(zone, new Date(wall)) * 60_000;
  return wall - offsetMinutes(zone, new Date(guess)) * 60_000;
}
