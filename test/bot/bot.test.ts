import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { AlertDelivery } from "../../src/bot/alert-delivery.js";
import { Reminders } from "../../src/bot/reminders.js";
import { createBot, type TaskfanBot } from "../../src/bot/create-bot.js";
import type { BotDeps, BotSettings } from "../../src/bot/deps.js";
import { botDepsOf } from "../../src/bot/front-end.js";
import { recover } from "../../src/monitoring/alert-rules.js";
import { AlertRoutes } from "../../src/alerts/route-delivery.js";
import { senderFor } from "../../src/alerts/senders.js";
import type { TelegramSend } from "../../src/alerts/telegram.js";
import { formatAlert } from "../../src/bot/alert-format.js";
import type { AlertRouteConfig } from "../../src/config/schema.js";
import type { Alert } from "../../src/domain/alert.js";
import { faultServerPath, startHarness, type Harness } from "../core-harness.js";
import { onlyServers, silentLog } from "../helpers.js";
import { botInfo, chatWith, fakeTelegram } from "./fake-telegram.js";

const owner = 7;
let h: Harness;
let deps: BotDeps;
const settings: BotSettings = {
  allowedUserIds: new Set([owner]),
  alertChatId: "-100",
  rateLimitPerMinute: 100,
  progressEditIntervalMs: 50,
};

beforeAll(async () => {
  h = await startHarness({
    servers: onlyServers(["deltatask", "memory", "time-tracker"], {
      deltatask: {
        command: process.execPath,
        args: [faultServerPath],
        env: { FAULT: "error-payload" },
        required: false,
      },
    }),
  });
  deps = botDepsOf(h.core, silentLog);
});
afterAll(() => h?.stop());

let tg: ReturnType<typeof fakeTelegram>;
let bot: TaskfanBot;
let me: ReturnType<typeof chatWith>;
beforeEach(() => {
  tg = fakeTelegram();
  bot = createBot(deps, settings, { token: "42:TEST", botInfo, fetch: tg.fetch });
  me = chatWith(owner);
});

// A conversation left open by one test would swallow the next test's messages.
afterEach(async () => {
  await bot.bot.handleUpdate(me.text("/cancel"));
  bot.progress.stop();
});

const say = (text: string) => bot.bot.handleUpdate(me.text(text));
const press = (data: string) => bot.bot.handleUpdate(me.press(data));
const last = () => tg.texts().at(-1) ?? "";

async function answer(...lines: string[]) {
  for (const line of lines) await (line.startsWith("press:") ? press(line.slice(6)) : say(line));
}

describe("/newtask conversation", () => {
  it("walks through every step and creates the task only on Create", async () => {
    const before = await deps.countTasks();
    await say("/newtask");
    expect(last()).toContain("What is the task?");
    await say("Water the plants");
    expect(last()).toContain("Describe it.");
    await say("Balcony and kitchen");
    expect(last()).toContain("How important is it?");
    expect(tg.calls.at(-1)!.payload.reply_markup).toMatchObject({
      inline_keyboard: [
        [
          expect.objectContaining({ callback_data: "nt:p:1" }),
          expect.anything(),
          expect.anything(),
          expect.anything(),
          expect.anything(),
        ],
      ],
    });
    await press("nt:p:2");
    expect(last()).toContain("When is it due?");
    await say("tomorrow 18:00");
    expect(last()).toContain("Tags?");
    await say("#home, plants");
    expect(last()).toMatch(
      /New task:\n• Title: Water the plants\n• Description: Balcony and kitchen\n• Priority: 2 · high\n• Deadline: \w{3} \d{1,2} \w{3} 18:00 \(.+\)\n• Tags: #home #plants/,
    );
    expect(await deps.countTasks()).toBe(before);
    await press("nt:create");
    expect(await deps.countTasks()).toBe(before + 1);
    const task = (await deps.recentTasks(1, 0))[0]!;
    expect(task).toMatchObject({
      title: "Water the plants",
      description: "Balcony and kitchen",
      priority: 2,
      tags: ["home", "plants"],
    });
    expect(new Date(task.deadline!).getHours()).toBe(18);
    // The progress message, then its edits as the servers answer.
    expect(last()).toContain(`Task ${task.id}: Water the plants`);
    await vi.waitFor(async () => expect(last()).toContain("Partial: failed on deltatask"), {
      timeout: 10_000,
      interval: 20,
    });
    expect(last()).toMatch(/✅ memory\s+[\d,]+ ms/);
    expect(last()).toMatch(/❌ deltatask\s+deltatask: create_task failed: disk full/);
    const edits = tg.calls.filter((c) => c.method === "editMessageText");
    expect(edits.length).toBeLessThanOrEqual(4);
    // Settled, the creation reply gets the task's buttons.
    await vi.waitFor(
      () =>
        expect(
          tg.calls
            .filter((c) => c.method === "editMessageText" || c.method === "editMessageReplyMarkup")
            .at(-1)!.payload.reply_markup,
        ).toMatchObject({
          inline_keyboard: [
            [
              { text: "✅ Done", callback_data: `task:done:${task.id}` },
              { text: "✏️ Edit", callback_data: `task:edit:${task.id}` },
              { text: "🗑 Delete", callback_data: `task:delete:${task.id}` },
            ],
            [{ text: "🔁 Retry failed", callback_data: `task:retry:${task.id}` }],
          ],
        }),
      { timeout: 10_000, interval: 20 },
    );
  });

  it("asks again, saying why, after each invalid answer", async () => {
    await answer("/newtask", "x".repeat(201));
    expect(last()).toContain("The title has 201 characters; 200 at most");
    await answer("Fix the bike", "/skip", "9");
    expect(last()).toContain("The priority is a number from 1 (critical) to 5 (someday).");
    await answer("4", "someday maybe");
    expect(last()).toContain('I could not read "someday maybe" as a date.');
    await say("yesterday");
    expect(last()).toContain("is in the past; the deadline must be later.");
    await answer("in 3 days", "bad tag!");
    expect(last()).toContain('"tag!" is not a tag');
    await say("/skip");
    expect(last()).toContain("• Priority: 4 · low");
    await say("hello?");
    expect(last()).toContain("Tap Create, Edit a field or Cancel");
    await press("nt:cancel");
    expect(last()).toBe("Cancelled. Nothing was created.");
  });

  it.each([
    ["the title", []],
    ["the description", ["A title"]],
    ["the priority", ["A title", "/skip"]],
    ["the deadline", ["A title", "/skip", "press:nt:p:3"]],
    ["the tags", ["A title", "/skip", "press:nt:p:3", "/skip"]],
    ["the summary", ["A title", "/skip", "press:nt:p:3", "/skip", "/skip"]],
  ])("/cancel at %s creates nothing", async (_, steps) => {
    const before = await deps.countTasks();
    await answer("/newtask", ...steps, "/cancel");
    expect(last()).toBe("Cancelled. Nothing was created.");
    expect(await deps.countTasks()).toBe(before);
    await say("/help");
    expect(last()).toContain("/newtask — create a task");
  });

  it("edits a field from the summary", async () => {
    await answer(
      "/newtask",
      "Old title",
      "/skip",
      "press:nt:p:3",
      "/skip",
      "/skip",
      "press:nt:edit",
      "press:nt:f:title",
      "New title",
    );
    expect(last()).toContain("• Title: New title");
  });

  it("takes the quick form straight to the summary", async () => {
    await say("/newtask Pay rent | monthly transfer | p1 | in 3 days | #home #money");
    expect(last()).toMatch(
      /• Title: Pay rent\n• Description: monthly transfer\n• Priority: 1 · critical\n• Deadline: \w{3} \d{1,2} \w{3} \d\d:\d\d \(.+\)\n• Tags: #home #money/,
    );
    await press("nt:create");
    expect((await deps.recentTasks(1, 0))[0]).toMatchObject({
      title: "Pay rent",
      priority: 1,
      tags: ["home", "money"],
    });
    await say("/newtask | p2");
    expect(last()).toContain("The title may not be empty.");
  });

  it("resumes a conversation after a restart (state in SQLite)", async () => {
    await answer("/newtask", "Survives restarts", "It really does");
    // A new bot process: the same database, nothing in memory.
    const tg2 = fakeTelegram();
    const bot2 = createBot(deps, settings, { token: "42:TEST", botInfo, fetch: tg2.fetch });
    await bot2.bot.handleUpdate(me.text("5"));
    expect(tg2.texts().at(-1)).toContain("When is it due?");
    await bot2.bot.handleUpdate(me.text("/skip"));
    await bot2.bot.handleUpdate(me.text("/skip"));
    expect(tg2.texts().at(-1)).toMatch(
      /• Title: Survives restarts\n• Description: It really does\n• Priority: 5 · someday/,
    );
  });
});

describe("in Russian (the user's Telegram language)", () => {
  it("talks Russian in commands and inside the conversation, and reads Russian dates", async () => {
    const ru = chatWith(owner, "ru");
    const sayRu = (text: string) => bot.bot.handleUpdate(ru.text(text));
    await sayRu("/help");
    expect(last()).toContain("Я отправляю каждую задачу");
    await sayRu("/newtask");
    expect(last()).toContain("Что за задача? Пришлите название.");
    await sayRu("Купить молоко");
    await sayRu("/skip");
    await sayRu("2");
    expect(last()).toContain("Когда срок?");
    await sayRu("вчера");
    expect(last()).toContain("уже прошло; срок должен быть позже.");
    await sayRu("завтра в 18:00");
    await sayRu("#дом");
    expect(last()).toMatch(
      /Новая задача:\n• Название: Купить молоко\n• Описание: —\n• Приоритет: 2 · высокий\n• Срок: \S+ \d{1,2} \S+ 18:00 \(.+\)\n• Теги: #дом/,
    );
    await sayRu("/cancel");
    expect(last()).toBe("Отменено. Ничего не создано.");
  });

  it("registers the command menu in English and in Russian", async () => {
    await bot.registerCommands();
    const menus = tg.calls.filter((c) => c.method === "setMyCommands");
    expect(menus.map((c) => c.payload.language_code ?? "default")).toEqual(["default", "ru"]);
    expect((menus[1]!.payload.commands as Array<{ description: string }>)[0]!.description).toBe(
      "Создать задачу на всех серверах",
    );
  });
});

describe("commands", () => {
  it("/health lists every server with its status; Refresh probes again", async () => {
    await say("/health");
    expect(last()).toMatch(/^Servers: \d of 3 online/);
    for (const s of ["deltatask", "memory", "time-tracker"]) expect(last()).toContain(s);
    await press("health:refresh");
    expect(
      tg.calls.some((c) => c.method === "answerCallbackQuery" && c.payload.text === "Checking every server…"),
    ).toBe(true);
  });

  it("/task shows a task server by server; Retry failed re-drives the failed step", async () => {
    const id = await deps.createTask({ title: "retry me" });
    await h.core.orchestrator.waitForSettled(id, 10_000);
    await say(`/task ${id}`);
    expect(last()).toContain(`Task ${id}: retry me`);
    expect(last()).toMatch(/❌ deltatask .*disk full\n {4}1 attempt/);
    expect(tg.calls.at(-1)!.payload.reply_markup).toMatchObject({
      inline_keyboard: [
        [
          { text: "✅ Done", callback_data: `task:done:${id}` },
          { text: "✏️ Edit", callback_data: `task:edit:${id}` },
          { text: "🗑 Delete", callback_data: `task:delete:${id}` },
        ],
        [{ text: "🔁 Retry failed", callback_data: `task:retry:${id}` }],
      ],
    });
    await press(`task:retry:${id}`);
    expect(
      tg.calls.find((c) => c.method === "answerCallbackQuery" && c.payload.text === "Retrying 1 step"),
    ).toBeDefined();
    await say("/task nosuch");
    expect(last()).toBe("There is no task nosuch. /tasks lists them.");
  });

  it("finishes, reopens and deletes a task from the chat; a stale button and a deleted task get clear answers", async () => {
    const id = await deps.createTask({ title: "lifecycle from the chat" });
    await h.core.orchestrator.waitForSettled(id, 10_000);
    const answered = () =>
      tg.calls
        .filter((c) => c.method === "answerCallbackQuery")
        .map((c) => c.payload.text)
        .at(-1);
    // Done from the button under /task; its servers are the two that have the task.
    await press(`task:done:${id}`);
    expect(answered()).toBe(`done of task ${id}: on its way to 2 servers.`);
    let view = (await h.core.orchestrator.waitForChanges(id, 10_000))!;
    expect(view.task).toMatchObject({ state: "done", version: 2 });
    expect(
      view.operations
        .filter((o) => o.kind === "complete")
        .map((o) => [o.server, o.status])
        .sort(),
    ).toEqual([
      ["memory", "done"],
      ["time-tracker", "done"],
    ]);
    // The progress message of the change, edited until every server has it.
    // (Calls to Telegram are paced: the edit may take a second or two.)
    await vi.waitFor(
      () =>
        expect(
          tg
            .texts()
            .filter((t) => t.includes("Change 2: done"))
            .at(-1),
        ).toContain("Every server"),
      { timeout: 10_000, interval: 20 },
    );
    // The same button again: out of date, and nothing changes.
    await press(`task:done:${id}`);
    expect(answered()).toBe(`That button is out of date: task ${id} is done ✅ now.`);
    expect((await deps.getTask(id))!.task.version).toBe(2);
    await say(`/reopen ${id}`);
    expect(last()).toBe(`reopen of task ${id}: on its way to 2 servers.`);
    await h.core.orchestrator.waitForChanges(id, 10_000);
    // Delete asks once; "Keep it" keeps it.
    await say(`/delete ${id}`);
    expect(last()).toBe(`Delete task ${id} on every server? This cannot be undone.`);
    await press(`task:keep:${id}`);
    expect(answered()).toBe("Kept.");
    await press(`task:delete-yes:${id}`);
    view = (await h.core.orchestrator.waitForChanges(id, 10_000))!;
    expect(view.task).toMatchObject({ state: "deleted", version: 4 });
    await say(`/done ${id}`);
    expect(last()).toBe(`Task ${id} was deleted; it cannot be changed.`);
    await press(`task:reopen:${id}`);
    expect(answered()).toBe(`That button is out of date: task ${id} is deleted 🗑 now.`);
    await press("task:done:NOTANID");
    expect(answered()).toBe("That button is not valid.");
  });

  it("/done with several ids asks once, then finishes each; Keep changes nothing, and a question without ids is refused", async () => {
    const ids = [await deps.createTask({ title: "bulk one" }), await deps.createTask({ title: "bulk two" })];
    for (const id of ids) await h.core.orchestrator.waitForSettled(id, 10_000);
    const answered = () =>
      tg.calls
        .filter((c) => c.method === "answerCallbackQuery")
        .map((c) => c.payload.text)
        .at(-1);
    // The question names the tasks; Telegram sends its text back with the pressed button.
    const ask = async () => {
      await say(`/done ${ids[0]} ${ids[1]} ${ids[0]}`);
      expect(last()).toBe(`Mark these 2 tasks done on every server?\n${ids[0]} ${ids[1]}`);
      return last();
    };
    let question = await ask();
    await bot.bot.handleUpdate(me.press("bulk:keep", 1, question));
    expect(answered()).toBe("Kept.");
    for (const id of ids) expect((await deps.getTask(id))!.task).toMatchObject({ state: "open", version: 1 });
    question = await ask();
    await bot.bot.handleUpdate(me.press("bulk:complete", 1, question));
    expect(last()).toBe(ids.map((id) => `done of task ${id}: on its way to 2 servers.`).join("\n"));
    for (const id of ids) {
      const view = (await h.core.orchestrator.waitForChanges(id, 10_000))!;
      expect(view.task).toMatchObject({ state: "done", version: 2 });
    }
    // The same question pressed again (a second client, say) changes nothing twice.
    await bot.bot.handleUpdate(me.press("bulk:complete", 1, question));
    expect(last()).toBe(ids.map((id) => `Task ${id} is done ✅ already.`).join("\n"));
    for (const id of ids) expect((await deps.getTask(id))!.task.version).toBe(2);
    // A button whose message names no task, or an action it does not know: refused.
    await bot.bot.handleUpdate(me.press("bulk:complete", 1, "no ids here"));
    expect(answered()).toBe("That button is not valid.");
    await bot.bot.handleUpdate(me.press("bulk:delete", 1, question));
    expect(answered()).toBe("That button is not valid.");
    // One id needs no question.
    await say(`/reopen ${ids[0]}`);
    expect(last()).toBe(`reopen of task ${ids[0]}: on its way to 2 servers.`);
    await h.core.orchestrator.waitForChanges(ids[0]!, 10_000);
  });

  it("reminds before the deadline once, snoozes once, moves with the deadline, never for a done task, late after a downtime", async () => {
    const clock = { t: Date.now() };
    const reminders = new Reminders(bot.bot.api, deps.reminders!, deps, {
      defaults: [60, 0],
      t: bot.translator("en"),
      now: () => clock.t,
    });
    const clocked: BotDeps = { ...deps, now: () => clock.t };
    const chat = createBot(clocked, settings, { token: "42:TEST", botInfo, fetch: tg.fetch });
    const min = 60_000;
    await say("/newtask Pay rent | in 10 days | remind 30m 0");
    expect(last()).toContain("• Reminders: 30m, at the deadline");
    await press("nt:create");
    const task = (await deps.recentTasks(1, 0))[0]!;
    expect(task).toMatchObject({ title: "Pay rent", chatId: String(owner), userId: owner });
    const deadline = Date.parse(task.deadline!);
    const rent = () =>
      tg.sent().filter((c) => String(c.payload.text).startsWith(`⏰ Reminder: Pay rent (${task.id})`));
    const run = async (at: number) => {
      clock.t = at;
      return reminders.pass();
    };
    await run(Date.now());
    await chat.bot.handleUpdate(me.text("/reminders"));
    expect(last()).toMatch(new RegExp(`^Coming reminders:\n(.*\n)*⏰ .+ · Pay rent \\(${task.id}\\)`));
    await run(deadline - 31 * min);
    expect(rent()).toHaveLength(0);
    await run(deadline - 29 * min);
    await run(deadline - 28 * min);
    expect(rent()).toHaveLength(1);
    const first = rent()[0]!;
    expect(first.payload.text).toMatch(/^⏰ Reminder: Pay rent \(\w{10}\)\nDue .+\.$/);
    const buttons = (
      first.payload.reply_markup as { inline_keyboard: Array<Array<{ callback_data: string }>> }
    ).inline_keyboard
      .flat()
      .map((b) => b.callback_data);
    expect(buttons[0]).toBe(`task:done:${task.id}`);
    const snooze = buttons.find((b) => b.endsWith(":1h"))!;
    expect(buttons).toContain(snooze.replace(":1h", ":tomorrow"));
    const answered = () =>
      tg.calls
        .filter((c) => c.method === "answerCallbackQuery")
        .map((c) => c.payload.text)
        .at(-1);
    await chat.bot.handleUpdate(me.press(snooze, 1, String(first.payload.text)));
    expect(answered()).toMatch(/^Snoozed until /);
    await chat.bot.handleUpdate(me.press(snooze, 1, String(first.payload.text)));
    expect(answered()).toBe("Already snoozed.");
    await chat.bot.handleUpdate(me.press("rem:snooze:99x:1h"));
    expect(answered()).toBe("That button is not valid.");

    // The deadline moves a day on: its reminders move, the snooze stays where it was.
    const moved = deadline + 24 * 60 * min;
    await deps.changeTask(task.id, { kind: "update", fields: { deadline: new Date(moved).toISOString() } });
    await run(deadline - 27 * min);
    await run(deadline + 32 * min);
    expect(rent()).toHaveLength(2);
    expect(rent()[1]!.payload.text).not.toContain("Late");
    await run(deadline + 2 * 60 * min);
    expect(rent()).toHaveLength(2);
    await run(moved - 29 * min);
    expect(rent()).toHaveLength(3);

    // Done from the reminder: the one at the deadline never comes, and the snooze button is out of date.
    await chat.bot.handleUpdate(me.press(`task:done:${task.id}`));
    await h.core.orchestrator.waitForChanges(task.id, 10_000);
    await run(moved + min);
    expect(rent()).toHaveLength(3);
    await chat.bot.handleUpdate(me.press(snooze.replace(":1h", ":tomorrow")));
    expect(answered()).toBe(`That button is out of date: task ${task.id} is done ✅ now.`);

    // Every instance down at a reminder's time: it comes once at the next start, marked late.
    await say("/newtask Call the bank | in 12 days | remind 0");
    await press("nt:create");
    const bank = (await deps.recentTasks(1, 0))[0]!;
    await run(Date.now());
    await run(Date.parse(bank.deadline!) + 3 * 60 * min);
    await run(Date.parse(bank.deadline!) + 3 * 60 * min + min);
    const late = tg
      .sent()
      .filter((c) => String(c.payload.text).startsWith(`⏰ Reminder: Call the bank (${bank.id})`));
    expect(late).toHaveLength(1);
    expect(late[0]!.payload.text).toMatch(
      /\nIt was due .+\.\nLate: it was to come .+, while taskfan was not running\.$/,
    );
    chat.progress.stop();
    await reminders.stop();
  });

  it("edits a task by a reply to taskfan's message about it, each field checked as /newtask checks it", async () => {
    const id = await deps.createTask(
      { title: "Buy milk", tags: ["home"] },
      { owner: { chatId: String(owner), userId: owner } },
    );
    await h.core.orchestrator.waitForSettled(id, 10_000);
    await say(`/task ${id}`);
    const about = { messageId: 1, text: last() };
    expect(about.text).toContain(`Task ${id}: Buy milk`);
    const reply = (text: string, to = about) => bot.bot.handleUpdate(me.reply(text, to));
    await reply("title: Buy oat milk\ndeadline: in 5 days\n#shop #home\np2");
    expect(last()).toBe(`edit of task ${id}: on its way to 2 servers.`);
    const view = (await h.core.orchestrator.waitForChanges(id, 10_000))!;
    expect(view.task).toMatchObject({
      title: "Buy oat milk",
      priority: 2,
      tags: ["shop", "home"],
      version: 2,
    });
    expect(Date.parse(view.task.deadline!) - Date.now()).toBeGreaterThan(4 * 86_400_000);
    expect((await deps.getTask(id))!.operations.filter((o) => o.kind === "update")).toHaveLength(2);
    // A bad value is asked again with its reason, and nothing changes.
    await reply("deadline: 2020-01-01 10:00");
    expect(last()).toMatch(/is in the past; the deadline must be later\.$/);
    await reply("title: Fine\nwhat is this");
    expect(last()).toBe(
      'I do not know what "what is this" is. Reply with lines such as: title: …, description: …, priority: 2, deadline: friday 18:00 (or none), #tag.',
    );
    await reply("срок: нет");
    expect(last()).toBe(`edit of task ${id}: on its way to 2 servers.`);
    expect((await h.core.orchestrator.waitForChanges(id, 10_000))!.task).toMatchObject({
      deadline: null,
      version: 3,
    });
    // A reply that is no edit is an ordinary message; one to a message naming no task says so.
    await reply("thanks!");
    expect(last()).toBe("I did not get that. /help lists what I can do.");
    await reply("title: x", { messageId: 2, text: "Servers: 3 of 3 online" });
    expect(last()).toMatch(/^That message is about no task I know/);
    expect((await deps.getTask(id))!.task.version).toBe(3);
  });

  it("/edit and the Edit button ask which field, then its value, checked as /newtask checks it", async () => {
    const id = await deps.createTask({ title: "Book flights", priority: 3 });
    await h.core.orchestrator.waitForSettled(id, 10_000);
    await say(`/edit ${id}`);
    expect(last()).toBe(`Which field of task ${id} (Book flights) do you want to change?`);
    await say("priority please");
    expect(last()).toBe("Tap a field above (or send /cancel).");
    await press("ed:f:priority");
    expect(last()).toContain("How important is it?");
    await say("9");
    expect(last()).toContain("The priority is a number from 1 (critical) to 5 (someday).");
    await press("nt:p:1");
    expect(last()).toBe(`edit of task ${id}: on its way to 2 servers.`);
    expect((await h.core.orchestrator.waitForChanges(id, 10_000))!.task).toMatchObject({
      priority: 1,
      version: 2,
    });
    // From the button under the task; /cancel changes nothing.
    await press(`task:edit:${id}`);
    expect(last()).toBe(`Which field of task ${id} (Book flights) do you want to change?`);
    await press("ed:f:title");
    await say("/cancel");
    expect(last()).toBe("Cancelled. Nothing was changed.");
    await press(`task:edit:${id}`);
    await press("ed:f:deadline");
    await say("in 2 weeks");
    expect(last()).toBe(`edit of task ${id}: on its way to 2 servers.`);
    const view = (await h.core.orchestrator.waitForChanges(id, 10_000))!;
    expect(view.task).toMatchObject({ title: "Book flights", priority: 1, version: 3 });
    expect(Date.parse(view.task.deadline!) - Date.now()).toBeGreaterThan(13 * 86_400_000);
    await say("/edit nosuchtask");
    expect(last()).toBe("There is no task nosuchtask. /tasks lists them.");
    await say("/edit");
    expect(last()).toBe("Which task? Send /edit <id>; /tasks lists them.");
  });

  it("/tasks pages through tasks ten at a time", async () => {
    // /tasks lists open tasks: twelve of them make two pages.
    while ((await deps.countTasks({ state: "open" })) < 12) await deps.createTask({ title: "filler" });
    await say("/tasks");
    expect(last()).toMatch(/^Tasks \(page 1 of \d+\):/);
    expect(
      last()
        .split("\n")
        .filter((l) => /^\S+ \w{10} · /.test(l)),
    ).toHaveLength(10);
    await press("tasks:page:1");
    expect(last()).toMatch(/^Tasks \(page 2 of/);
  });

  it("/tasks filters by state, tag, priority and deadline, and pages within the filter", async () => {
    // Due later today (UTC, the owner's zone here): half way to midnight.
    const midnight = new Date().setUTCHours(24, 0, 0, 0);
    const soon = new Date((Date.now() + midnight) / 2).toISOString();
    const ids: string[] = [];
    for (let i = 0; i < 12; i++)
      ids.push(await deps.createTask({ title: `filtered ${i}`, tags: ["filtered"], priority: 1 }));
    const urgent = await deps.createTask({
      title: "due soon",
      tags: ["filtered"],
      priority: 2,
      deadline: soon,
    });
    await h.core.orchestrator.waitForSettled(ids[0]!, 10_000);
    await h.core.orchestrator.changeTask(ids[0]!, { kind: "complete" }, { source: "test" });
    const listed = () =>
      last()
        .split("\n")
        .filter((l) => /^\S+ \w{10} · /.test(l));
    await say("/tasks done #filtered");
    expect(last()).toMatch(/^Tasks: done #filtered \(page 1 of 1\):/);
    expect(listed()).toEqual([expect.stringMatching(new RegExp(`^\\S+ ${ids[0]} · filtered 0 · done ✅$`))]);
    // Open is the default: eleven open p1 tasks are two pages, the button keeps the filter.
    await say("/tasks #filtered p1");
    expect(last()).toMatch(/^Tasks: #filtered p1 \(page 1 of 2\):/);
    expect(listed()).toHaveLength(10);
    const older = (
      tg.calls.at(-1)!.payload.reply_markup as { inline_keyboard: Array<Array<{ callback_data: string }>> }
    ).inline_keyboard[0]![0]!.callback_data;
    expect(older).toBe("tasks:page:1:#filtered,p1");
    await press(older);
    expect(last()).toMatch(/^Tasks: #filtered p1 \(page 2 of 2\):/);
    expect(listed()).toHaveLength(1);
    await say("/tasks today #filtered");
    expect(listed().map((l) => l.split(" ")[1])).toEqual([urgent]);
    await say("/tasks overdue #filtered");
    expect(last()).toBe('No tasks match "overdue #filtered". /tasks all lists every task.');
    await say("/tasks someday");
    expect(last()).toBe(
      'I do not know "someday". /tasks takes open (the default), done, deleted, all, overdue, today, #tag and p1 to p5.',
    );
  });

  it("/stats shows tasks, operations, a sparkline of the last hour and per-server latency", async () => {
    await say("/stats");
    expect(last()).toMatch(/^Tasks: .*partial \d+/);
    expect(last()).toMatch(/Last hour: [▁▂▃▄▅▆▇█]{12} \(\d+ operations\)/);
    expect(last()).toMatch(/memory\s+\d+ ops · +0% err · p50\/p95 [\d,]+\/[\d,]+ ms/);
  });

  it("/mute and /unmute", async () => {
    await say("/mute git 1h");
    expect(last()).toContain('There is no server "git"');
    await say("/mute memory 30m");
    expect(last()).toContain("Alerts for memory muted until");
    expect(await deps.state.mutes.isMuted("memory")).toBe(true);
    await say("/unmute");
    expect(await deps.state.mutes.isMuted("memory")).toBe(false);
  });

  it("refuses a stranger once, with their id, and creates nothing", async () => {
    const stranger = chatWith(999);
    const before = await deps.countTasks();
    await bot.bot.handleUpdate(stranger.text("/newtask Steal everything"));
    await bot.bot.handleUpdate(stranger.text("/health"));
    const replies = tg.calls.filter((c) => c.payload.chat_id === 999);
    expect(replies).toHaveLength(1);
    expect(String(replies[0]!.payload.text)).toContain("Your user id is 999");
    expect(await deps.countTasks()).toBe(before);
  });

  it("rate-limits each user at the configured requests per minute, saying so once", async () => {
    const limited = createBot(
      deps,
      { ...settings, rateLimitPerMinute: 3 },
      { token: "42:TEST", botInfo, fetch: tg.fetch },
    );
    const user = chatWith(owner);
    for (let i = 0; i < 6; i++) await limited.bot.handleUpdate(user.text("/help"));
    const replies = tg.texts();
    expect(replies.filter((r) => r.includes("/newtask — create a task"))).toHaveLength(3);
    expect(replies.filter((r) => r.startsWith("Slow down a little"))).toHaveLength(1);
    limited.progress.stop();
  });

  it("answers a crash in a handler with an error id", async () => {
    const broken = createBot(
      {
        ...deps,
        getStats: () => {
          throw new Error("boom");
        },
      },
      settings,
      { token: "42:TEST", botInfo, fetch: tg.fetch },
    );
    await broken.bot.handleUpdate(me.text("/stats"));
    expect(last()).toMatch(/^Something went wrong; the error id is [0-9a-f]{8}\.$/);
  });
});

describe("alert delivery", () => {
  it("gets an alert through a 500 and a dropped connection, and delivers it once", async () => {
    const delivery = new AlertDelivery(bot.bot.api, deps, { chatId: "-100", t: bot.translator() });
    const alert = await deps.alerts.raise("error", "memory", { reason: "probe failed: no answer" });
    tg.failNext("sendMessage", { ok: false, error_code: 500, description: "Internal Server Error" });
    tg.failNext("sendMessage", { reset: true });
    expect(await delivery.deliver()).toBeGreaterThanOrEqual(1);
    const attempts = tg.calls.filter(
      (c) => c.method === "sendMessage" && String(c.payload.text).startsWith("🔴 ERROR: memory"),
    );
    expect(attempts).toHaveLength(3); // refused, dropped, accepted
    expect(await deps.alerts.get(alert.id)).toMatchObject({ deliveredCount: 1 });
    expect(await delivery.deliver()).toBe(0);
    await deps.alerts.resolve("memory");
  }, 30_000);

  it("sends each alert once (through a 429), folds a repeat into an edit, and drops muted ones", async () => {
    const delivery = new AlertDelivery(bot.bot.api, deps, { chatId: "-100", t: bot.translator() });
    const alert = await deps.alerts.raise("breaker_open", "time-tracker", {
      error: "no answer within 10000 ms",
    });
    tg.failNext("sendMessage", {
      ok: false,
      error_code: 429,
      description: "Too Many Requests: retry after 1",
      parameters: { retry_after: 1 },
    });
    expect(await delivery.deliver()).toBeGreaterThanOrEqual(1);
    const sends = tg.calls.filter(
      (c) => c.method === "sendMessage" && String(c.payload.text).includes("time-tracker"),
    );
    expect(sends).toHaveLength(2); // the refused one and the accepted one
    expect(String(sends[1]!.payload.text)).toMatch(
      /^🔴 circuit open: time-tracker\nsince .* UTC\nlast error: no answer within 10000 ms$/,
    );
    expect(sends[1]!.payload.reply_markup).toMatchObject({
      inline_keyboard: [
        [
          { text: "Show health", callback_data: "health:refresh" },
          { text: "Mute 1 h", callback_data: "mute:time-tracker:3600" },
        ],
        [{ text: "👀 I'm on it", callback_data: `ack:${alert.id}` }],
      ],
    });
    expect(await deps.alerts.get(alert.id)).toMatchObject({ deliveredCount: 1 });
    expect(await delivery.deliver()).toBe(0); // nothing twice

    await deps.alerts.raise("breaker_open", "time-tracker", { error: "again" });
    await delivery.deliver();
    const edit = tg.calls.filter((c) => c.method === "editMessageText").at(-1)!;
    expect(String(edit.payload.text)).toContain("· 2 times");

    await deps.state.mutes.mute("memory", Date.now() + 60_000);
    await deps.alerts.raise("degraded", "memory", { reason: "slow" });
    const count = tg.sent().length;
    await delivery.deliver();
    expect(tg.sent().length).toBe(count);
    await deps.state.mutes.unmute();
  });

  it("says counts in words that agree with them, in both languages", () => {
    const en = bot.translator("en");
    const ru = bot.translator("ru");
    const group = (t: typeof en, count: number) =>
      t("alert-group", { kind: "🔴 ERROR", count, servers: "git" });
    expect(group(en, 1)).toBe("🔴 ERROR on 1 server: git");
    expect(group(en, 3)).toBe("🔴 ERROR on 3 servers: git");
    expect(group(ru, 1)).toBe("🔴 ERROR на 1 сервере: git");
    expect(group(ru, 5)).toBe("🔴 ERROR на 5 серверах: git");
    expect(en("alert-group-back", { count: 1, servers: "git" })).toBe("✅ the server is back: git");
    expect(ru("alert-times", { count: 2 })).toBe(" · 2 раза");
    expect(ru("alert-times", { count: 5 })).toBe(" · 5 раз");
    expect(en("alert-times", { count: 2 })).toBe(" · 2 times");
  });

  it("posts into the forum topic; recoveries and DEGRADED go quietly, ERROR rings", async () => {
    const { quiet_kinds } = h.config.notifications.telegram;
    const delivery = new AlertDelivery(bot.bot.api, deps, {
      chatId: "-100",
      t: bot.translator(),
      threadId: 42,
      quietKinds: quiet_kinds,
      groupWindowMs: 0, // one message each here
    });
    await deps.alerts.raise("error", "memory", { reason: "probe failed" });
    await delivery.deliver();
    await deps.alerts.raise("degraded", "time-tracker", { reason: "slow" });
    await deps.alerts.resolve("memory");
    await deps.alerts.notice("recovered", "memory", null, { closed: ["error"] });
    await delivery.deliver();
    const sends = tg.sent().map((c) => ({
      text: String(c.payload.text).split("\n")[0],
      thread: c.payload.message_thread_id,
      quiet: c.payload.disable_notification,
    }));
    expect(sends).toEqual([
      { text: "🔴 ERROR: memory", thread: 42, quiet: undefined },
      { text: "🟡 DEGRADED: time-tracker", thread: 42, quiet: true },
      { text: expect.stringMatching(/^✅ recovered: memory is back/), thread: 42, quiet: true },
    ]);
    await deps.alerts.resolve("time-tracker");
  });

  it("records who pressed I'm on it, shows it, and edits repeats quietly until it recovers", async () => {
    // A repeat after the cooldown (0 here) would be a new, ringing message.
    const delivery = new AlertDelivery(bot.bot.api, deps, {
      chatId: "-100",
      t: bot.translator(),
      cooldownMs: 0,
      groupWindowMs: 0,
    });
    const alert = await deps.alerts.raise("error", "time-tracker", { reason: "probe failed" });
    await delivery.deliver();
    const sent = tg.sent().at(-1)!;
    const messageId = (await deps.state.alertMessages.get(alert.id))!.messageId;

    // A stranger (not allowed, not in the alert chat) cannot acknowledge it.
    await bot.bot.handleUpdate(chatWith(55).press(`ack:${alert.id}`, messageId));
    expect((await deps.alerts.get(alert.id))!.acknowledged).toBeNull();

    // A member of the alert chat may: the message says who is on it, the button goes.
    const member = chatWith(99, "en", -100);
    await bot.bot.handleUpdate(member.press(`ack:${alert.id}`, messageId));
    expect((await deps.alerts.get(alert.id))!.acknowledged).toMatchObject({ by: "user99", userId: 99 });
    const answer = tg.calls.filter((c) => c.method === "answerCallbackQuery").at(-1)!;
    expect(String(answer.payload.text)).toMatch(/^Noted: you are on it/);
    const edit = tg.calls.filter((c) => c.method === "editMessageText").at(-1)!;
    expect(edit.payload).toMatchObject({ chat_id: -100, message_id: messageId });
    expect(String(edit.payload.text)).toMatch(
      /^🔴 ERROR: time-tracker\n[^]*\n👀 user99 is on it \(since .* UTC\)$/,
    );
    expect(JSON.stringify(edit.payload.reply_markup)).not.toContain("ack:");
    expect(sent.payload.reply_markup).toMatchObject({
      inline_keyboard: [[{}, {}], [{ callback_data: `ack:${alert.id}` }]],
    });

    // The owner's press comes second: the first acknowledgement stays.
    await press(`ack:${alert.id}`);
    expect((await deps.alerts.get(alert.id))!.acknowledged).toMatchObject({ userId: 99 });
    expect(String(tg.calls.filter((c) => c.method === "answerCallbackQuery").at(-1)!.payload.text)).toBe(
      "user99 is on it already.",
    );

    // Repeats edit the message, quietly, however late.
    const sends = tg.sent().length;
    await deps.alerts.raise("error", "time-tracker", { reason: "still failing" });
    await delivery.deliver();
    expect(tg.sent().length).toBe(sends);
    expect(tg.calls.at(-1)!.method).toBe("editMessageText");
    expect(String(tg.calls.at(-1)!.payload.text)).toMatch(/· 2 times[^]*👀 user99 is on it/);

    // /health lists the open alert and who is on it.
    await say("/health");
    expect(last()).toMatch(/Open alerts:\n• 🔴 ERROR: time-tracker since .* UTC · user99 is on it/);

    // Once it recovers, the press is refused, and the next failure is a new, unacknowledged alert that rings.
    await deps.alerts.resolve("time-tracker");
    await bot.bot.handleUpdate(member.press(`ack:${alert.id}`, messageId));
    expect(String(tg.calls.filter((c) => c.method === "answerCallbackQuery").at(-1)!.payload.text)).toBe(
      "This alert is closed already.",
    );
    const before = tg.sent().length;
    const next = await deps.alerts.raise("error", "time-tracker", { reason: "down again" });
    expect(next.acknowledged).toBeNull();
    await delivery.deliver();
    expect(tg.sent().length).toBe(before + 1);
    expect(tg.sent().at(-1)!.payload.disable_notification).toBeUndefined();
    await deps.alerts.resolve("time-tracker");
  });

  it("groups five servers failing within the window into one message, edited as more fail and recover", async () => {
    const delivery = new AlertDelivery(bot.bot.api, deps, { chatId: "-100", t: bot.translator() });
    const servers = ["git", "memory", "backup", "calendar", "filesystem"];
    const sends = tg.sent().length;
    const raised = [];
    for (const server of servers)
      raised.push(await deps.alerts.raise("error", server, { reason: `${server} down` }));
    await delivery.deliver();
    // One message, edited as the others joined; every alert delivered, all on that message.
    expect(tg.sent().length).toBe(sends + 1);
    const messageId = (await deps.state.alertMessages.get(raised[0]!.id))!.messageId;
    for (const a of raised) {
      expect(await deps.state.alertMessages.get(a.id)).toEqual({ chatId: "-100", messageId });
      expect((await deps.alerts.get(a.id))!.deliveredCount).toBe(1);
    }
    const lastEdit = () => tg.calls.filter((c) => c.method === "editMessageText").at(-1)!;
    expect(lastEdit().payload.message_id).toBe(messageId);
    expect(String(lastEdit().payload.text)).toMatch(
      /^🔴 ERROR on 5 servers: git, memory, backup, calendar, filesystem\n• 🔴 ERROR: git, since .* UTC · git down\n/,
    );
    expect(String(lastEdit().payload.text).split("\n")).toHaveLength(6);
    expect(await delivery.deliver()).toBe(0);

    // Another kind on one of them joins too; the head says problems, not one kind.
    await deps.alerts.raise("breaker_open", "memory", { error: "no answer" });
    await delivery.deliver();
    expect(tg.sent().length).toBe(sends + 1);
    expect(String(lastEdit().payload.text)).toMatch(
      /^🔴 problems on 5 servers: git, memory, backup, calendar, filesystem\n/,
    );

    // I'm on it, pressed once, is for every problem the message shows.
    const ack = (
      lastEdit().payload.reply_markup as { inline_keyboard: Array<Array<{ callback_data: string }>> }
    ).inline_keyboard[0]!.find((b) => b.callback_data.startsWith("ack:"))!;
    await bot.bot.handleUpdate(chatWith(99, "en", -100).press(ack.callback_data, messageId));
    for (const a of await deps.alerts.open()) expect(a.acknowledged?.by).toBe("user99");
    expect(String(lastEdit().payload.text)).toMatch(/\n👀 user99 is on it \(since .* UTC\)$/);

    // Recoveries edit the message (no new one); when all are back, the head says so.
    await recover(deps.alerts, "git");
    await delivery.deliver();
    expect(tg.sent().length).toBe(sends + 1);
    expect(String(lastEdit().payload.text)).toMatch(
      /^🔴 problems on 4 servers: memory, backup, calendar, filesystem\n• ✅ git is back \(was 🔴 ERROR since .* UTC\)\n/,
    );
    for (const server of servers.slice(1)) await recover(deps.alerts, server);
    await delivery.deliver();
    expect(tg.sent().length).toBe(sends + 1);
    expect(String(lastEdit().payload.text)).toMatch(
      /^✅ all 5 servers are back: git, memory, backup, calendar, filesystem\n/,
    );
    expect(JSON.stringify(lastEdit().payload.reply_markup)).not.toContain("ack:");
    expect(await delivery.deliver()).toBe(0);

    // Off (0), each problem has its own message.
    const apart = new AlertDelivery(bot.bot.api, deps, {
      chatId: "-100",
      t: bot.translator(),
      groupWindowMs: 0,
    });
    for (const server of servers.slice(0, 2)) await deps.alerts.raise("error", server);
    await apart.deliver();
    expect(tg.sent().length).toBe(sends + 3);
    for (const server of servers.slice(0, 2)) await deps.alerts.resolve(server);
  });

  it("posts to a Telegram route's chat and topic, quiet kinds quietly; a chat the bot left is refused", async () => {
    const route = {
      kind: "telegram",
      name: "second-chat",
      chat_id: -200,
      thread_id: 9,
      quiet_kinds: ["recovered"],
      timeout: 5,
      enabled: true,
    } as AlertRouteConfig;
    const send: TelegramSend = (chatId, text, other) => bot.bot.api.sendMessage(chatId, text, other);
    const text = (a: Alert) => formatAlert(a, bot.translator());
    const routes = new AlertRoutes(
      h.core.store,
      [{ config: route, sender: senderFor(route, text, { instance: "i", version: "v" }, send) }],
      silentLog,
    );
    await routes.deliver();
    await deps.alerts.raise("error", "backup", { reason: "exited" });
    await recover(deps.alerts, "backup");
    expect(await routes.deliver()).toBe(2);
    const posted = tg.sent().filter((c) => String(c.payload.chat_id) === "-200");
    expect(
      posted.map((c) => [
        String(c.payload.text).split("\n")[0],
        c.payload.message_thread_id,
        c.payload.disable_notification,
      ]),
    ).toEqual([
      ["🔴 ERROR: backup", 9, undefined],
      [expect.stringMatching(/^✅ recovered: backup is back/), 9, true],
    ]);
    expect(await routes.deliver()).toBe(0);

    tg.failNext("sendMessage", {
      ok: false,
      error_code: 403,
      description: "Forbidden: bot was kicked from the group chat",
    });
    const next = await deps.alerts.raise("error", "backup", { reason: "exited again" });
    expect(await routes.deliver()).toBe(0);
    expect((await h.core.store.alertRoutes.forAlert(next.id))[0]).toMatchObject({
      failedCount: 1,
      lastError: "Telegram 403: Forbidden: bot was kicked from the group chat",
    });
    expect(await routes.deliver()).toBe(0);
    await deps.alerts.resolve("backup");

    // A route has its own mute: /mute <route> <duration>, /unmute <route>.
    const withRoutes = createBot({ ...deps, routeNames: ["second-chat"] }, settings, {
      token: "42:TEST",
      botInfo,
      fetch: tg.fetch,
    });
    await withRoutes.bot.handleUpdate(me.text("/mute second-chat 1h"));
    expect(last()).toMatch(/^🔕 Alerts for second-chat muted until /);
    expect((await deps.state.mutes.active()).map((m) => m.server)).toEqual(["route:second-chat"]);
    const muted = await deps.alerts.raise("error", "backup", { reason: "muted" });
    const before = tg.sent().length;
    await routes.deliver();
    expect(tg.sent().length).toBe(before);
    expect((await h.core.store.alertRoutes.forAlert(muted.id))[0]).toMatchObject({
      deliveredCount: 1,
      attempts: 0,
    });
    await withRoutes.bot.handleUpdate(me.text("/unmute second-chat"));
    expect(last()).toBe("🔔 Alerts for second-chat are on again.");
    expect(await deps.state.mutes.active()).toEqual([]);
    await withRoutes.bot.handleUpdate(me.text("/mute nothing 1h"));
    expect(last()).toMatch(/second-chat, or all\.$/);
    await deps.alerts.resolve("backup");
  });
});
