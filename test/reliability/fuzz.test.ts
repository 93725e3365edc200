import fc from "fast-check";
import type { Update } from "grammy/types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpServer } from "../../src/api/http-server.js";
import { createBot } from "../../src/bot/create-bot.js";
import type { BotSettings } from "../../src/bot/deps.js";
import { botDepsOf } from "../../src/bot/front-end.js";
import { parseConfigText } from "../../src/config/load.js";
import { ConfigError } from "../../src/errors.js";
import { botInfo, fakeTelegram } from "../bot/fake-telegram.js";
import { startHarness, type Harness } from "../core-harness.js";
import { onlyServers, silentLog } from "../helpers.js";

// Bounded: a fixed number of runs with a fixed seed per property, so CI time is known.
const runs = { numRuns: 150, seed: 20261125 };
const owner = 7;
let h: Harness;
let http: Awaited<ReturnType<typeof startHttpServer>>;
const unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);

beforeAll(async () => {
  process.on("unhandledRejection", onUnhandled);
  h = await startHarness({
    http: { port: 0 },
    security: { rate_limiting: { enabled: false } },
    servers: onlyServers(["memory"]),
  });
  http = await startHttpServer(h.core, h.core.metrics, silentLog);
});
afterAll(async () => {
  process.off("unhandledRejection", onUnhandled);
  await http?.close();
  await h?.stop();
});

const text = fc.oneof(
  fc.string({ maxLength: 50 }),
  fc.string({ unit: "grapheme", maxLength: 200 }),
  fc.string({ minLength: 4000, maxLength: 4096 }),
  fc.constantFrom(
    "/newtask",
    "/cancel",
    "/skip",
    "/task",
    "/tasks",
    "/health",
    "/stats",
    "/mute",
    "/unmute",
    "/help",
    "1",
    "5",
  ),
  fc
    .tuple(fc.constantFrom("/newtask ", "/task ", "/mute ", "/newtask | "), fc.string({ maxLength: 80 }))
    .map(([a, b]) => a + b),
);

function updateOf(kind: number, body: string, id: number, from: number): Update {
  const user = { id: from, is_bot: false, first_name: "f" };
  const chat = { id: from, type: "private" as const, first_name: "f" };
  const command = /^\/\w+/.exec(body)?.[0];
  const message = {
    message_id: id,
    date: 0,
    chat,
    from: user,
    text: body,
    ...(command ? { entities: [{ type: "bot_command" as const, offset: 0, length: command.length }] } : {}),
  };
  switch (kind) {
    case 0:
      return { update_id: id, message };
    case 1:
      return { update_id: id, edited_message: { ...message, edit_date: 1 } };
    case 2:
      return {
        update_id: id,
        callback_query: {
          id: String(id),
          from: user,
          chat_instance: "x",
          data: body.slice(0, 64),
          message: { message_id: 1, date: 0, chat, text: "" },
        },
      };
    default:
      // An update type the bot does not handle.
      return {
        update_id: id,
        poll: {
          id: String(id),
          question: body.slice(0, 255) || "?",
          options: [],
          total_voter_count: 0,
          is_closed: false,
          is_anonymous: true,
          type: "regular",
          allows_multiple_answers: false,
        },
      } as unknown as Update;
  }
}

describe("fuzz", () => {
  it("random updates never crash the bot; every message from an allowed user is answered", async () => {
    const settings: BotSettings = {
      allowedUserIds: new Set([owner]),
      alertChatId: undefined,
      rateLimitPerMinute: undefined,
      progressEditIntervalMs: 10,
    };
    const deps = botDepsOf(h.core, silentLog);
    let id = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 3 }), text, fc.constantFrom(owner, 999)), {
          minLength: 1,
          maxLength: 12,
        }),
        async (script) => {
          const tg = fakeTelegram();
          const bot = createBot(deps, settings, { token: "42:FUZZ", botInfo, fetch: tg.fetch });
          try {
            for (const [kind, body, from] of script) {
              const before = tg.calls.length;
              await bot.bot.handleUpdate(updateOf(kind, body, ++id, from));
              if (kind === 0 && from === owner) {
                // Every message from the owner gets some reply (an answer, a question, or an error id).
                expect(tg.calls.length, `no reply to ${JSON.stringify(body.slice(0, 40))}`).toBeGreaterThan(
                  before,
                );
              }
            }
          } finally {
            await bot.bot.handleUpdate(updateOf(0, "/cancel", ++id, owner));
            bot.progress.stop();
          }
        },
      ),
      { ...runs, numRuns: 60 },
    );
    expect(unhandled).toEqual([]);
  });

  it("random config files either parse or fail with a ConfigError naming a key", async () => {
    const json = fc.jsonValue({ maxDepth: 4 });
    const shaped = fc.record(
      {
        servers: fc.dictionary(fc.constantFrom("git", "memory", "gitlab", "backup"), json),
        sync_interval: json,
        security: json,
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(fc.oneof(json, shaped, fc.string()), (value) => {
        const text = typeof value === "string" ? value : JSON.stringify(value);
        try {
          parseConfigText(text);
        } catch (error) {
          expect(error).toBeInstanceOf(ConfigError);
          expect((error as ConfigError).message).toMatch(/is not valid JSON|is invalid:\n {2}\S/);
        }
      }),
      runs,
    );
  });

  it("random REST bodies get a 2xx or a 4xx with a stable error shape, never a 500; invalid ones create nothing", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.jsonValue({ maxDepth: 3 }),
          fc.record(
            {
              title: fc.oneof(fc.string({ maxLength: 250 }), fc.integer()),
              priority: fc.oneof(fc.integer({ min: -2, max: 8 }), fc.string()),
              tags: fc.array(fc.string({ maxLength: 12 }), { maxLength: 12 }),
              deadline: fc.oneof(
                fc.string(),
                fc.date().map((d) => (Number.isNaN(d.getTime()) ? "x" : d.toISOString())),
              ),
            },
            { requiredKeys: [] },
          ),
        ),
        async (body) => {
          const before = await h.core.store.tasks.count();
          const res = await fetch(`${http.url}/api/tasks`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify(body),
          });
          expect(res.status).toBeLessThan(500);
          const reply = (await res.json()) as { error?: { code: string; message: string } };
          if (res.status >= 400) {
            expect(reply.error?.code).toMatch(/^[a-z_]+$/);
            expect(await h.core.store.tasks.count()).toBe(before);
          } else {
            expect(await h.core.store.tasks.count()).toBe(before + 1);
          }
        },
      ),
      { ...runs, numRuns: 100 },
    );
  });
});
