import { createRequire } from "node:module";
import path from "node:path";
import { serverNames, type ServerConfig, type ServerName } from "./schema.js";

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

type Defaults = Omit<ServerConfig, "name" | "url" | "headers" | "transport" | "max_response_size">;

/** What sets one role's server apart; the rest is shared (see `defaultServers`). */
interface Role {
  priority: number;
  /** Seconds for one attempt. */
  timeout: number;
  /** 1 for servers that rewrite one file per call. */
  concurrency: 1 | 4;
  /** The server's entry file and its arguments, environment and folder, under the data folder. */
  launch(data: (...p: string[]) => string): { args: string[]; env?: Record<string, string>; cwd?: string };
  settings?(data: (...p: string[]) => string): Record<string, unknown>;
}

/** The embedded default's ten servers: real upstream servers where they install, ours where none does. */
const roles: Record<ServerName, Role> = {
  deltatask: {
    priority: 1,
    timeout: 10,
    concurrency: 1,
    launch: (data) => ({ args: [localServerEntry("deltatask")], env: { DATA_DIR: data("deltatask") } }),
  },
  "shrimp-task-manager": {
    priority: 1,
    timeout: 15,
    concurrency: 1,
    launch: (data) => ({
      args: [npmServerEntry("mcp-shrimp-task-manager")],
      env: { DATA_DIR: data("shrimp"), TEMPLATES_USE: "en", ENABLE_GUI: "false" },
      cwd: data("shrimp"),
    }),
  },
  "hpkv-memory": {
    priority: 2,
    timeout: 10,
    concurrency: 4,
    launch: (data) => ({
      args: [npmServerEntry("mcp-memory-keeper")],
      env: { DATA_DIR: data("hpkv-memory") },
      cwd: data("hpkv-memory"),
    }),
  },
  memory: {
    priority: 2,
    timeout: 10,
    concurrency: 1,
    launch: (data) => ({
      args: [npmServerEntry("@modelcontextprotocol/server-memory")],
      env: { MEMORY_FILE_PATH: data("memory", "memory.jsonl") },
    }),
  },
  calendar: {
    priority: 3,
    timeout: 10,
    concurrency: 1,
    launch: (data) => ({ args: [localServerEntry("calendar")], env: { DATA_DIR: data("calendar") } }),
    settings: () => ({ calendar_url: "/taskfan/tasks/" }),
  },
  notifications: {
    priority: 3,
    timeout: 10,
    concurrency: 1,
    launch: (data) => ({
      args: [localServerEntry("notifications")],
      env: { DATA_DIR: data("notifications"), NTFY_DEFAULT_TOPIC: "taskfan" },
    }),
  },
  "time-tracker": {
    priority: 3,
    timeout: 10,
    concurrency: 1,
    launch: (data) => ({ args: [localServerEntry("time-tracker")], env: { DATA_DIR: data("time-tracker") } }),
  },
  git: {
    priority: 4,
    timeout: 20,
    concurrency: 1,
    launch: (data) => ({
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
    }),
  },
  filesystem: {
    priority: 4,
    timeout: 10,
    concurrency: 4,
    launch: (data) => ({ args: [npmServerEntry("@modelcontextprotocol/server-filesystem"), data("files")] }),
  },
  backup: {
    priority: 5,
    timeout: 30,
    concurrency: 1,
    // It backs up the filesystem server's task files.
    launch: (data) => ({
      args: [localServerEntry("backup")],
      env: { DATA_DIR: data("backup"), BACKUP_SOURCES: data("files", "tasks") },
    }),
  },
};

/**
 * The embedded default: all ten servers local, each a direct `node` process, every data
 * path absolute and under `dataDir`; the priority-1 servers are required.
 */
export function defaultServers(dataDir: string): Record<ServerName, Defaults> {
  const data = (...p: string[]) => path.join(dataDir, ...p);
  return Object.fromEntries(
    serverNames.map((name) => {
      const role = roles[name];
      const { args, env = {}, cwd } = role.launch(data);
      const server: Defaults = {
        enabled: true,
        priority: role.priority,
        required: role.priority === 1,
        timeout: role.timeout,
        retry_attempts: 3,
        concurrency: role.concurrency,
        command: process.execPath,
        args,
        env,
        ...(cwd ? { cwd } : {}),
        settings: role.settings?.(data) ?? {},
      };
      return [name, server];
    }),
  ) as Record<ServerName, Defaults>;
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
