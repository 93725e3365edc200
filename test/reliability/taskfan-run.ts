import { type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import path from "node:path";
import { createInterface } from "node:readline";
import { childPids, repoRoot, spawnTracked } from "../helpers.js";

const bin = path.join(repoRoot, "bin", "taskfan.js");

export interface Run {
  child: ChildProcess;
  servers: number[];
  log: string[];
  /** Emits "line" for every line the process logs. */
  lines: EventEmitter<{ line: [string] }>;
}

/** Starts `taskfan start` in `cwd` and resolves once it logs that it started, with its server pids. */
export async function startTaskfan(cwd: string, env: NodeJS.ProcessEnv): Promise<Run> {
  const child = spawnTracked(process.execPath, [bin, "start"], {
    cwd,
    env,
    stdio: ["ignore", "ignore", "pipe"],
  });
  const log: string[] = [];
  const lines = new EventEmitter<{ line: [string] }>();
  createInterface({ input: child.stderr! }).on("line", (line) => {
    log.push(line);
    lines.emit("line", line);
  });
  await new Promise<void>((resolve) =>
    lines.on("line", (line) => {
      if (line.includes('"msg":"taskfan started"')) resolve();
    }),
  );
  return { child, servers: childPids(child.pid!), log, lines };
}

/**
 * Resolves once `done()` holds: looked at now and again whenever `run` logs a line that
 * `wakes` (by default, a task settling).
 */
export function whenSettled(
  run: Run,
  done: () => Promise<boolean>,
  wakes: (line: string) => boolean = (line) => line.includes('"msg":"task settled"'),
): Promise<void> {
  return new Promise((resolve, reject) => {
    // One look at a time; a line meanwhile asks for one more.
    let looking = false;
    let again = false;
    const look = (line?: string) => {
      if (line !== undefined && !wakes(line)) return;
      if (looking) {
        again = true;
        return;
      }
      looking = true;
      done().then((yes) => {
        looking = false;
        if (yes) {
          run.lines.off("line", look);
          resolve();
        } else if (again) {
          again = false;
          look();
        }
      }, reject);
    };
    run.lines.on("line", look);
    look();
  });
}
