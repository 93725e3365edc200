import { createRequire } from "node:module";
import path from "node:path";
import type { ServerConfig, ServerName } from "./schema.js";

import { packageDir } from "../package-dir.js";

export { packageDir };

const require = createRequire(import.meta.url);

/** Absolute path of an npm MCP server's entry; never run through npx. */
export function npmServerEntry(pkg: string, entry = "dist/index.js"): string {
  let dir: string;
  try {
    dir = path.dirname(require.resolve(`${pkg}/package.json`));
  } catch {
    dir = path.join(packageDir, "node_modules", pkg);
  }
  return path.join(dir, entry);
}

/** Absolute path of one of our local servers, built into dist/servers/. */
export function localServerEntry(name: string): string {
  return path.join(packageDir, "dist", "src", "servers", `${name}.js`);
}

type Defaults = Omit<ServerConfig, "name">;

/**
 * The embedded default: all ten servers local, every data path absolute and under
 * `dataDir`. Real upstream servers where they install; our own where none does.
 */
export function defaultServers(dataDir: string): Record<ServerName, Defaults> {
  const node = process.execPath;
  const data = (...p: string[]) => path.join(dataDir, ...p);
  const base = { enabled: true, required: false, concurrency: 4, settings: {} };
  return {
    deltatask: {
      ...base,
      priority: 1,
      required: true,
      timeout: 10,
      retry_attempts: 3,
      concurrency: 1,
      command: node,
      args: [localServerEntry("deltatask")],
      env: { DATA_DIR: data("deltatask") },
    },
    "shrimp-task-manager": {
      ...base,
      priority: 1,
      required: true,
      timeout: 15,
      retry_attempts: 3,
      concurrency: 1,
      command: node,
      args: [npmServerEntry("mcp-shrimp-task-manager")],
      env: { DATA_DIR: data("shrimp"), TEMPLATES_USE: "en", ENABLE_GUI: "false" },
      cwd: data("shrimp"),
    },
    "hpkv-memory": {
      ...base,
      priority: 2,
      timeout: 10,
      retry_attempts: 3,
      command: node,
      args: [npmServerEntry("mcp-memory-keeper")],
      env: { DATA_DIR: data("hpkv-memory") },
      cwd: data("hpkv-memory"),
    },
    memory: {
      ...base,
      priority: 2,
      timeout: 10,
      retry_attempts: 3,
      concurrency: 1,
      command: node,
      args: [npmServerEntry("@modelcontextprotocol/server-memory")],
      env: { MEMORY_FILE_PATH: data("memory", "memory.jsonl") },
    },
    calendar: {
      ...base,
      priority: 3,
      timeout: 10,
      retry_attempts: 3,
      concurrency: 1,
      command: node,
      args: [localServerEntry("calendar")],
      env: { DATA_DIR: data("calendar") },
      settings: { calendar_url: "/taskfan/tasks/" },
    },
    notifications: {
      ...base,
      priority: 3,
      timeout: 10,
      retry_attempts: 3,
      concurrency: 1,
      command: node,
      args: [localServerEntry("notifications")],
      env: { DATA_DIR: data("notifications"), NTFY_DEFAULT_TOPIC: "taskfan" },
    },
    "time-tracker": {
      ...base,
      priority: 3,
      timeout: 10,
      retry_attempts: 3,
      concurrency: 1,
      command: node,
      args: [localServerEntry("time-tracker")],
      env: { DATA_DIR: data("time-tracker") },
    },
    git: {
      ...base,
      priority: 4,
      timeout: 20,
      retry_attempts: 3,
      concurrency: 1,
      command: node,
      args: [npmServerEntry("@cyanheads/git-mcp-server")],
      env: {
        MCP_TRANSPORT_TYPE: "stdio",
        MCP_LOG_LEVEL: "error",
        GIT_BASE_DIR: data("git"),
        LOGS_DIR: data("git-logs"),
        GIT_AUTHOR_NAME: "taskfan",
        GIT_AUTHOR_EMAIL: "bot@taskfan.local",
        GIT_COMMITTER_NAME: "taskfan",
        GIT_COMMITTER_EMAIL: "bot@taskfan.local",
        GIT_SIGN_COMMITS: "false",
      },
      cwd: data("git"),
      settings: { repo_path: data("git", "tasks") },
    },
    filesystem: {
      ...base,
      priority: 4,
      timeout: 10,
      retry_attempts: 3,
      command: node,
      args: [npmServerEntry("@modelcontextprotocol/server-filesystem"), data("files")],
      env: {},
      settings: { root: data("files") },
    },
    backup: {
      ...base,
      priority: 5,
      timeout: 30,
      retry_attempts: 3,
      concurrency: 1,
      command: node,
      args: [localServerEntry("backup")],
      env: { DATA_DIR: data("backup") },
      settings: { source_dir: data("files", "tasks") },
    },
  };
}

/** Folders the embedded default expects; created at start so every server can write. */
export function defaultDataFolders(dataDir: string): string[] {
  return [
    "deltatask",
    "shrimp",
    "hpkv-memory",
    "memory",
    "calendar",
    "notifications",
    "time-tracker",
    "git",
    "git/tasks",
    "git-logs",
    "files",
    "files/tasks",
    "backup",
  ].map((p) => path.join(dataDir, p));
}

/** How to launch caldav-mcp against a CalDAV server, when `settings.caldav` asks for it. */
export function caldavLaunch(
  caldav: { url?: string | undefined; username: string; port: number },
  env: NodeJS.ProcessEnv,
): { command: string; args: string[]; env: Record<string, string> } {
  return {
    command: process.execPath,
    args: [npmServerEntry("caldav-mcp")],
    env: {
      CALDAV_BASE_URL: caldav.url ?? `http://127.0.0.1:${caldav.port}/`,
      CALDAV_USERNAME: caldav.username,
      CALDAV_PASSWORD: env.CALDAV_PASSWORD ?? "taskfan",
    },
  };
}
