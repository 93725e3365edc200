import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ServerUnavailableError } from "../errors.js";
import type { Logger } from "../log.js";

export interface RadicaleOptions {
  /** Folder for its config and collections (under DATA_DIR). */
  dir: string;
  port: number;
  /** The calendar collection to make sure of, e.g. /taskfan/tasks/. */
  calendarPath: string;
  username: string;
  password: string;
  command?: string;
  log: Logger;
}

export interface Radicale {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts Debian's Radicale as the CalDAV server behind caldav-mcp, on loopback with no
 * auth, and creates the task calendar. caldav-mcp exits if the server is not up first.
 */
export async function startRadicale(options: RadicaleOptions): Promise<Radicale> {
  const storage = path.join(options.dir, "collections");
  mkdirSync(storage, { recursive: true });
  const configFile = path.join(options.dir, "radicale.conf");
  writeFileSync(
    configFile,
    [
      "[server]",
      `hosts = 127.0.0.1:${options.port}`,
      "[auth]",
      "type = none",
      "[rights]",
      "type = owner_only",
      "[storage]",
      `filesystem_folder = ${storage}`,
      "[web]",
      "type = none",
      "[logging]",
      "level = warning",
      "",
    ].join("\n"),
  );
  const command = options.command ?? "/usr/bin/radicale";
  const child: ChildProcess = spawn(command, ["--config", configFile], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  const log = options.log.child({ server: "radicale" });
  let exited: string | undefined;
  child.stderr?.on("data", (d: Buffer) =>
    log.debug({ stderr: d.toString("utf8").slice(0, 500) }, "radicale stderr"),
  );
  child.on("error", (e) => (exited = e.message));
  child.on("exit", (code) => (exited ??= `exited with code ${code}`));
  const url = `http://127.0.0.1:${options.port}/`;
  const auth = `Basic ${Buffer.from(`${options.username}:${options.password}`).toString("base64")}`;
  const started = Date.now();
  for (;;) {
    if (exited) throw new ServerUnavailableError("calendar", `radicale did not start: ${exited}`);
    try {
      const response = await fetch(new URL(options.calendarPath, url), {
        method: "MKCALENDAR",
        headers: { authorization: auth },
        signal: AbortSignal.timeout(2000),
      });
      // 201 created; 405 or 409 when the calendar already exists.
      if ([201, 405, 409].includes(response.status)) break;
      throw new ServerUnavailableError(
        "calendar",
        `radicale answered MKCALENDAR with HTTP ${response.status}`,
      );
    } catch (error) {
      if (error instanceof ServerUnavailableError) throw error;
      if (Date.now() - started > 15_000) {
        child.kill("SIGKILL");
        throw new ServerUnavailableError("calendar", "radicale did not answer within 15 s", { cause: error });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  log.info({ url }, "radicale started");
  return {
    url,
    async close() {
      if (child.exitCode !== null || exited) return;
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3000);
      await gone;
      clearTimeout(timer);
    },
  };
}
