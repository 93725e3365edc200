import path from "node:path";
import type { Config, ConfigFile } from "../src/config/schema.js";
import { startCore, type Core } from "../src/core.js";
import type { OperationEvent } from "../src/orchestrator/orchestrator.js";
import type { Logger } from "../src/log.js";
import type { Store } from "../src/store/store.js";
import { silentLog, tempDir, testConfig } from "./helpers.js";

export interface Harness {
  dir: string;
  config: Config;
  core: Core;
  started: OperationEvent[];
  finished: OperationEvent[];
  /** The first done operation of `taskId` on `server`, whenever it happened. */
  doneOn(taskId: string, server: string, timeoutMs: number): Promise<OperationEvent>;
  stop(): Promise<void>;
}

/**
 * A real core (store, fleet of real servers over stdio, orchestrator) on a temp DATA_DIR;
 * on `options.store` when given (a store of another engine, closed by its owner).
 */
export async function startHarness(
  file: ConfigFile = {},
  dataDir?: string,
  options: { store?: Store; log?: Logger; instance?: string; dispatch?: boolean } = {},
): Promise<Harness> {
  const tmp = dataDir ? { dir: dataDir, remove: () => undefined } : tempDir();
  const config = testConfig(path.join(tmp.dir, "data"), file);
  const core = await startCore(config, options.log ?? silentLog, {
    ...(options.store ? { store: options.store } : {}),
    ...(options.instance ? { instance: options.instance } : {}),
    ...(options.dispatch === false ? { dispatch: false } : {}),
  });
  const started: OperationEvent[] = [];
  const finished: OperationEvent[] = [];
  core.orchestrator.on("operation.started", (e) => started.push(e));
  const waiters = new Set<{
    match: (e: OperationEvent) => boolean;
    resolve: (e: OperationEvent) => void;
    timer: NodeJS.Timeout;
  }>();
  core.orchestrator.on("operation.done", (e) => {
    finished.push(e);
    for (const w of waiters) {
      if (!w.match(e)) continue;
      clearTimeout(w.timer);
      waiters.delete(w);
      w.resolve(e);
    }
  });
  core.orchestrator.on("operation.failed", (e) => finished.push(e));
  return {
    dir: tmp.dir,
    config,
    core,
    started,
    finished,
    doneOn(taskId, server, timeoutMs) {
      const match = (e: OperationEvent) => e.taskId === taskId && e.server === server && !e.error;
      const seen = finished.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const waiter = {
          match,
          resolve,
          timer: setTimeout(() => {
            waiters.delete(waiter);
            reject(new Error(`${server} did not finish ${taskId} within ${timeoutMs} ms`));
          }, timeoutMs),
        };
        waiters.add(waiter);
      });
    },
    async stop() {
      await core.close(5000);
      tmp.remove();
    },
  };
}

export const faultServerPath = path.resolve(
  path.dirname(new URL(import.meta.url).pathname),
  "fixtures/fault-server.mjs",
);
