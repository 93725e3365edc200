import { webhookCallback, type Bot } from "grammy";
import { createServer, type Server } from "node:http";
import type { BotContext } from "./context.js";

/**
 * The webhook endpoint: only POSTs to the webhook URL's path, and only with Telegram's
 * secret token header (grammY answers 401 otherwise).
 */
export async function serveWebhook(
  bot: Bot<BotContext>,
  options: { url: string; host: string; port: number; secret: string },
): Promise<Server> {
  const path = new URL(options.url).pathname;
  const handle = webhookCallback(bot, "http", { secretToken: options.secret, onTimeout: "return" });
  const server = createServer((req, res) => {
    if (req.method !== "POST" || new URL(req.url ?? "/", "http://localhost").pathname !== path) {
      res.writeHead(404).end();
      return;
    }
    handle(req, res).catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, resolve);
  });
  return server;
}
