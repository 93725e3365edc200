import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";

/** Remembers which process serves a role, in `<runDir>/<server>.pid` with its start time. */
export function writePidFile(runDir: string, server: string, pid: number): void {
  mkdirSync(runDir, { recursive: true });
  writeFileSync(path.join(runDir, `${server}.pid`), `${pid} ${startTimeOf(pid) ?? ""}\n`);
}

/** The process's start time from /proc (so a recycled pid is never mistaken for ours). */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
}

/** Whether `pid` is still the process that started at `started` (from /proc). */
function sameProcess(pid: number, started: string | undefined): boolean {
  return Boolean(started) && alive(pid) && startTimeOf(pid) === started;
}

/** Whether a process with this id exists. */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Servers whose taskfan was killed outright (SIGKILL, power cut) can linger: stop the
 * ones recorded in the pid files that are still the same processes.
 */
export async function reapLeftovers(runDir: string, servers: readonly string[]): Promise<number[]> {
  const reaped: number[] = [];
  for (const server of servers) {
    const file = path.join(runDir, `${server}.pid`);
    if (!existsSync(file)) continue;
    const [pidText, started] = readFileSync(file, "utf8").trim().split(" ");
    const pid = Number(pidText);
    if (!Number.isInteger(pid) || pid <= 1 || pid === process.pid || !sameProcess(pid, started)) continue;
    process.kill(pid, "SIGKILL");
    reaped.push(pid);
  }
  await Promise.all(reaped.map((pid) => waitForExit(pid, 3000)));
  return reaped;
}

/** Resolves once `pid` no longer exists (or after `timeoutMs`). */
export async function waitForExit(pid: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

/** This machine's boot: a pid from another boot names some other process. */
function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    return `up-${Math.round(Date.now() / 60_000 - os.uptime() / 60)}`;
  }
}

/** Names a process so that it can be told apart from a later one with the same pid. */
export function processIdentity(pid: number = process.pid): string {
  return `${bootId()} ${pid} ${startTimeOf(pid) ?? ""}`;
}

/** Whether the process an identity names still runs (without a start time: its pid does). */
export function stillRunning(identity: string): boolean {
  const [boot, pid, start] = identity.split(" ");
  if (boot !== bootId() || !pid) return false;
  return start ? sameProcess(Number(pid), start) : alive(Number(pid));
}
