import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadConfig, maskConfig } from "./config/load.js";
import { ConfigError, ValidationError, describeError } from "./errors.js";
import { closeLogger, createLogger, type Logger } from "./log.js";
import { startHttpServer } from "./api/http-server.js";
import { startFrontEnd } from "./bot/front-end.js";
import { databasePath, startCore } from "./main.js";
import type { TaskView } from "./orchestrator/orchestrator.js";
import { createStore } from "./store/store.js";

const usage = `taskfan: a task desk that fans each task out to ten MCP servers

Usage:
  taskfan [start]                         run the orchestrator and its loops
  taskfan create --title T [--description D] [--priority 1-5]
                 [--deadline ISO] [--tags a,b] [--wait SECONDS] [--json]
  taskfan task <id> [--json]              one task and its per-server state
  taskfan config print                    the effective config, secrets masked

Options:
  --config PATH   config file (default: taskfan.config.json, or TASKFAN_CONFIG)
  -h, --help      this text`;

export interface ResultLine {
  server: string;
  ok: boolean;
  ms: number;
  remoteId?: string;
  skipped?: string;
  error?: string;
}

/** The per-server results of a task, the shape `create --json` prints. */
export function resultsOf(view: TaskView): { task: { id: string; status: string }; results: ResultLine[] } {
  return {
    task: { id: view.task.id, status: view.task.status },
    results: view.operations
      .filter((o) => o.kind === "create")
      .map((o) => {
        const ok = o.status === "done" || o.status === "skipped";
        const line: ResultLine = { server: o.server, ok, ms: o.totalMs };
        if (o.remoteId) line.remoteId = o.remoteId;
        if (o.status === "skipped" && o.lastError) line.skipped = o.lastError;
        if (!ok) {
          line.error =
            o.status === "pending" || o.status === "running"
              ? `not finished: ${o.waiting ?? o.lastError ?? o.status}`
              : (o.lastError ?? o.status);
        }
        return line;
      }),
  };
}

function printView(view: TaskView, out: NodeJS.WritableStream): void {
  const { task } = view;
  out.write(`task ${task.id}: ${task.status}${task.statusReason ? ` (${task.statusReason})` : ""}\n`);
  out.write(`  ${task.title} · priority ${task.priority}${task.deadline ? ` · due ${task.deadline}` : ""}\n`);
  for (const r of resultsOf(view).results) {
    const mark = r.ok ? "ok  " : "FAIL";
    const detail = r.error ?? r.skipped ?? r.remoteId ?? "";
    out.write(`  ${mark} ${r.server.padEnd(20)} ${String(r.ms).padStart(6)} ms  ${detail}\n`);
  }
}

/** Runs one command; returns the exit code. */
export async function runCli(
  argv: string[],
  io = { out: process.stdout, err: process.stderr },
): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      config: { type: "string" },
      title: { type: "string" },
      description: { type: "string" },
      priority: { type: "string" },
      deadline: { type: "string" },
      tags: { type: "string" },
      wait: { type: "string" },
      json: { type: "boolean", default: false },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  const command = positionals[0] ?? "start";
  if (values.help || command === "help") {
    io.out.write(`${usage}\n`);
    return 0;
  }
  if (existsSync(".env")) process.loadEnvFile(".env");
  const { config, source } = loadConfig({ configPath: values.config });
  const quiet = command !== "start";
  const runs = command === "start" || command === "create";
  const log: Logger = createLogger({
    level: process.env.LOG_LEVEL ?? (quiet ? "warn" : "info"),
    // Commands that run the fleet keep their log in files too.
    dir: runs ? config.logs_dir : undefined,
    maxSize: config.logging.max_size,
    maxFiles: config.logging.max_files,
    secrets: [config.notifications.telegram.bot_token ?? ""],
  });

  switch (command) {
    case "config": {
      if (positionals[1] !== "print") throw new UsageError("usage: taskfan config print");
      io.out.write(
        `${JSON.stringify({ source: source ?? "embedded default", ...(maskConfig(config) as object) }, null, 2)}\n`,
      );
      return 0;
    }
    case "task": {
      const id = positionals[1];
      if (!id) throw new UsageError("usage: taskfan task <id> [--json]");
      if (!existsSync(databasePath(config))) {
        io.err.write(`no task ${id}: no database at ${databasePath(config)}\n`);
        return 1;
      }
      const store = createStore(databasePath(config));
      try {
        const task = store.tasks.get(id);
        if (!task) {
          io.err.write(`no task ${id}\n`);
          return 1;
        }
        const view = { task, operations: store.operations.forTask(id) };
        if (values.json)
          io.out.write(`${JSON.stringify({ ...resultsOf(view), operations: view.operations }, null, 2)}\n`);
        else printView(view, io.out);
        return 0;
      } finally {
        store.close();
      }
    }
    case "create": {
      if (!values.title) throw new UsageError("create needs --title");
      const waitSeconds = values.wait === undefined ? 60 : Number(values.wait);
      if (!Number.isFinite(waitSeconds) || waitSeconds < 0)
        throw new UsageError("--wait takes a number of seconds");
      const input = {
        title: values.title,
        description: values.description,
        priority: values.priority === undefined ? undefined : Number(values.priority),
        deadline: values.deadline,
        tags: values.tags
          ? values.tags
              .split(",")
              .map((t) => t.trim())
              .filter(Boolean)
          : [],
      };
      const core = await startCore(config, log);
      try {
        const id = core.orchestrator.createTask(input);
        const view = await core.orchestrator.waitForSettled(id, waitSeconds * 1000);
        if (!view) throw new Error(`task ${id} vanished`);
        if (values.json) io.out.write(`${JSON.stringify(resultsOf(view))}\n`);
        else printView(view, io.out);
        return view.task.status === "done" ? 0 : 1;
      } finally {
        await core.close();
        await closeLogger(log);
      }
    }
    case "start": {
      const core = await startCore(config, log);
      const up = core.started.filter((s) => s.ok).length;
      log.info({ servers: core.started.length, up, config: source ?? "embedded default" }, "taskfan started");
      const http = config.http.enabled ? await startHttpServer(core, core.metrics, log) : undefined;
      const frontEnd = await startFrontEnd(core, log, { input: process.stdin, output: io.out });
      await new Promise<void>((resolve) => {
        let signals = 0;
        const onSignal = (signal: NodeJS.Signals) => {
          signals += 1;
          if (signals > 1) {
            log.warn({ signal }, "second signal: exiting now");
            process.exit(1);
          }
          log.info({ signal }, "shutting down");
          // Each step runs even if the one before failed: the servers must always be stopped.
          const step = (what: string, fn: () => Promise<unknown> | undefined) =>
            Promise.resolve()
              .then(fn)
              .catch((error: unknown) => log.error({ err: error }, `shutdown: ${what} failed`));
          void step("bot", () => frontEnd.stop())
            .then(() => step("http server", () => http?.close()))
            .then(() => step("core", () => core.close()))
            .then(() => resolve());
        };
        process.on("SIGINT", onSignal);
        process.on("SIGTERM", onSignal);
      });
      log.info("stopped");
      await closeLogger(log);
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${command}"\n\n${usage}`);
  }
}

class UsageError extends Error {}

/** The entry point of the `taskfan` command. */
export async function main(): Promise<void> {
  try {
    process.exitCode = await runCli(process.argv.slice(2));
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`taskfan: ${error.message}\n`);
      process.exitCode = 2;
    } else if (error instanceof ValidationError) {
      process.stderr.write(`taskfan: ${error.field}: ${error.message}\n`);
      process.exitCode = 2;
    } else if (
      error instanceof UsageError ||
      (error as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")
    ) {
      process.stderr.write(`taskfan: ${describeError(error)}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`taskfan: ${describeError(error)}\n`);
      process.exitCode = 1;
    }
  }
}
