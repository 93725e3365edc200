import { Composer } from "grammy";
import type { BotContext } from "../src/bot/context.js";

export const commandList = [
  { command: "newtask", description: "Create a task on every server" },
  { command: "tasks", description: "The last tasks" },
  { command: "task", description: "One task, server by server: /task <id>" },
  { command: "health", description: "The state of every server" },
  { command: "stats", description: "Numbers and activity" },
  { command: "mute", description: "Silence alerts: /mute <server|all> <1h>" },
  { command: "unmute", description: "Alerts back on" },
  { command: "cancel", description: "Stop what you are doing" },
  { command: "help", description: "How to use this bot" },
];

export const helpText = [
  "I send each task you create to all your task servers and tell you how it went.",
  "",
  "/newtask — create a task, step by step",
  "/newtask Title | description | p2 | tomorrow 18:00 | #work — all at once",
  "/tasks — the last tasks · /task <id> — one task in detail",
  "/health — is every server up? · /stats — numbers and activity",
  "/mute git 1h · /mute all 30m · /unmute — alerts",
  "/cancel — stop the current step",
].join("\n");

/** /start and /help. */
export function startHandler(): Composer<BotContext> {
  const c = new Composer<BotContext>();
  c.command("start", (ctx) =>
    ctx.reply(`Hello${ctx.from?.first_name ? `, ${ctx.from.first_name}` : ""}! ${helpText}`),
  );
  c.command("help", (ctx) => ctx.reply(helpText));
  c.command("cancel", (ctx) => ctx.reply("Nothing to cancel."));
  return c;
}
