import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Update } from "grammy/types";
import { botInfo } from "./fake-telegram.js";

export interface Sent {
  method: string;
  payload: Record<string, unknown>;
  /** false when the fake refused it (a scripted error). */
  accepted: boolean;
}

/**
 * A small HTTP server speaking the Bot API methods taskfan uses, for a bot running as a
 * real child process with TELEGRAM_API_ROOT pointing here. getUpdates long-polls.
 */
export class FakeBotApi {
  readonly calls: Sent[] = [];
  /** getUpdates requests so far (not in `calls`: a poller sends them all the time). */
  polls = 0;
  private readonly queue: Update[] = [];
  private waiting: Array<() => void> = [];
  private server: Server | undefined;
  private nextUpdateId = 1;
  private nextMessageId = 1000;
  private readonly scripted: Array<{
    method: string;
    when: (p: Record<string, unknown>) => boolean;
    status: number;
    body: unknown;
  }> = [];
  private readonly listeners = new Set<() => void>();
  url = "";

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    this.url = `http://127.0.0.1:${(this.server.address() as { port: number }).port}`;
  }

  async stop(): Promise<void> {
    for (const w of this.waiting) w();
    this.server?.closeAllConnections();
    await new Promise((r) => this.server?.close(r));
  }

  /** Queues an update for the bot's next getUpdates. */
  push(update: Omit<Update, "update_id">): void {
    this.queue.push({ ...update, update_id: this.nextUpdateId++ } as Update);
    for (const w of this.waiting.splice(0)) w();
  }

  /** Answers the next matching call with this status and body instead. */
  script(method: string, when: (p: Record<string, unknown>) => boolean, status: number, body: unknown): void {
    this.scripted.push({ method, when, status, body });
  }

  /** Resolves once `predicate` holds over the calls so far. */
  until(predicate: (calls: Sent[]) => boolean, timeoutMs = 30_000): Promise<void> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (predicate(this.calls)) {
          this.listeners.delete(check);
          clearTimeout(timer);
          resolve();
        }
      };
      const timer = setTimeout(() => {
        this.listeners.delete(check);
        reject(new Error(`timed out; last calls: ${JSON.stringify(this.calls.slice(-3))}`));
      }, timeoutMs);
      this.listeners.add(check);
      check();
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let raw = "";
    for await (const chunk of req) raw += chunk;
    const method = (req.url ?? "").split("/").pop() ?? "";
    const payload = (raw ? JSON.parse(raw) : {}) as Record<string, unknown>;
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (method === "getUpdates") {
      this.polls += 1;
      for (const l of [...this.listeners]) l();
      return this.getUpdates(payload, reply);
    }
    const s = this.scripted.findIndex((x) => x.method === method && x.when(payload));
    if (s >= 0) {
      const [scripted] = this.scripted.splice(s, 1);
      this.record({ method, payload, accepted: false });
      return reply(scripted!.status, scripted!.body);
    }
    this.record({ method, payload, accepted: true });
    let result: unknown = true;
    if (method === "getMe") result = botInfo;
    if (method === "sendMessage") {
      result = {
        message_id: this.nextMessageId++,
        date: 0,
        chat: { id: payload.chat_id, type: "private" },
        text: payload.text,
      };
    }
    if (method === "editMessageText") {
      result = {
        message_id: payload.message_id,
        date: 0,
        chat: { id: payload.chat_id, type: "private" },
        text: payload.text,
      };
    }
    reply(200, { ok: true, result });
  }

  private record(call: Sent): void {
    this.calls.push(call);
    for (const l of [...this.listeners]) l();
  }

  private getUpdates(payload: Record<string, unknown>, reply: (s: number, b: unknown) => void): void {
    const offset = Number(payload.offset ?? 0);
    const timeoutS = Number(payload.timeout ?? 0);
    const answer = () => {
      const updates = this.queue.filter((u) => u.update_id >= offset);
      reply(200, { ok: true, result: updates });
    };
    // Confirmed updates are dropped; the rest are sent, or we wait for some (long polling).
    while (this.queue.length > 0 && this.queue[0]!.update_id < offset) this.queue.shift();
    if (this.queue.length > 0 || timeoutS === 0) return answer();
    const timer = setTimeout(() => {
      this.waiting = this.waiting.filter((w) => w !== wake);
      answer();
    }, timeoutS * 1000);
    const wake = () => {
      clearTimeout(timer);
      answer();
    };
    this.waiting.push(wake);
  }
}
