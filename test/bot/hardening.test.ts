import Database from "better-sqlite3";
import path from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createBot, type TaskfanBot } from "../../src/bot/create-bot.js";
import type { BotDeps, BotSettings } from "../../src/bot/deps.js";
import { botDepsOf } from "../../src/bot/front-end.js";
import { startHarness, type Harness } from "../core-harness.js";
import { onlyServers, silentLog } from "../helpers.js";
import { botInfo, chatWith, fakeTelegram } from "./fake-telegram.js";

const owner = 7;
const member = 9; // in the alert chat, not an allowed user
const alertChat = -100;
let h: Harness;
let deps: BotDeps;
const settings: BotSettings = {
  allowedUserIds: new Set([owner]),
  alertChatId: String(alertChat),
  rateLimitPerMinute: 1000,
  progressEditIntervalMs: 50,
};

beforeAll(async () => {
  h = await startHarness({
    store: { busy_timeout: 0.05, unavailable_after: 0 },
    servers: onlyServers(["memory", "time-tracker"]),
  });
  deps = botDepsOf(h.core, silentLog);
});
afterAll(() => h?.stop());

let tg: ReturnType<typeof fakeTelegram>;
let bot: TaskfanBot;
beforeEach(() => {
  tg = fakeTelegram();
  bot = createBot(deps, settings, { token: "42:TEST", botInfo, fetch: tg.fetch });
});
afterEach(async () => {
  await bot.bot.handleUpdate(chatWith(owner).text("/cancel"));
  bot.progress.stop();
});

const last = () => tg.texts().at(-1) ?? "";
const answers = () => tg.calls.filter((c) => c.method === "answerCallbackQuery").map((c) => c.payload.text);

describe("who may do what", () => {
  it("lets other members of the alert chat read and use the alert buttons, and nothing else", async () => {
    const them = chatWith(member, "en", alertChat);
    const before = await deps.countTasks();
    await bot.bot.handleUpdate(them.text("/newtask Buy a boat"));
    expect(last()).toContain("Only the bot's allowed users can do that.");
    await bot.bot.handleUpdate(them.press("nt:create"));
    await bot.bot.handleUpdate(them.text("/mute all 1h"));
    await bot.bot.handleUpdate(them.text("/tasks"));
    expect(await deps.countTasks()).toBe(before);
    expect(await deps.state.mutes.active()).toEqual([]);
    await bot.bot.handleUpdate(them.text("/health"));
    expect(last()).toMatch(/^Servers: \d of 2 online/);
    await bot.bot.handleUpdate(them.text("/stats"));
    expect(last()).toContain("Tasks:");
    await bot.bot.handleUpdate(them.press("mute:memory:3600"));
    expect(answers().at(-1)).toMatch(/^Muted until /);
    await deps.state.mutes.unmute();
  });

  it("gives them everything with security.alert_chat_access: full", async () => {
    const wide = createBot(
      deps,
      { ...settings, alertChatAccess: "full" },
      { token: "42:TEST", botInfo, fetch: tg.fetch },
    );
    const them = chatWith(member, "en", alertChat);
    const before = await deps.countTasks();
    await wide.bot.handleUpdate(them.text("/newtask Buy a boat | p2"));
    await wide.bot.handleUpdate(them.press("nt:create"));
    expect(await deps.countTasks()).toBe(before + 1);
    wide.progress.stop();
  });
});

describe("buttons are parsed, and a forged one is refused", () => {
  it.each([
    ["mute:*:99999999999999", "a mute until the year 5000"],
    ["mute:nonexistent-server:3600", "an unknown server"],
    ["mute:memory:0", "a mute of no time"],
    ["mute:memory:2592001", "a mute over 30 days"],
    ["tasks:page:5", "a page past the last"],
    ["task:retry:../../etc", "a task id of another shape"],
  ])("%s (%s)", async (data) => {
    const me = chatWith(owner);
    await bot.bot.handleUpdate(me.press(data));
    expect(answers().at(-1)).toBe("That button is not valid.");
    expect(await deps.state.mutes.active()).toEqual([]);
    // /mute still lists mutes afterwards.
    await bot.bot.handleUpdate(me.text("/mute"));
    expect(last()).toContain("Nothing is muted.");
  });
});

describe("long texts and failed sends", () => {
  it("shows a 200-character title and a 4 000-character description within Telegram's limit, and creates the task whole", async () => {
    const me = chatWith(owner);
    const title = "T".repeat(200);
    const description = "word ".repeat(800).trim();
    for (const line of ["/newtask", title, description, "3", "/skip", "/skip"]) {
      await bot.bot.handleUpdate(line === "3" ? me.press("nt:p:3") : me.text(line));
    }
    expect(last()).toContain("New task:");
    expect(last()).toContain(`(${description.length} characters)`);
    for (const text of tg.texts()) expect(text.length).toBeLessThanOrEqual(4096);
    await bot.bot.handleUpdate(me.press("nt:create"));
    const task = (await deps.recentTasks(1, 0))[0]!;
    expect(task.title).toBe(title);
    expect(task.description).toBe(description);
  });

  it("keeps the draft at its step when Telegram refuses a message", async () => {
    const me = chatWith(owner);
    // The title, then /skip for the description, the priority and the deadline.
    for (const line of ["/newtask", "Renew the passport", "/skip", "/skip", "/skip"]) {
      await bot.bot.handleUpdate(me.text(line));
    }
    tg.failNext("sendMessage", { ok: false, error_code: 400, description: "Bad Request: something odd" });
    await bot.bot.handleUpdate(me.text("/skip")); // the tags; the summary is refused
    expect(last()).toBe("⚠️ I could not send that message (Bad Request: something odd). Your draft is kept.");
    // The note carries the summary's buttons, and they work.
    expect(tg.calls.at(-1)!.payload.reply_markup).toMatchObject({
      inline_keyboard: [
        [expect.objectContaining({ callback_data: "nt:create" }), expect.anything(), expect.anything()],
      ],
    });
    const before = await deps.countTasks();
    await bot.bot.handleUpdate(me.press("nt:create"));
    expect(await deps.countTasks()).toBe(before + 1);
    expect((await deps.recentTasks(1, 0))[0]!.title).toBe("Renew the passport");
  });

  it("asks again for text holding control characters, naming the field", async () => {
    const me = chatWith(owner);
    await bot.bot.handleUpdate(me.text("/newtask"));
    await bot.bot.handleUpdate(me.text("bell\u0007"));
    expect(last()).toContain("The title may not hold control characters (U+0007).");
    await bot.bot.handleUpdate(me.text("Fine title"));
    await bot.bot.handleUpdate(me.text("line one\nline two\u0000"));
    expect(last()).toContain("The description may not hold control characters (U+0000)");
    await bot.bot.handleUpdate(me.text("line one\nline two"));
    expect(last()).toContain("How important is it?");
  });
});

describe("a database that does not answer", () => {
  it("keeps the draft, says nothing was created and why, and creates it once the database answers", async () => {
    const me = chatWith(owner);
    for (const line of ["/newtask", "Call the bank", "/skip", "/skip", "/skip", "/skip"]) {
      await bot.bot.handleUpdate(me.text(line));
    }
    expect(last()).toContain("New task:");
    const before = await deps.countTasks();
    const other = new Database(path.join(h.config.data_dir, "taskfan.db"));
    other.exec("BEGIN IMMEDIATE");
    try {
      await bot.bot.handleUpdate(me.press("nt:create"));
      expect(tg.texts()).toContain(
        "Nothing was created: storage unavailable: the database is busy (another process holds its write lock). Your draft is kept; tap Create again in a moment.",
      );
      // /health says so too (asked in the alert chat: this chat is in the conversation).
      await bot.bot.handleUpdate(chatWith(member, "en", alertChat).text("/health"));
      expect(last()).toMatch(/^⛔ Storage unavailable since \d\d:\d\d UTC: the database is busy/);
    } finally {
      other.exec("COMMIT");
      other.close();
    }
    expect(await deps.countTasks()).toBe(before);
    await bot.bot.handleUpdate(me.press("nt:create"));
    expect(await deps.countTasks()).toBe(before + 1);
    expect((await deps.recentTasks(1, 0))[0]!.title).toBe("Call the bank");
  });
});
