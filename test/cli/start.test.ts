import { execFileSync } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeFileSync } from "node:fs";
import { FakeBotApi } from "../bot/fake-bot-api.js";
import { childPids, repoRoot, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";

const bin = path.join(repoRoot, "bin", "taskfan.js");
let dir: string;
let remove: () => void;
beforeAll(() => ({ dir, remove } = tempDir()));
afterAll(() => {
  stopSpawned(); // only what a failed or timed-out test left running
  remove();
});

const env = () => ({ ...process.env, DATA_DIR: path.join(dir, "data"), HTTP_PORT: "0", LOG_LEVEL: "info" });

describe("taskfan start", () => {
  it("re-drives what an earlier run left unfinished, then shuts down cleanly on SIGTERM", async () => {
    // A create that does not wait: the task is durable, its operations are not all done.
    let created: { task: { id: string; status: string } } | undefined;
    try {
      execFileSync(process.execPath, [bin, "create", "--title", "left for later", "--wait", "0", "--json"], {
        cwd: dir,
        env: { ...env(), LOG_LEVEL: "warn" },
        encoding: "utf8",
      });
    } catch (error) {
      created = JSON.parse((error as { stdout: string }).stdout);
    }
    expect(created?.task.status).not.toBe("done");
    const id = created!.task.id;

    const child = spawnTracked(process.execPath, [bin, "start"], {
      cwd: dir,
      env: env(),
      stdio: ["ignore", "ignore", "pipe"],
    });
    const lines = createInterface({ input: child.stderr! });
    const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    let servers: number[] = [];
    for await (const line of lines) {
      const entry = JSON.parse(line) as {
        msg: string;
        taskId?: string;
        status?: string;
        servers?: { online: number };
      };
      if (entry.msg === "taskfan started") {
        expect(entry.servers?.online).toBe(10);
        servers = childPids(child.pid!);
      }
      if (entry.msg === "task settled" && entry.taskId === id) {
        expect(entry.status).toBe("done");
        break;
      }
    }
    expect(servers.length).toBeGreaterThanOrEqual(10);
    child.kill("SIGTERM");
    expect(await exit).toBe(0);
    // Every server process went with it.
    for (const pid of servers) expect(() => process.kill(pid, 0)).toThrow();
    const shown = JSON.parse(
      execFileSync(process.execPath, [bin, "task", id, "--json"], { cwd: dir, env: env(), encoding: "utf8" }),
    );
    expect(shown.task.status).toBe("done");
  });

  it("keeps the bot off with notifications.telegram.enabled false, even with a token", async () => {
    const { dir: other, remove: rm } = tempDir();
    const api = new FakeBotApi();
    await api.start();
    try {
      writeFileSync(
        path.join(other, "taskfan.config.json"),
        JSON.stringify({
          notifications: { telegram: { enabled: false } },
          servers: { git: { enabled: false } },
        }),
      );
      const child = spawnTracked(process.execPath, [bin, "start"], {
        cwd: other,
        env: {
          ...process.env,
          DATA_DIR: path.join(other, "data"),
          HTTP_PORT: "0",
          BOT_TOKEN: "123456:TESTtokenTESTtokenTESTtokenTESTtok",
          TELEGRAM_API_ROOT: api.url,
        },
        stdio: ["pipe", "pipe", "ignore"],
      });
      // The console chat runs instead; Telegram never hears from it.
      for await (const line of createInterface({ input: child.stdout! })) {
        if (line.startsWith("taskfan console chat")) break;
      }
      expect(api.calls).toEqual([]);
      expect(await terminate(child)).toBe(0);
      expect(api.calls).toEqual([]);
    } finally {
      await api.stop();
      rm();
    }
  });
});
