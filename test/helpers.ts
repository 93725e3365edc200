import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { pino } from "pino";
import { completeConfig } from "../src/config/load.js";
import { serverNames, type Config, type ConfigFile } from "../src/config/schema.js";
import { packageDir } from "../src/package-dir.js";

/**
 * Silent, unless `TEST_LOG` names a file: then every core a test starts logs there at debug
 * (to read why a test failed).
 */
export const silentLog = process.env.TEST_LOG
  ? pino({ level: "debug" }, pino.destination({ dest: process.env.TEST_LOG, append: true, sync: true }))
  : pino({ level: "silent" });

/** A fresh folder under the OS temp dir, removed by the returned function. */
export function tempDir(prefix = "taskfan-test-"): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** The embedded default under `dataDir`, with the file-shaped overrides applied. */
export function testConfig(dataDir: string, file: ConfigFile = {}): Config {
  return completeConfig(file, { DATA_DIR: dataDir }, dataDir);
}

/** Only these servers enabled. */
export function onlyServers(
  names: string[],
  extra: NonNullable<ConfigFile["servers"]> = {},
): ConfigFile["servers"] {
  const all = serverNames;
  return Object.fromEntries(
    all.map((n) => [n, { enabled: names.includes(n), ...(extra[n] ?? {}) }]),
  ) as ConfigFile["servers"];
}

export const repoRoot = path.resolve(path.dirname(new URL(import.meta.url).pathname), "..");

export { freePort } from "../src/servers/serve-all.js";

/**
 * Every role played by its own stdio process of test/fixtures/instant-server.mjs, which
 * answers at once and keeps nothing, `concurrency` calls at a time (the bench's
 * store-bound case).
 */
export function instantRoles(concurrency = 4): NonNullable<ConfigFile["servers"]> {
  const fixture = path.join(packageDir, "test", "fixtures", "instant-server.mjs");
  return Object.fromEntries(
    serverNames.map((role) => [
      role,
      { command: process.execPath, args: [fixture], env: { ROLE: role }, concurrency },
    ]),
  );
}

/** The direct children of a process (the MCP servers of a taskfan process). */
export function childPids(pid: number): number[] {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" })
      .split("\n")
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

export { alive } from "../src/fleet/pid-files.js";

const spawned = new Set<ChildProcess>();

/**
 * Spawns a process a test drives (`taskfan start`, a fixture) and remembers it until it
 * exits, so `stopSpawned()` can stop it and its servers when a test fails or times out.
 */
export function spawnTracked(command: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, options);
  spawned.add(child);
  child.once("exit", () => spawned.delete(child));
  return child;
}

/** SIGKILLs every tracked process still running, and its direct children first. */
export function stopSpawned(): void {
  for (const child of spawned) {
    if (child.pid === undefined) continue;
    for (const pid of childPids(child.pid)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    child.kill("SIGKILL");
  }
  spawned.clear();
}

/** Asks a process to stop (SIGTERM) unless it already exited; resolves with its exit code. */
export async function terminate(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = once(child, "exit") as Promise<[number | null]>;
  child.kill("SIGTERM");
  return (await exited)[0];
}
