import { mkdirSync } from "node:fs";
import path from "node:path";
import { defaultDataFolders } from "./config/default.js";
import type { Config, ServerName } from "./config/schema.js";
import { Fleet } from "./fleet/fleet.js";
import { startRadicale, type Radicale } from "./fleet/radicale.js";
import { createIntegration } from "./integrations/index.js";
import type { Integration } from "./integrations/integration.js";
import type { Logger } from "./log.js";
import { Orchestrator } from "./orchestrator/orchestrator.js";
import { createStore, type Store } from "./store/store.js";

export interface Core {
  config: Config;
  store: Store;
  fleet: Fleet;
  orchestrator: Orchestrator;
  started: Awaited<ReturnType<Fleet["start"]>>;
  close(deadlineMs?: number): Promise<void>;
}

export function databasePath(config: Config): string {
  return path.join(config.data_dir, "taskfan.db");
}

/** The composition root: config -> store -> fleet -> orchestrator. */
export async function startCore(config: Config, log: Logger): Promise<Core> {
  const enabled = Object.values(config.servers).filter((s) => s.enabled);
  // Build integrations first: a bad `settings` is a config error, raised before anything starts.
  const integrations = new Map<ServerName, Integration>(enabled.map((s) => [s.name, createIntegration(s)]));
  for (const dir of defaultDataFolders(config.data_dir)) mkdirSync(dir, { recursive: true });
  const radicale = await startCalendarBackend(config, log);
  const store = createStore(databasePath(config));
  const fleet = new Fleet({
    servers: enabled,
    integrations,
    breakerThreshold: config.circuit_breaker_threshold,
    halfOpenAfterMs: config.circuit_breaker_half_open_after * 1000,
    log,
  });
  let started: Core["started"];
  try {
    started = await fleet.start();
  } catch (error) {
    await fleet.close();
    store.close();
    await radicale?.close();
    throw error;
  }
  const orchestrator = new Orchestrator({ store, fleet, config, log });
  orchestrator.start();
  let closing: Promise<void> | undefined;
  return {
    config,
    store,
    fleet,
    orchestrator,
    started,
    close(deadlineMs = 10_000) {
      closing ??= (async () => {
        await orchestrator.stop(deadlineMs);
        await fleet.close();
        store.close();
        await radicale?.close();
      })();
      return closing;
    },
  };
}

/** Starts Radicale first when the calendar is caldav-mcp on a server taskfan runs itself. */
async function startCalendarBackend(config: Config, log: Logger): Promise<Radicale | undefined> {
  const calendar = config.servers.calendar;
  const caldav = calendar.settings.caldav as
    { radicale: boolean; port: number; username: string; radicale_command?: string } | undefined;
  if (!calendar.enabled || !caldav?.radicale) return undefined;
  return startRadicale({
    dir: path.join(config.data_dir, "radicale"),
    port: caldav.port,
    calendarPath: String(calendar.settings.calendar_url),
    username: caldav.username,
    password: calendar.env.CALDAV_PASSWORD ?? "taskfan",
    ...(caldav.radicale_command ? { command: caldav.radicale_command } : {}),
    log,
  });
}
