import type { ChildProcess } from "node:child_process";
import path from "node:path";
import { createInterface } from "node:readline";
import { serverNames, type ServerName } from "../src/config/schema.js";
import { packageDir } from "../src/package-dir.js";
import { childPids, spawnTracked } from "./helpers.js";
import { readFileSync } from "node:fs";

export interface Served {
  child: ChildProcess;
  urls: Record<ServerName, string>;
  stderr: string[];
}

/**
 * `taskfan servers serve --port 0` on `dataDir`, a process of its own; resolves with the
 * URLs it prints. Used by the tests and by the bench (built with it into dist/).
 */
export async function serve(
  dataDir: string,
  env: Record<string, string> = {},
  args: string[] = [],
): Promise<Served> {
  const child = spawnTracked(
    process.execPath,
    [path.join(packageDir, "bin/taskfan.js"), "servers", "serve", "--port", "0", ...args],
    {
      env: { ...process.env, DATA_DIR: dataDir, LOG_LEVEL: "info", ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on("line", (l) => stderr.push(l));
  const urls = await new Promise<Record<ServerName, string>>((resolve, reject) => {
    const found: Partial<Record<ServerName, string>> = {};
    child.once("exit", (code) => reject(new Error(`servers serve exited (${code}): ${stderr.join("\n")}`)));
    createInterface({ input: child.stdout! }).on("line", (line) => {
      const m = /^\s+(\S+)\s+(http:\/\/\S+)$/.exec(line);
      if (m) found[m[1] as ServerName] = m[2]!;
      if (Object.keys(found).length === serverNames.length) resolve(found as Record<ServerName, string>);
    });
  });
  return { child, urls, stderr };
}

/** The pid of the backend of `role` under a `servers serve` process. */
export function backendOf(served: Served, entry: string): number {
  const pid = childPids(served.child.pid!).find((p) => {
    try {
      return readFileSync(`/proc/${p}/cmdline`, "utf8").includes(entry);
    } catch {
      return false;
    }
  });
  if (pid === undefined) throw new Error(`no backend runs ${entry}`);
  return pid;
}

/** Every role at its served URL, with `headers` on each. */
export function overHttp(
  urls: Record<ServerName, string>,
  headers: (role: ServerName) => Record<string, string> = () => ({}),
) {
  return Object.fromEntries(serverNames.map((r) => [r, { url: urls[r], headers: headers(r) }]));
}
