/**
 * The entry point of taskfan (`bin/taskfan.js` runs `main()`): parses the command line,
 * loads the config, and runs one command. The parts are built by the composition root,
 * `startCore` in `core.ts`; the HTTP server and the chat are started on top of it here.
 */
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { loadConfig, printableConfig, secretsOf } from "./config/load.js";
import {
  ConfigError,
  SchemaTooNewError,
  StoreUnavailableError,
  TaskfanError,
  UsageError,
  ValidationError,
  describeError,
} from "./errors.js";
import { closeLogger, createLogger, type Logger } from "./log.js";
import { startHttpServer } from "./api/http-server.js";
import { startFrontEnd } from "./bot/front-end.js";
import { databasePath, startCore } from "./core.js";
import type { Operation, TaskView } from "./domain/task.js";
import { versionOf } from "./bot/task-format.js";
import type { TaskChangeInput } from "./orchestrator/orchestrator.js";
import { copySqliteToPostgres, describeCopy, TargetNotEmptyError } from "./store/copy.js";
import { openStore } from "./store/open-store.js";
import { serveServers } from "./servers/serve-all.js";
import { formatBanner, startFacts } from "./banner.js";
import { terminalSafe } from "./terminal.js";
import { formatInZone } from "./time-zone.js";

const usage = `taskfan: a task desk that fans each task out to ten MCP servers

Usage:
  taskfan [start] [--verbose]             run the orchestrator, its loops and the chat
  taskfan create --title T [--description D] [--priority 1-5]
                 [--deadline ISO] [--tags a,b] [--wait SECONDS] [--json]
  taskfan task <id> [--json]              one task and its per-server state
  taskfan done|reopen|delete <id> [--wait SECONDS] [--json]
  taskfan edit <id> [--title T] [--description D] [--priority 1-5]
                 [--deadline ISO|none] [--tags a,b] [--if-version N] [--wait S] [--json]
                                          change a task on every server that holds it
  taskfan config print                    the effective config, secrets masked
  taskfan store copy --to postgres://…    copy the SQLite store into an empty PostgreSQL
  taskfan servers serve [--port 8790] [--host 127.0.0.1]
                                          the ten default servers over Streamable HTTP

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
    results: view.operations.filter((o) => o.kind === "create").map((o) => resultLine(o, true)),
  };
}

/** One server's result: ok when done or skipped (with why), else the error or what it waits for. */
function resultLine(o: Operation, withRemoteId: boolean): ResultLine {
  const ok = o.status === "done" || o.status === "skipped";
  const line: ResultLine = { server: o.server, ok, ms: o.totalMs };
  if (withRemoteId && o.remoteId) line.remoteId = o.remoteId;
  if (o.status === "skipped" && o.lastError) line.skipped = o.lastError;
  if (!ok) {
    line.error =
      o.status === "pending" || o.status === "running"
        ? `not finished: ${o.waiting ?? o.lastError ?? o.status}`
        : (o.lastError ?? o.status);
  }
  return line;
}

/** The change a command line asks for. */
function changeOf(
  command: string,
  values: { title?: string; description?: string; priority?: string; deadline?: string; tags?: string },
): TaskChangeInput {
  if (command === "done") return { kind: "complete" };
  if (command === "reopen") return { kind: "reopen" };
  if (command === "delete") return { kind: "delete" };
  const fields: Extract<TaskChangeInput, { kind: "update" }>["fields"] = {};
  if (values.title !== undefined) fields.title = values.title;
  if (values.description !== undefined) fields.description = values.description;
  if (values.priority !== undefined) fields.priority = Number(values.priority);
  if (values.deadline !== undefined) fields.deadline = values.deadline === "none" ? null : values.deadline;
  if (values.tags !== undefined)
    fields.tags = values.tags
      .split(",")
      .map((t) => t.trim())
      .filter(Boolean);
  if (Object.keys(fields).length === 0)
    throw new UsageError("edit needs a field: --title, --description, --priority, --deadline or --tags");
  return { kind: "update", fields };
}

/** A change's per-server results (its operations of that version), the shape `--json` prints. */
export function changeResultsOf(
  view: TaskView,
  kind: string,
  version: number,
): { task: { id: string; state: string; version: number }; results: ResultLine[] } {
  return {
    task: { id: view.task.id, state: view.task.state, version: view.task.version },
    results: view.operations
      .filter((o) => o.kind === kind && versionOf(o) === version)
      .map((o) => resultLine(o, false)),
  };
}

/** A task for a person on a terminal; its deadline in `zone`. */
function printView(view: TaskView, out: NodeJS.WritableStream, zone: string): void {
  const { task } = view;
  const lines = [
    `task ${task.id}: ${task.status}${task.statusReason ? ` (${task.statusReason})` : ""}`,
    `  ${task.title} · priority ${task.priority}${task.deadline ? ` · due ${formatInZone(task.deadline, zone)}` : ""}`,
    ...resultsOf(view).results.map((r) => {
      const mark = r.ok ? "ok  " : "FAIL";
      const detail = r.error ?? r.skipped ?? r.remoteId ?? "";
      return `  ${mark} ${r.server.padEnd(20)} ${String(r.ms).padStart(6)} ms  ${detail}`;
    }),
  ];
  // Task text and servers' errors are not ours: printed with their control characters escaped.
  out.write(`${lines.map((line) => terminalSafe(line.replace(/\n/g, " "))).join("\n")}\n`);
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
      to: { type: "string" },
      port: { type: "string" },
      host: { type: "string" },
      wait: { type: "string" },
      "if-version": { type: "string" },
      json: { type: "boolean", default: false },
      verbose: { type: "boolean", short: "v", default: false },
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
  const quiet = command !== "start" && command !== "servers";
  const changes = ["done", "reopen", "delete", "edit"];
  const runs = command === "start" || command === "create" || changes.includes(command);
  const { telegram } = config.notifications;
  const consoleChat = command === "start" && !(telegram.bot_token && telegram.enabled);
  // The console chat owns the terminal: warnings only, one short line each, unless asked.
  const level = process.env.LOG_LEVEL || undefined;
  const brief = consoleChat && !values.verbose && level === undefined;
  const log: Logger = createLogger({
    level: level ?? (quiet ? "warn" : "info"),
    brief,
    // Commands that run the fleet keep their log in files too.
    dir: runs ? config.logs_dir : undefined,
    maxSize: config.logging.max_size,
    maxFiles: config.logging.max_files,
    secrets: secretsOf(config),
  });

  switch (command) {
    case "servers": {
      if (positionals[1] !== "serve")
        throw new UsageError("usage: taskfan servers serve [--port P] [--host H]");
      return serveUntilSignal(config.data_dir, values, io, log);
    }
    case "store": {
      if (positionals[1] !== "copy") throw new UsageError("usage: taskfan store copy --to postgres://…");
      const to = values.to ?? process.env.DATABASE_URL;
      if (!to || !/^postgres(ql)?:\/\//.test(to))
        throw new UsageError("store copy needs --to postgres://user:password@host:port/database");
      const from = databasePath(config);
      if (!existsSync(from)) {
        io.err.write(`taskfan: nothing to copy: no database at ${from}\n`);
        return 1;
      }
      try {
        io.out.write(`${describeCopy(await copySqliteToPostgres(from, to), from, to)}\n`);
        return 0;
      } catch (error) {
        if (!(error instanceof TargetNotEmptyError)) throw error;
        io.err.write(`taskfan: ${error.message}; nothing was copied\n`);
        return 1;
      }
    }
    case "config": {
      if (positionals[1] !== "print") throw new UsageError("usage: taskfan config print");
      // stdout is a config file taskfan accepts; where it came from goes to stderr.
      io.err.write(
        `# taskfan: the effective config of ${source ?? "the embedded default"}, secrets masked\n`,
      );
      io.out.write(`${JSON.stringify(printableConfig(config), null, 2)}\n`);
      return 0;
    }
    case "task": {
      const id = positionals[1];
      if (!id) throw new UsageError("usage: taskfan task <id> [--json]");
      if (!existsSync(databasePath(config))) {
        io.err.write(`no task ${id}: no database at ${databasePath(config)}\n`);
        return 1;
      }
      const store = await openStore(config);
      try {
        const view = await store.taskView(id);
        if (!view) {
          io.err.write(`no task ${id}\n`);
          return 1;
        }
        if (values.json)
          io.out.write(`${JSON.stringify({ ...resultsOf(view), operations: view.operations }, null, 2)}\n`);
        else printView(view, io.out, config.timezone);
        return 0;
      } finally {
        await store.close();
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
        let id: string;
        try {
          id = await core.orchestrator.createTask(input);
        } catch (error) {
          if (!(error instanceof StoreUnavailableError)) throw error;
          io.err.write(`taskfan: ${error.message}, nothing was created\n`);
          return 3;
        }
        const view = await core.orchestrator.waitForSettled(id, waitSeconds * 1000);
        if (!view) throw new Error(`task ${id} vanished`);
        if (values.json) io.out.write(`${JSON.stringify(resultsOf(view))}\n`);
        else printView(view, io.out, config.timezone);
        return view.task.status === "done" ? 0 : 1;
      } finally {
        await core.close();
        await closeLogger(log);
      }
    }
    case "done":
    case "reopen":
    case "delete":
    case "edit": {
      const id = positionals[1];
      if (!id) throw new UsageError(`usage: taskfan ${command} <id> [--json]`);
      const waitSeconds = values.wait === undefined ? 60 : Number(values.wait);
      if (!Number.isFinite(waitSeconds) || waitSeconds < 0)
        throw new UsageError("--wait takes a number of seconds");
      const ifVersion = values["if-version"] === undefined ? undefined : Number(values["if-version"]);
      if (ifVersion !== undefined && !Number.isInteger(ifVersion))
        throw new UsageError("--if-version takes the task's version, a whole number");
      const change = changeOf(command, values);
      const core = await startCore(config, log);
      try {
        let result;
        try {
          result = await core.orchestrator.changeTask(id, change, { ifVersion, source: "cli" });
        } catch (error) {
          if (error instanceof StoreUnavailableError) {
            io.err.write(`taskfan: ${error.message}, nothing was changed\n`);
            return 3;
          }
          // A bad field exits 2 naming it, as `create` does.
          if (error instanceof TaskfanError && !(error instanceof ValidationError)) {
            io.err.write(`taskfan: ${error.message}\n`);
            return 1;
          }
          throw error;
        }
        const view = result.changed
          ? await core.orchestrator.waitForChanges(id, waitSeconds * 1000)
          : await core.orchestrator.getTask(id);
        if (!view) throw new Error(`task ${id} vanished`);
        const summary = changeResultsOf(view, change.kind, result.task.version);
        if (values.json) io.out.write(`${JSON.stringify({ ...summary, changed: result.changed })}\n`);
        else {
          io.out.write(
            `task ${id}: ${result.changed ? `${change.kind} at version ${result.task.version}` : `already ${result.task.state}, nothing changed`}\n`,
          );
          for (const r of summary.results) {
            const detail = r.error ?? r.skipped ?? "";
            io.out.write(
              `${terminalSafe(`  ${r.ok ? "ok  " : "FAIL"} ${r.server.padEnd(20)} ${detail}`.replace(/\n/g, " "))}\n`,
            );
          }
        }
        return summary.results.every((r) => r.ok) ? 0 : 1;
      } finally {
        await core.close();
        await closeLogger(log);
      }
    }
    case "start": {
      // From here on a signal, or an error nothing handled, stops what has started, in order;
      // one that comes while starting is acted on once the start is done.
      let exitCode = 0;
      let signals = 0;
      let pending: Record<string, unknown> | undefined;
      let stop: (why: Record<string, unknown>) => void = (why) => void (pending ??= why);
      const onSignal = (signal: NodeJS.Signals) => {
        signals += 1;
        if (signals > 1) {
          log.warn({ signal }, "second signal: exiting now");
          process.exit(1);
        }
        stop({ signal });
      };
      process.on("SIGINT", onSignal);
      process.on("SIGTERM", onSignal);
      // The last resort: an error nothing handled is logged with its chain, and the process
      // stops the way a signal stops it (servers closed, the log flushed), exiting 1. Once
      // the log is closed (or if logging itself fails), it is one line on stderr: the handler
      // never throws, so it cannot call itself again.
      let logClosed = false;
      const fatal = (kind: string) => (error: unknown) => {
        exitCode = 1;
        try {
          if (logClosed) throw new Error("the log is closed");
          log.fatal({ err: error, kind }, "unhandled error; shutting down");
        } catch {
          process.stderr.write(`taskfan: unhandled ${kind}: ${describeError(error)}\n`);
        }
        if (signals++ === 0) stop({ reason: kind });
      };
      process.on("unhandledRejection", fatal("unhandledRejection"));
      process.on("uncaughtException", fatal("uncaughtException"));

      const core = await startCore(config, log);
      const http =
        config.http.enabled && !pending ? await startHttpServer(core, core.metrics, log) : undefined;
      const facts = (chat: string) => startFacts(config, core.started, http?.url, chat);
      let frontEnd: Awaited<ReturnType<typeof startFrontEnd>> | undefined;
      if (!pending) {
        // The banner comes before the console chat's first line, and after the bot's @username is known.
        if (consoleChat) io.out.write(formatBanner(facts("console chat (type /help)"), brief));
        frontEnd = await startFrontEnd(core, log, { input: process.stdin, output: io.out });
        const started = facts(frontEnd.username ? `Telegram @${frontEnd.username}` : "console chat");
        if (!consoleChat) io.out.write(formatBanner(started, brief));
        log.info({ ...started, config: source ?? "embedded default" }, "taskfan started");
      }
      await new Promise<void>((resolve) => {
        const shutdown = (why: Record<string, unknown>) => {
          log.info(why, "shutting down");
          // Each step runs even if the one before failed: the servers must always be stopped.
          const step = (what: string, fn: () => Promise<unknown> | undefined) =>
            Promise.resolve()
              .then(fn)
              .catch((error: unknown) => log.error({ err: error }, `shutdown: ${what} failed`));
          void step("bot", () => frontEnd?.stop())
            .then(() => step("http server", () => http?.close()))
            .then(() => step("core", () => core.close()))
            .then(() => resolve());
        };
        if (pending) shutdown(pending);
        else stop = shutdown;
      });
      log.info({ exitCode }, "stopped");
      await closeLogger(log);
      logClosed = true;
      // Everything is stopped: nothing left behind (a socket, a timer) may keep the process up.
      setTimeout(() => process.exit(exitCode), 2000).unref();
      return exitCode;
    }
    default:
      throw new UsageError(`unknown command "${command}"\n\n${usage}`);
  }
}

/** `taskfan servers serve`: prints each role's URL, then serves until SIGINT or SIGTERM. */
async function serveUntilSignal(
  dataDir: string,
  values: { port?: string | undefined; host?: string | undefined },
  io: { out: NodeJS.WritableStream; err: NodeJS.WritableStream },
  log: Logger,
): Promise<number> {
  const port = values.port === undefined ? 8790 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError("--port takes 0 to 65535");
  const served = await serveServers({
    dataDir,
    host: values.host ?? "127.0.0.1",
    port,
    token: process.env.SERVERS_TOKEN || undefined,
    allowedHosts: (process.env.SERVERS_ALLOWED_HOSTS ?? "")
      .split(",")
      .map((h) => h.trim())
      .filter(Boolean),
    maxSessions: positiveEnv("SERVERS_MAX_SESSIONS"),
    idleSessionSeconds: positiveEnv("SERVERS_IDLE_SECONDS"),
    log,
  });
  const lines = Object.entries(served.urls).map(([role, url]) => `  ${role.padEnd(20)} ${url}`);
  io.out.write(
    `taskfan servers: ten MCP servers over Streamable HTTP, data in ${dataDir}` +
      `${process.env.SERVERS_TOKEN ? " (bearer token required)" : ""}\n${lines.join("\n")}\n`,
  );
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once("SIGINT", resolve);
    process.once("SIGTERM", resolve);
  });
  log.info({ signal }, "stopping the servers");
  await served.close();
  io.out.write("taskfan servers: stopped\n");
  await closeLogger(log);
  return 0;
}

/** A whole number above 0 from the environment, or undefined when unset. */
function positiveEnv(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === "") return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${name}: expected a whole number above 0, got "${text}"`);
  return n;
}

/** The entry point of the `taskfan` command. */
export async function main(): Promise<void> {
  try {
    process.exitCode = await runCli(process.argv.slice(2));
  } catch (error) {
    if (error instanceof ConfigError || error instanceof SchemaTooNewError) {
      process.stderr.write(`taskfan: ${error.message}\n`);
      process.exitCode = 2;
    } else if (error instanceof ValidationError) {
      process.stderr.write(`taskfan: ${error.field}: ${terminalSafe(error.message)}\n`);
      process.exitCode = 2;
    } else if (error instanceof StoreUnavailableError) {
      process.stderr.write(`taskfan: ${error.message}\n`);
      process.exitCode = 3;
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
