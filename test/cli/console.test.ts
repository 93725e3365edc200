import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFailed, vi } from "vitest";
import { serverNames } from "../../src/config/schema.js";
import { childPids, repoRoot, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";

const bin = path.join(repoRoot, "bin", "taskfan.js");
let dir: string;
let remove: () => void;
beforeAll(() => ({ dir, remove } = tempDir()));
afterAll(() => {
  stopSpawned(); // only what a failed or timed-out test left running
  remove();
});

describe("the console chat (no bot token)", () => {
  it("creates a task through /newtask typed on stdin and shows it reach all ten servers; an alert printed meanwhile takes no number", async () => {
    // Probes every second: a server killed mid-conversation is an alert within moments.
    const config = path.join(dir, "probing.json");
    writeFileSync(config, JSON.stringify({ health_check_interval: 1, health: { probe_timeout: 1 } }));
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATA_DIR: path.join(dir, "data"),
      HTTP_PORT: "0",
      LOG_LEVEL: "warn",
      TASKFAN_CONFIG: config,
    };
    delete env.BOT_TOKEN;
    const child = spawnTracked(process.execPath, [bin, "start"], {
      cwd: dir,
      env,
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    const seen = (needle: string) =>
      new Promise<void>((resolve) => {
        if (out.includes(needle)) return resolve();
        const on = () => {
          if (out.includes(needle)) {
            child.stdout!.off("data", on);
            resolve();
          }
        };
        child.stdout!.on("data", on);
      });
    child.stdout!.on("data", (d: Buffer) => (out += d.toString("utf8")));
    onTestFailed(() => {
      process.stderr.write(`console chat so far:\n${out.slice(-3000)}\n`);
    });
    const type = (line: string) => child.stdin!.write(`${line}\n`);

    await seen("taskfan console chat");
    type("/newtask");
    await seen("What is the task?");
    type("Plan the release");
    await seen("Describe it.");
    type("/skip");
    await seen("[1] 1 · critical");
    // The memory server dies: its alert, with lettered buttons, is printed mid-conversation.
    const memory = childPids(child.pid!).find((p) =>
      readFileSync(`/proc/${p}/cmdline`, "utf8").includes("server-memory"),
    )!;
    process.kill(memory, "SIGKILL");
    await seen("memory");
    await seen("[a] Show health");
    type("2"); // still the conversation's second button: priority 2
    await seen("When is it due?");
    expect(out).not.toMatch(/muted until/i);
    type("in 2 days");
    await seen("Tags?");
    type("#release");
    await seen("[1] ✅ Create");
    type("1");
    await seen("Done: every server has it.");
    const progress = out.slice(out.lastIndexOf("bot (updated"));
    for (const server of serverNames) {
      expect(progress).toMatch(new RegExp(`✅ ${server}\\s+[\\d,]+ ms`));
    }
    type("/health");
    await seen("Servers: 10 of 10 online");
    child.stdin!.end();
    expect(await terminate(child)).toBe(0);
  });

  it("shows a banner and a clean chat: no INFO line between the prompt and the first reply", async () => {
    const { dir: other, remove: rm } = tempDir();
    try {
      const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: path.join(other, "data"), HTTP_PORT: "0" };
      delete env.BOT_TOKEN;
      delete env.LOG_LEVEL;
      const child = spawnTracked(process.execPath, [bin, "start"], {
        cwd: other,
        env,
        stdio: ["pipe", "pipe", "pipe"],
      });
      let out = "";
      let err = "";
      child.stderr!.on("data", (d: Buffer) => (err += d.toString("utf8")));
      const reply = new Promise<void>((resolve) =>
        child.stdout!.on("data", (d: Buffer) => {
          out += d.toString("utf8");
          if (out.includes("taskfan console chat") && !out.includes("/start sent")) {
            out += "/start sent\n";
            child.stdin!.write("/start\n");
          }
          if (out.includes("Hello, you!")) resolve();
        }),
      );
      await reply;
      const banner = out.slice(0, out.indexOf("taskfan console chat"));
      expect(banner).toMatch(/^taskfan \d+\.\d+\.\d+\n/);
      expect(banner).toContain("servers      10 of 10 online");
      expect(banner).toContain(`logs         ${path.join(other, "logs", "current.log")}`);
      expect(banner).toContain("chat         console chat");
      // The status page really is where the banner says.
      const page = /status page {2}(http:\/\/\S+)\n/.exec(banner)![1]!;
      expect((await fetch(page)).status).toBe(200);
      // Between the prompt and the reply, only the chat; the terminal's stderr has no INFO line.
      const chat = out.slice(out.indexOf("taskfan console chat"));
      expect(chat.split("\n").slice(1, 3)).toEqual([
        "/start sent",
        expect.stringMatching(/^bot: Hello, you!/),
      ]);
      expect(err).not.toMatch(/INFO|"level":30/);
      // Everything went to the log file instead.
      const { readFileSync } = await import("node:fs");
      await vi.waitFor(async () =>
        expect(readFileSync(path.join(other, "logs", "current.log"), "utf8")).toContain(
          '"msg":"taskfan started"',
        ),
      );
      child.stdin!.end();
      expect(await terminate(child)).toBe(0);
    } finally {
      rm();
    }
  });
});
