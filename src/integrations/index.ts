import type { ServerConfig, ServerName } from "../config/schema.js";
import { createBackupIntegration } from "./backup.js";
import { createCalendarIntegration } from "./calendar.js";
import { createDeltataskIntegration } from "./deltatask.js";
import { createFilesystemIntegration } from "./filesystem.js";
import { createGitIntegration } from "./git.js";
import { createHpkvMemoryIntegration } from "./hpkv-memory.js";
import type { Integration } from "./integration.js";
import { createMemoryIntegration } from "./memory.js";
import { createNotificationsIntegration } from "./notifications.js";
import { createShrimpIntegration } from "./shrimp.js";
import { createTimeTrackerIntegration } from "./time-tracker.js";

const factories: Record<ServerName, (settings: unknown) => Integration> = {
  deltatask: createDeltataskIntegration,
  "shrimp-task-manager": createShrimpIntegration,
  "hpkv-memory": createHpkvMemoryIntegration,
  memory: createMemoryIntegration,
  calendar: createCalendarIntegration,
  notifications: createNotificationsIntegration,
  "time-tracker": createTimeTrackerIntegration,
  git: createGitIntegration,
  filesystem: createFilesystemIntegration,
  backup: createBackupIntegration,
};

/** The integration for one configured server; invalid settings throw a ConfigError. */
export function createIntegration(server: ServerConfig): Integration {
  return factories[server.name](server.settings);
}
