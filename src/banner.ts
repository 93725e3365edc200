import { maskUrlCredentials } from "./errors.js";
import { readFileSync } from "node:fs";
import path from "node:path";
import type { Config } from "./config/schema.js";
import { packageDir } from "./package-dir.js";

/** What a start reports: in the banner on the terminal and in the `taskfan started` log line. */
export interface StartFacts {
  version: string;
  store: string;
  dataDir: string;
  servers: { total: number; online: number; down: Array<{ server: string; error: string }> };
  /** The HTTP server's base URL, when it runs. */
  http: string | undefined;
  logs: string;
  /** "console chat", or the Telegram bot's @username. */
  chat: string;
}

export function taskfanVersion(): string {
  return (JSON.parse(readFileSync(path.join(packageDir, "package.json"), "utf8")) as { version: string })
    .version;
}

export function startFacts(
  config: Config,
  started: ReadonlyArray<{ server: string; ok: boolean; error?: string }>,
  http: string | undefined,
  chat: string,
): StartFacts {
  return {
    version: taskfanVersion(),
    store:
      config.store.kind === "postgres" && config.store.url
        ? `PostgreSQL ${maskUrlCredentials(config.store.url)}`
        : `SQLite ${path.join(config.data_dir, "taskfan.db")}`,
    dataDir: config.data_dir,
    servers: {
      total: started.length,
      online: started.filter((s) => s.ok).length,
      down: started.filter((s) => !s.ok).map((s) => ({ server: s.server, error: s.error ?? "not started" })),
    },
    http,
    logs: path.join(config.logs_dir, "current.log"),
    chat,
  };
}

/** A few lines for the terminal: what runs, where to look, how to talk to it. */
export function formatBanner(f: StartFacts, quiet: boolean): string {
  const lines = [
    `taskfan ${f.version}`,
    `  store        ${f.store}  (data in ${f.dataDir})`,
    `  servers      ${f.servers.online} of ${f.servers.total} online`,
    ...f.servers.down.map((d) => `               not online: ${d.server}: ${d.error}`),
  ];
  if (f.http) {
    lines.push(`  status page  ${f.http}/`, `  API          ${f.http}/api  ·  metrics ${f.http}/metrics`);
  } else lines.push("  HTTP server  off (http.enabled: false)");
  lines.push(
    `  logs         ${f.logs}${quiet ? "  (only warnings here; --verbose or LOG_LEVEL for all)" : ""}`,
    `  chat         ${f.chat}`,
  );
  return `${lines.join("\n")}\n`;
}
