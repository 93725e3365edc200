import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serverNames } from "../../src/config/schema.js";
import { repoRoot, spawnTracked, stopSpawned, tempDir, terminate } from "../helpers.js";

const bin = path.join(repoRoot, "bin", "taskfan.js");
let dir: string;
let remove: () => void;
beforeAll(() => ({ dir, remove } = tempDir()));
afterAll(() => {
  stopSpawned(); // only what a failed or timed-out test left running
  remove();
});

describe("the console chat (no bot token)", () => {
  it("creates a task through /newtask typed on stdin and shows it reach all ten servers", async () => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      DATA_DIR: path.join(dir, "data"),
      HTTP_PORT: "0",
      LOG_LEVEL: "warn",
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
    const type = (line: string) => child.stdin!.write(`${line}\n`);

    await seen("taskfan console chat");
    type("/newtask");
    await seen("What is the task?");
    type("Plan the release");
    await seen("Describe it.");
    type("/skip");
    await seen("[1] 1 · critical");
    type("2"); // the second button: priority 2
    await seen("When is it due?");
    type("in 2 days");
    await seen("Tags?");
    type("#release");
    await seen("[1] ✅ Create");
    type("1");
    await seen("Done: every server has it.");
    const progress = out.slice(out.lastIndexOf("bot (updated"));
    for (const server of serverNames) {
      expect(progress).toMatch(new RegExp(`✅ ${server}\\s+\\d+ ms`));
    }
    type("/health");
    await seen("Servers: 10 of 10 online");
    child.stdin!.end();
    expect(await terminate(child)).toBe(0);
  });
});
