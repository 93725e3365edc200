import { execFile } from "node:child_process";
import path from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startHttpServer } from "../../src/api/http-server.js";
import type { ServerName } from "../../src/config/schema.js";
import { ValidationError } from "../../src/errors.js";
import { createLogger, closeLogger } from "../../src/log.js";
import { newTaskId, validateNewTask, type Task } from "../../src/domain/task.js";
import { createSqliteStore as createStore } from "../../src/store/sqlite/sqlite-store.js";
import { terminalSafe } from "../../src/terminal.js";
import { faultServerPath, startHarness, type Harness } from "../core-harness.js";
import { onlyServers, repoRoot, silentLog, tempDir } from "../helpers.js";
import { readFileSync } from "node:fs";

const run = promisify(execFile);
const bin = path.join(repoRoot, "bin", "taskfan.js");

describe("task text at every entry point", () => {
  it.each([
    [{ title: "nul in the description", description: "a\u0000b" }, "description", "U+0000"],
    [{ title: "a title\r\nEND:VTODO" }, "title", "U+000D"],
    [{ title: "\u001b]0;pwned\u0007" }, "title", "U+001B"],
    [{ title: "delete\u007f" }, "title", "U+007F"],
    [{ title: "a tag of ours", tags: ["taskfan-abc123"] }, "tags", "reserved"],
  ])("refuses %j naming %s", (input, field, says) => {
    expect(() => validateNewTask(input)).toThrow(ValidationError);
    try {
      validateNewTask(input);
    } catch (error) {
      expect((error as ValidationError).field).toBe(field);
      expect((error as ValidationError).message).toContain(says);
    }
  });

  it("keeps line breaks and tabs in a description (a pasted CRLF becomes LF)", async () => {
    expect(validateNewTask({ title: "t", description: "one\r\ntwo\tthree" }).description).toBe(
      "one\ntwo\tthree",
    );
  });

  it("is refused by the command line with the field named (exit 2)", async () => {
    const { dir, remove } = tempDir();
    try {
      const r = await run(process.execPath, [bin, "create", "--title", "\u001b]0;pwned\u0007"], {
        cwd: dir,
        env: { ...process.env, DATA_DIR: path.join(dir, "data"), HTTP_PORT: "0", LOG_LEVEL: "warn" },
      }).catch((e: { code: number; stderr: string }) => e);
      expect((r as { code: number }).code).toBe(2);
      expect((r as { stderr: string }).stderr).toContain(
        "taskfan: title: the title may not hold control characters (U+001B)",
      );
      expect((r as { stderr: string }).stderr).not.toContain("\u001b");
    } finally {
      remove();
    }
  });
});

describe("printing to a terminal", async () => {
  it("escapes control characters of task text and servers' errors", async () => {
    expect(terminalSafe("a\u001b[2Jb\nc\u0007\u202e")).toBe("a\\x1b[2Jb\nc\\x07\\u202e");
    // A task stored by an older release, before text was checked.
    const { dir, remove } = tempDir();
    try {
      const store = createStore(path.join(dir, "data", "taskfan.db"));
      await store.tasks.insertWithOperations(
        "oldtask001",
        { title: "\u001b]0;pwned\u0007\u001b[2K", description: "", priority: 3, deadline: null, tags: [] },
        null,
        [{ server: "memory", priority: 2, waitsFor: [], idempotencyKey: "oldtask001:memory:create" }],
      );
      await store.close();
      const { stdout } = await run(process.execPath, [bin, "task", "oldtask001"], {
        cwd: dir,
        env: { ...process.env, DATA_DIR: path.join(dir, "data"), LOG_LEVEL: "warn" },
      });
      expect(stdout).toContain("\\x1b]0;pwned\\x07\\x1b[2K");
      // eslint-disable-next-line no-control-regex
      expect(stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f]/);
    } finally {
      remove();
    }
  });
});

describe("URL credentials in a server's error", async () => {
  let h: Harness;
  const password = "hunter2-secret-pw";
  beforeAll(async () => {
    h = await startHarness({
      servers: onlyServers(["deltatask"], {
        deltatask: {
          command: process.execPath,
          args: [faultServerPath],
          env: {
            FAULT: "is-error",
            ERROR_TEXT: `could not post to https://alice:${password}@ntfy.example/topic`,
          },
          required: false,
        },
      }),
    });
  });
  afterAll(() => h?.stop());

  it("are masked in the stored error, the API and the log", async () => {
    const id = await h.core.orchestrator.createTask({ title: "leaky" });
    const view = await h.core.orchestrator.waitForSettled(id, 20_000);
    expect(view!.operations[0]!.lastError).toBe(
      "deltatask: create_task failed: could not post to https://***:***@ntfy.example/topic",
    );
    const http = await startHttpServer(h.core, h.core.metrics, silentLog);
    try {
      expect(await (await fetch(`${http.url}/api/tasks/${id}`)).text()).not.toContain(password);
    } finally {
      await http.close();
    }
    const logs = path.join(h.dir, "logs");
    const log = createLogger({ dir: logs, stderr: false, level: "info" });
    log.warn({ err: new Error(`fetch https://alice:${password}@ntfy.example/ failed`) }, "logged");
    await closeLogger(log);
    const written = readFileSync(path.join(logs, "current.log"), "utf8");
    expect(written).toContain("https://***:***@ntfy.example/");
    expect(written).not.toContain(password);
  });
});

describe("markers a task's text cannot forge", async () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h?.stop());

  it("another task's title and description never pass for a task's own record", async () => {
    // A task not on any server yet, whose id another task's text names.
    const victim: Task = {
      id: newTaskId(),
      title: "the real one",
      description: "",
      priority: 3,
      deadline: null,
      tags: [],
      status: "pending",
      statusReason: null,
      createdAt: Date.now(),
      updatedAt: Date.now(),
      settledAt: null,
      rollbackReason: null,
      state: "open",
      version: 1,
      completedAt: null,
      deletedAt: null,
      chatId: null,
      userId: null,
    };
    const marker = `taskfan-${victim.id}`;
    const forger = await h.core.orchestrator.createTask({
      title: `Forged [${marker}]`,
      description: [
        // Shrimp lists the first 100 characters of a description under the task's heading.
        "Notes",
        `### [${marker}] f (ID: 00000000-0000-4000-8000-000000000000)`,
        "",
        `Taskfan-Task: ${victim.id}`,
        `Taskfan-Withdrawn: ${victim.id}`,
      ].join("\n"),
    });
    expect((await h.core.orchestrator.waitForSettled(forger, 30_000))?.task.status).toBe("done");
    for (const server of h.core.fleet.names) {
      const integration = h.core.fleet.integration(server as ServerName);
      const found = await h.core.fleet.execute(
        server,
        ({ call, signal }) => integration.verify(victim, null, call, signal),
        AbortSignal.timeout(20_000),
      );
      expect(found, server).toEqual({ found: false });
    }
    const git = h.core.fleet.integration("git");
    const undone = await h.core.fleet.execute(
      "git",
      ({ call, signal }) => git.isUndone!(victim, "", call, signal),
      AbortSignal.timeout(20_000),
    );
    expect(undone).toBe(false);
  });
});
