import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig, secretsOf } from "../src/config/load.js";
import { closeLogger, createLogger, maskSecrets } from "../src/log.js";
import { tempDir } from "./helpers.js";

const token = "7012345678:AAHkq3Zr9VtY0xW2u5sPq8LmN4bC6dE1fGh";
const apiKey = "tfk_9f8e7d6c5b4a3f2e1d0c";
const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function logFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => /^orchestrator\.\d+\.log$/.test(f))
    .sort((a, b) => Number(a.split(".")[1]) - Number(b.split(".")[1]));
}

describe("logs", () => {
  it("never contain a secret, wherever it hides", async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const log = createLogger({ level: "debug", dir, stderr: false, secrets: [apiKey] });
    const url = `https://api.telegram.org/bot${token}/getUpdates`;
    log.info(`calling ${url}`);
    log.warn({ request: { url, headers: { authorization: `Bearer ${apiKey}` } } }, "request failed");
    log.error(
      {
        err: new Error(`Network request for getUpdates failed: ${url}`, {
          cause: new Error(`key ${apiKey}`),
        }),
      },
      "boom",
    );
    log.child({ server: "git", env: { GIT_TOKEN: "hunter2hunter2" } }).info({ bot_token: token }, "child");
    log.info({ note: `an API key in prose: ${apiKey}` }, "free text");
    await closeLogger(log);
    const text = logFiles(dir)
      .map((f) => readFileSync(path.join(dir, f), "utf8"))
      .join("");
    expect(text.split("\n").filter(Boolean)).toHaveLength(5);
    expect(text).not.toContain(token);
    expect(text).not.toContain(token.split(":")[1]);
    expect(text).not.toContain(apiKey);
    expect(text).not.toContain("hunter2hunter2");
    expect(text).toContain("[token]");
    expect(text).toContain('"msg":"boom"');
  });

  it("rotates by size into numbered files and loses no line", async () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const log = createLogger({ level: "info", dir, stderr: false, maxSize: "2k", maxFiles: 50 });
    // Written in bursts, as a running bot writes: rotation is checked after each write.
    for (let burst = 0; burst < 30; burst++) {
      for (let i = burst * 10; i < burst * 10 + 10; i++)
        log.info({ line: i }, "a line long enough to fill a small file");
      await new Promise<void>((resolve) => log.flush(() => resolve()));
    }
    await closeLogger(log);
    const files = logFiles(dir);
    expect(files.length).toBeGreaterThan(3);
    const lines = files
      .flatMap((f) => readFileSync(path.join(dir, f), "utf8").split("\n"))
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { line: number }).line);
    expect(lines).toEqual(Array.from({ length: 300 }, (_, i) => i));
  });

  it("mask every secret of the config: the bot token, the API key, the webhook secret, servers' secrets", () => {
    const { dir, remove } = tempDir();
    cleanups.push(remove);
    const env = {
      BOT_TOKEN: token,
      API_KEY: apiKey,
      WEBHOOK_SECRET: "whs_0123456789abcdef",
      CALDAV_PASSWORD: "caldav-pass-0123",
    };
    const { config } = loadConfig({ cwd: dir, env });
    config.servers.calendar.env.CALDAV_PASSWORD = env.CALDAV_PASSWORD;
    expect(secretsOf(config).sort()).toEqual(Object.values(env).sort());
    const line = maskSecrets(
      `key ${apiKey} secret ${env.WEBHOOK_SECRET} pw ${env.CALDAV_PASSWORD}`,
      secretsOf(config),
    );
    expect(line).toBe("key [secret] secret [secret] pw [secret]");
  });

  it("masks token and key shapes in free text", () => {
    expect(maskSecrets(`x ${token} y`)).toBe("x [token] y");
    expect(maskSecrets("Authorization: Bearer abc.def-123456")).toBe("Authorization: Bearer [key]");
    expect(maskSecrets("POST https://alice:pw123456@ntfy.example/t failed")).toBe(
      "POST https://***:***@ntfy.example/t failed",
    );
  });
});
