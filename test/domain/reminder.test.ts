import { describe, expect, it } from "vitest";
import { offsetText, parseOffsets, reminderTimes, tomorrowAt } from "../../src/domain/reminder.js";

describe("reminder times", () => {
  it("reads times before a deadline in English and Russian units, and names the part it cannot read", () => {
    expect(parseOffsets("30m")).toEqual({ ok: true, minutes: [30] });
    expect(parseOffsets("1h, 0")).toEqual({ ok: true, minutes: [60, 0] });
    expect(parseOffsets("10m 1d 2ч 10м")).toEqual({ ok: true, minutes: [1440, 120, 10] });
    expect(parseOffsets("none")).toEqual({ ok: true, minutes: [] });
    expect(parseOffsets("нет")).toEqual({ ok: true, minutes: [] });
    expect(parseOffsets("1h soon")).toEqual({ ok: false, part: "soon" });
    expect(parseOffsets("5")).toEqual({ ok: false, part: "5" });
    expect(parseOffsets("31d")).toEqual({ ok: false, part: "31d" });
    expect(parseOffsets("1m 2m 3m 4m 5m 6m")).toMatchObject({ ok: false });
    expect([0, 30, 60, 90, 1440 + 61].map(offsetText)).toEqual(["0", "30m", "1h", "1h 30m", "1d 1h 1m"]);
  });

  it("leaves out the reminders already past when planned", () => {
    const deadline = "2026-12-05T18:00:00.000Z";
    const at = Date.parse(deadline);
    expect(reminderTimes(deadline, [60, 0], at - 30 * 60_000)).toEqual([{ offsetMs: 0, fireAt: at }]);
    expect(reminderTimes(deadline, [60, 0], at - 2 * 3_600_000)).toEqual([
      { offsetMs: 3_600_000, fireAt: at - 3_600_000 },
      { offsetMs: 0, fireAt: at },
    ]);
  });

  it("finds 9:00 tomorrow in the reader's zone, across a clock change", () => {
    // 23:30 in Moscow (UTC+3) on 4 December: tomorrow is the 5th.
    expect(new Date(tomorrowAt("Europe/Moscow", Date.parse("2026-12-04T20:30:00Z"))).toISOString()).toBe(
      "2026-12-05T06:00:00.000Z",
    );
    expect(new Date(tomorrowAt("UTC", Date.parse("2026-12-04T08:00:00Z"))).toISOString()).toBe(
      "2026-12-05T09:00:00.000Z",
    );
    // New York springs forward on 8 March 2026: 9:00 on the 8th is UTC-4.
    expect(new Date(tomorrowAt("America/New_York", Date.parse("2026-03-07T15:00:00Z"))).toISOString()).toBe(
      "2026-03-08T13:00:00.000Z",
    );
  });
});
