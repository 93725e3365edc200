import { Composer } from "grammy";
import type { BotContext } from "../src/bot/context.js";
import type { Translate } from "../src/bot/i18n.js";

const commands = [
  "newtask",
  "tasks",
  "task",
  "done",
  "reopen",
  "edit",
  "delete",
  "health",
  "stats",
  "mute",
  "unmute",
  "timezone",
  "reminders",
  "cancel",
  "help",
];

/** The command menu in one language. */
export function commandList(t: Translate): Array<{ command: string; description: string }> {
  return commands.map((command) => ({ command, description: t(`cmd-${command}`) }));
}

/** /start, /help, and /cancel when nothing is going on. */
export function startHandler(): Composer<BotContext> {
  const c = new Composer<BotContext>();
  c.command("start", (ctx) =>
    ctx.reply(`${ctx.t("hello", { name: ctx.from?.first_name ?? "" })} ${ctx.t("help")}`),
  );
  c.command("help", (ctx) => ctx.reply(ctx.t("help")));
  c.command("cancel", (ctx) => ctx.reply(ctx.t("nothing-to-cancel")));
  return c;
}
