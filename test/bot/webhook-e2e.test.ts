import { type ChildProcess } from "node:child_process";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, repoRoot, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";
import { FakeBotApi } from "./fake-bot-api.js";

const bin = path.join(repoRoot, "bin", "taskfan.js");

let api: FakeBotApi;
let child: ChildProcess;
let hook: string;
let remove: () => void;

beforeAll(async () => {
  const tmp = tempDir();
  remove = tmp.remove;
  api = new FakeBotApi();
  await api.start();
  const port = await freePort();
  hook = `http://127.0.0.1:${port}/telegram/updates`;
  child = spawnTracked(process.execPath, [bin, "start"], {
    cwd: tmp.dir,
    env: {
      ...process.env,
      DATA_DIR: path.join(tmp.dir, "data"),
      HTTP_PORT: "0", // any free port: test processes run side by side
      LOG_LEVEL: "warn",
      BOT_TOKEN: "123456:WEBHOOKtokenWEBHOOKtokenWEBHOOKtok",
      TELEGRAM_API_ROOT: api.url,
      ALLOWED_USER_IDS: "7",
      WEBHOOK_URL: hook,
      WEBHOOK_PORT: String(port),
      WEBHOOK_SECRET: "the-right-secret",
    },
    stdio: ["ignore", "ignore", "ignore"],
  });
  await api.until((calls) => calls.some((c) => c.method === "setWebhook"));
});

afterAll(async () => {
  await terminate(child);
  await api.stop();
  remove();
  stopSpawned(); // only what a failed or timed-out test left running
});

const update = (text: string) => ({
  update_id: 1,
  message: {
    message_id: 1,
    date: Math.floor(Date.now() / 1000),
    chat: { id: 7, type: "private", first_name: "Owner" },
    from: { id: 7, is_bot: false, first_name: "Owner" },
    text,
    entities: [{ type: "bot_command", offset: 0, length: text.length }],
  },
});

describe("webhook mode (WEBHOOK_URL set)", () => {
  it("registers the webhook with a secret token", () => {
    expect(api.calls.find((c) => c.method === "setWebhook")!.payload).toMatchObject({
      url: hook,
      secret_token: "the-right-secret",
    });
  });

  it("rejects an update without the right secret token, and handles one with it", async () => {
    const post = (secret?: string) =>
      fetch(hook, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(secret ? { "x-telegram-bot-api-secret-token": secret } : {}),
        },
        body: JSON.stringify(update("/help")),
      });
    expect((await post()).status).toBe(401);
    expect((await post("a-wrong-secret")).status).toBe(401);
    expect(api.calls.some((c) => c.method === "sendMessage")).toBe(false);
    expect((await post("the-right-secret")).status).toBe(200);
    await api.until((calls) =>
      calls.some((c) => c.method === "sendMessage" && String(c.payload.text).includes("/newtask")),
    );
  });
});
