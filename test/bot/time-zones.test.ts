import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createBot, type TaskfanBot } from "../../src/bot/create-bot.js";
import type { BotDeps, BotSettings } from "../../src/bot/deps.js";
import { botDepsOf } from "../../src/bot/front-end.js";
import { parseDeadline, parseEditReply, parseQuickForm, type ReadingContext } from "../../scenes/parse.js";
import { formatInZone } from "../../src/time-zone.js";
import { startHarness, type Harness } from "../core-harness.js";
import { onlyServers, silentLog } from "../helpers.js";
import { botInfo, chatWith, fakeTelegram } from "./fake-telegram.js";

// A Saturday: 09:00 UTC, 12:00 in Moscow.
const now = new Date("2026-11-28T09:00:00Z");

describe("deadlines in both languages, whole, in the person's zone", () => {
  const phrases: Array<[string, string]> = [
    ["завтра в 18:00", "2026-11-29T15:00:00.000Z"],
    ["завтра 18:00", "2026-11-29T15:00:00.000Z"],
    ["послезавтра утром", "2026-11-30T03:00:00.000Z"],
    ["в пятницу в 10", "2026-12-04T07:00:00.000Z"],
    ["через 2 часа", "2026-11-28T11:00:00.000Z"],
    ["tomorrow 18:00", "2026-11-29T15:00:00.000Z"],
    ["next friday 10am", "2026-12-04T07:00:00.000Z"],
    ["in 3 days", "2026-12-01T09:00:00.000Z"],
  ];
  const cases = phrases.flatMap(([text, iso]) =>
    (["ru", "en"] as const).map((language) => [text, language, iso]),
  );

  it.each(cases)("%s (a %s speaker in Europe/Moscow) is %s", (text, language, iso) => {
    const at: ReadingContext = { now, zone: "Europe/Moscow", language: language! };
    expect(parseDeadline(text!, at)).toEqual({ ok: true, value: iso });
    // The quick form takes the same text as the deadline, not as the description.
    const quick = parseQuickForm(`Call the bank | ${text} | p2`, at);
    expect(quick).toEqual({ ok: true, value: { title: "Call the bank", deadline: iso, priority: 2 } });
  });

  it("reads the wall-clock time with the offset of the day it falls on (daylight saving)", () => {
    // New York changes from UTC-4 to UTC-5 on 1 Nov 2026; 18:00 after it is 23:00 UTC.
    const at = { now: new Date("2026-10-30T12:00:00Z"), zone: "America/New_York", language: "en" };
    expect(parseDeadline("2026-11-02 18:00", at)).toEqual({ ok: true, value: "2026-11-02T23:00:00.000Z" });
    expect(parseDeadline("2026-10-31 18:00", at)).toEqual({ ok: true, value: "2026-10-31T22:00:00.000Z" });
  });
});

describe("reminders in the quick form, and edits by reply", () => {
  const at: ReadingContext = { now, zone: "Europe/Moscow", language: "ru" };
  it("reads `remind` in the quick form, and names what it cannot read", () => {
    expect(parseQuickForm("Pay rent | завтра 18:00 | remind 1h 0", at)).toEqual({
      ok: true,
      value: { title: "Pay rent", deadline: "2026-11-29T15:00:00.000Z", remind: [60, 0] },
    });
    expect(parseQuickForm("Pay rent | напомнить 30м", at)).toMatchObject({
      ok: true,
      value: { remind: [30] },
    });
    expect(parseQuickForm("Pay rent | remind none", at)).toMatchObject({ ok: true, value: { remind: [] } });
    expect(parseQuickForm("Pay rent | remind soon", at)).toEqual({
      ok: false,
      error: { key: "err-remind-bad", vars: { part: "soon" } },
    });
  });

  it("reads one field a line, English or Russian keys, and is no edit for other text", () => {
    expect(parseEditReply("title: Buy oat milk\nсрок: завтра 18:00\n#shop #home\np1", at)).toEqual({
      ok: true,
      value: {
        title: "Buy oat milk",
        deadline: "2026-11-29T15:00:00.000Z",
        tags: ["shop", "home"],
        priority: 1,
      },
    });
    expect(parseEditReply("deadline: none", at)).toEqual({ ok: true, value: { deadline: null } });
    expect(parseEditReply("priority: 7", at)).toEqual({ ok: false, error: { key: "err-priority" } });
    expect(parseEditReply("title: x\nand more", at)).toMatchObject({
      ok: false,
      error: { key: "err-edit-unknown" },
    });
    expect(parseEditReply("thanks, looks good", at)).toBeUndefined();
    expect(parseEditReply("note: call first", at)).toBeUndefined();
  });
});

describe("a user's own time zone in the chat", () => {
  const owner = 7;
  let h: Harness;
  let deps: BotDeps;
  let tg: ReturnType<typeof fakeTelegram>;
  let bot: TaskfanBot;
  const settings: BotSettings = {
    allowedUserIds: new Set([owner]),
    alertChatId: undefined,
    rateLimitPerMinute: 1000,
  };
  const last = () => tg.texts().at(-1) ?? "";

  beforeAll(async () => {
    h = await startHarness({ timezone: "UTC", servers: onlyServers(["memory"]) });
    deps = botDepsOf(h.core, silentLog);
  });
  afterAll(() => h?.stop());
  beforeEach(() => {
    tg = fakeTelegram();
    bot = createBot(deps, settings, { token: "42:TEST", botInfo, fetch: tg.fetch });
  });
  afterEach(async () => {
    await bot.bot.handleUpdate(chatWith(owner).text("/cancel"));
    bot.progress.stop();
  });

  it("reads 'завтра в 18:00' from a user in Moscow as 15:00 UTC, and shows it back as 18:00", async () => {
    // Moscow keeps UTC+3 all year: tomorrow there, 18:00, is 15:00 UTC.
    const moscow = new Date(Date.now() + 3 * 3_600_000);
    const tomorrow = new Date(
      Date.UTC(moscow.getUTCFullYear(), moscow.getUTCMonth(), moscow.getUTCDate() + 1, 15),
    ).toISOString();
    const shown = formatInZone(tomorrow, "Europe/Moscow", "ru");
    expect(shown).toMatch(/^\S+ \d{1,2} \S+ 18:00 \(Europe\/Moscow\)$/);
    const ru = chatWith(owner, "ru");
    await bot.bot.handleUpdate(ru.text("/timezone Москва"));
    expect(last()).toMatch(
      /^✅ Часовой пояс: Europe\/Moscow \(сейчас \S+ \d{1,2} \S+ \d\d:\d\d \(Europe\/Moscow\)\)\.$/,
    );
    for (const line of ["/newtask", "Позвонить в банк", "/skip", "/skip", "завтра в 18:00", "/skip"]) {
      await bot.bot.handleUpdate(ru.text(line));
    }
    expect(last()).toContain(`• Срок: ${shown}`);
    await bot.bot.handleUpdate(ru.press("nt:create"));
    const task = (await deps.recentTasks(1, 0))[0]!;
    expect(task.deadline).toBe(tomorrow);
    await bot.bot.handleUpdate(ru.text(`/task ${task.id}`));
    expect(last()).toContain(`срок ${shown}`);
    await bot.bot.handleUpdate(ru.text("/tasks"));
    expect(last()).toContain(`${task.id} · Позвонить в банк · срок ${shown}`);
    // The quick form reads it the same way.
    await bot.bot.handleUpdate(ru.text("/newtask Встреча | завтра в 18:00"));
    expect(last()).toContain(`• Срок: ${shown}`);
  });

  it("shows the default zone to a user who chose none, offers common zones, and refuses one it does not know", async () => {
    const other = chatWith(8);
    const bot8 = createBot(
      deps,
      { ...settings, allowedUserIds: new Set([8]) },
      { token: "42:TEST", botInfo, fetch: tg.fetch },
    );
    await bot8.bot.handleUpdate(other.text("/timezone"));
    expect(last()).toMatch(/^Your time zone: UTC \(now \w{3} \d{1,2} \w{3} \d\d:\d\d \(UTC\)\)\./);
    expect(JSON.stringify(tg.calls.at(-1)!.payload.reply_markup)).toContain(
      '"callback_data":"tz:Europe/Berlin"',
    );
    await bot8.bot.handleUpdate(other.text("/timezone Mars/Base"));
    expect(last()).toContain('I do not know the time zone "Mars/Base".');
    await bot8.bot.handleUpdate(other.press("tz:America/New_York"));
    expect(await deps.timezoneOf(8)).toBe("America/New_York");
    await bot8.bot.handleUpdate(other.press("tz:Mars/Base"));
    expect(tg.calls.at(-1)!.payload.text).toBe("That button is not valid.");
    await bot8.bot.handleUpdate(other.text("/timezone UTC+3"));
    expect(last()).toContain("Time zone set: UTC+03:00");
    bot8.progress.stop();
  });
});
