import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { freePort } from "./helpers.js";

/** A throwaway PostgreSQL cluster from Debian's package, in a temporary folder. */
export interface TestPostgres {
  /** A URL of a database on it (`postgres` by default). */
  url(database?: string): string;
  /** A new, empty database; its URL. */
  createDatabase(): Promise<string>;
  /** Stops the server (fast shutdown: sessions are cut), keeping its data. */
  stop(): void;
  /** Starts it again on the same port and data. */
  start(): void;
  /** Stops it and removes its folder. */
  remove(): void;
  /**
   * CPU milliseconds the server's processes have used so far: the postmaster's own and its
   * exited children's, and each live backend's (Linux: from /proc).
   */
  cpuMs(): number;
}

/** The kernel's clock ticks a second, the unit of /proc/<pid>/stat's times. */
const clockTicks = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;

/**
 * A process's CPU time from /proc/<pid>/stat (Linux): its own, and that of its children it
 * waited for; undefined once it has ended.
 */
export function processCpu(pid: number): { ppid: number; ownMs: number; childrenMs: number } | undefined {
  let fields: string[];
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // After the command's closing parenthesis: state, ppid, ..., utime, stime, cutime, cstime.
    fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  } catch {
    return undefined;
  }
  const [ppid, utime, stime, cutime, cstime] = [1, 11, 12, 13, 14].map((i) => Number(fields[i]));
  const ms = 1000 / clockTicks;
  return { ppid: ppid!, ownMs: (utime! + stime!) * ms, childrenMs: (cutime! + cstime!) * ms };
}

/** The newest installed server's binaries: /usr/lib/postgresql/<version>/bin. */
function binDir(): string {
  const root = "/usr/lib/postgresql";
  const versions = existsSync(root)
    ? readdirSync(root)
        .filter((v) => existsSync(path.join(root, v, "bin", "initdb")))
        .sort((a, b) => Number(a) - Number(b))
    : [];
  if (versions.length === 0) {
    throw new Error("PostgreSQL is not installed: `apt-get install postgresql` (.ci/run installs it)");
  }
  return path.join(root, versions.at(-1)!, "bin");
}

/**
 * initdb, then pg_ctl start on a free loopback port with its socket in the folder; as the
 * `postgres` user when this runs as root (initdb refuses root). About five seconds.
 * Without fsync unless `durable`.
 */
export async function startPostgres(options: { durable?: boolean } = {}): Promise<TestPostgres> {
  const bin = binDir();
  const dir = mkdtempSync(path.join(tmpdir(), "taskfan-pg-"));
  const root = process.getuid?.() === 0;
  if (root) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  const run = (program: string, args: string[]) => {
    const argv = [path.join(bin, program), ...args];
    if (root) {
      const line = argv.map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(" ");
      execFileSync("su", ["postgres", "-s", "/bin/sh", "-c", line], { stdio: "pipe" });
    } else execFileSync(argv[0]!, argv.slice(1), { stdio: "pipe" });
  };
  const data = path.join(dir, "data");
  run("initdb", ["-D", data, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"]);
  const port = await freePort();
  // Tests need no durability (nothing here survives a power cut); the bench keeps it.
  const settings = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200${options.durable ? "" : " -c fsync=off"}`;
  const start = () => run("pg_ctl", ["-D", data, "-o", settings, "-l", path.join(dir, "log"), "-w", "start"]);
  const stop = () => run("pg_ctl", ["-D", data, "-m", "fast", "-w", "stop"]);
  start();
  const url = (database = "postgres") => `postgres://postgres@127.0.0.1:${port}/${database}`;
  return {
    url,
    async createDatabase() {
      const name = `t_${randomBytes(6).toString("hex")}`;
      const client = new pg.Client({ connectionString: url() });
      await client.connect();
      try {
        await client.query(`CREATE DATABASE ${name}`);
      } finally {
        await client.end();
      }
      return url(name);
    },
    stop,
    start,
    cpuMs() {
      const postmaster = Number(readFileSync(path.join(data, "postmaster.pid"), "utf8").split("\n")[0]);
      let ms = 0;
      for (const entry of readdirSync("/proc")) {
        const cpu = /^\d+$/.test(entry) ? processCpu(Number(entry)) : undefined;
        if (Number(entry) === postmaster) ms += cpu!.ownMs + cpu!.childrenMs;
        else if (cpu?.ppid === postmaster) ms += cpu.ownMs;
      }
      return ms;
    },
    remove() {
      try {
        stop();
      } catch {
        // already stopped
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
