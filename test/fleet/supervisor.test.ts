import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Supervisor, type RestartOptions } from "../../src/fleet/supervisor.js";
import { silentLog } from "../helpers.js";

const options: RestartOptions = {
  maxDelayMs: 8_000,
  crashLoopRestarts: 3,
  crashLoopWindowMs: 60_000,
  stableAfterMs: 30_000,
};

/** A server that starts as told and stays up until it is made to exit. */
function fakeServer() {
  const server = {
    up: false,
    startedAt: undefined as number | undefined,
    failures: [] as string[],
    reconnects: 0,
    failNext: false,
    async reconnect() {
      server.reconnects += 1;
      if (server.failNext) throw new Error("could not start");
      server.up = true;
      server.startedAt = Date.now();
    },
    connected: () => server.up,
    noteFailure: (reason: string) => server.failures.push(reason),
  };
  return server;
}

let server: ReturnType<typeof fakeServer>;
let supervisor: Supervisor;
const crashLoops: Array<{ restarts: number; until: number }> = [];

beforeEach(() => {
  vi.useFakeTimers({ now: 1_000_000 });
  server = fakeServer();
  crashLoops.length = 0;
  supervisor = new Supervisor(
    { ...server, startedAt: () => server.startedAt },
    options,
    { crashLoop: (e) => crashLoops.push(e), restarted: () => undefined },
    silentLog,
    () => Date.now(),
  );
});
afterEach(async () => {
  await supervisor.close();
  vi.useRealTimers();
});

/** The server dies; its supervisor schedules a restart and says after how long. */
function dies(): number {
  server.up = false;
  return supervisor.exited();
}

describe("a server's supervisor", () => {
  it("backs off 1 s, 2 s, 4 s ... up to the cap between failed starts", () => {
    expect([1, 2, 3, 4, 5].map(() => supervisor.startFailed())).toEqual([1000, 2000, 4000, 8000, 8000]);
    expect(supervisor.blockedUntil).toBe(Date.now() + 8000);
  });

  it("restarts an exited server after its backoff, and starts afresh once it stayed up", async () => {
    server.up = true;
    server.startedAt = Date.now();
    expect(dies()).toBe(1000);
    await vi.advanceTimersByTimeAsync(999);
    expect(server.reconnects).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(server.reconnects).toBe(1);
    expect(supervisor.totalRestarts).toBe(1);
    // Died again at once: a step longer.
    expect(dies()).toBe(2000);
    await vi.advanceTimersByTimeAsync(2000);
    // Up for longer than stableAfterMs: the next death waits 1 s again.
    await vi.advanceTimersByTimeAsync(options.stableAfterMs);
    expect(dies()).toBe(1000);
  });

  it("tries again after a restart that fails, with the next step of backoff", async () => {
    server.failNext = true;
    supervisor.startFailed();
    supervisor.schedule();
    await vi.advanceTimersByTimeAsync(1000);
    expect(server.reconnects).toBe(1);
    // Not the fleet's connect here: the failure itself does not step the backoff.
    server.failNext = false;
    await vi.advanceTimersByTimeAsync(1000);
    expect(server.reconnects).toBe(2);
    expect(server.up).toBe(true);
  });

  it("pauses restarts in a crash loop until the window has room, and says so once", async () => {
    server.up = true;
    server.startedAt = Date.now();
    for (let i = 0; i < options.crashLoopRestarts; i++) {
      await vi.advanceTimersByTimeAsync(dies());
    }
    expect(supervisor.totalRestarts).toBe(3);
    const firstRestart = 1_000_000 + 1000;
    dies();
    await vi.advanceTimersByTimeAsync(options.maxDelayMs);
    expect(supervisor.totalRestarts).toBe(3);
    expect(crashLoops).toEqual([
      { restarts: 3, windowMs: options.crashLoopWindowMs, until: firstRestart + 60_000 },
    ]);
    expect(supervisor.crashLooping()).toBe(true);
    expect(supervisor.blockedUntil).toBe(firstRestart + 60_000);
    expect(server.failures).toEqual(["crash loop: 3 restarts in 60 s"]);
    expect(await supervisor.restartIfAllowed()).toBe(false);
    // Once the first restart leaves the window, it restarts again.
    await vi.advanceTimersByTimeAsync(firstRestart + 60_000 - Date.now());
    expect(supervisor.totalRestarts).toBe(4);
    expect(server.up).toBe(true);
    expect(crashLoops).toHaveLength(1);
  });
});
