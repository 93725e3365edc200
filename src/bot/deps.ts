import type { TaskFilter } from "../store/store.js";
import type { EventEmitter } from "node:events";
import type { InstanceView } from "../cluster/membership.js";
import type { RouteView } from "../core.js";
import type { Logger } from "../log.js";
import type { ServerHealth } from "../monitoring/health-monitor.js";
import type { Stats } from "../monitoring/stats.js";
import type { NewTask, Task, TaskView } from "../domain/task.js";
import type {
  ChangeOptions,
  ChangeResult,
  OrchestratorEvents,
  TaskChangeInput,
} from "../orchestrator/orchestrator.js";
import type { AlertStore, BotStateStore, ReminderStore, TaskOwner } from "../store/store.js";
import type { StoreHealth } from "../store/store-health.js";

/** What the bot needs from the core: plain functions and events, no grammY in the core. */
export interface BotDeps {
  createTask(input: NewTask, opts?: { idempotencyKey?: string; owner?: TaskOwner }): Promise<string>;
  /** A change of a task (see Orchestrator.changeTask); its errors say why it was refused. */
  changeTask(id: string, input: TaskChangeInput, opts?: ChangeOptions): Promise<ChangeResult>;
  getTask(id: string): Promise<TaskView | undefined>;
  recentTasks(limit: number, offset: number): Promise<Task[]>;
  countTasks(filter?: Omit<TaskFilter, "limit" | "offset">): Promise<number>;
  /** Tasks matching a filter, newest first (`/tasks open #home p1`). */
  listTasks(filter: TaskFilter): Promise<Task[]>;
  retryFailed(id: string): Promise<number>;
  events: EventEmitter<OrchestratorEvents>;
  /** Tasks whose operations another instance moved ("" when some were missed). */
  onTaskChanged?: ((listener: (taskId: string) => void) => () => void) | undefined;
  getHealth(): ServerHealth[];
  /** The instances sharing the store, and whose probes `getHealth` shows (several instances). */
  instances?: (() => Promise<InstanceView[]>) | undefined;
  ratedBy?: (() => string) | undefined;
  checkHealth(): Promise<ServerHealth[]>;
  getStats(): Promise<Stats>;
  /** Operations finished per 5 minutes over the last hour, oldest first. */
  activity(): Promise<number[]>;
  alerts: AlertStore;
  state: BotStateStore;
  /** Whether the database answers; /health shows it, alerts say when it changes. */
  storeHealth: StoreHealth;
  serverNames: readonly string[];
  /** The names of `alerts.routes`: /mute takes them too. */
  routeNames?: readonly string[];
  /** Where each alert route stands: /health lists them. */
  routes?: (() => Promise<RouteView[]>) | undefined;
  /** The zone a user reads and types deadlines in: theirs (/timezone), else the default. */
  timezoneOf(userId: number | undefined): Promise<string>;
  log: Logger;
  /** The clock snoozes count from (tests move it); Date.now by default. */
  now?: (() => number) | undefined;
  /** Reminders before deadlines (absent: none are kept). */
  reminders?: ReminderStore | undefined;
  /** Minutes before the deadline a task is reminded at when it asks for nothing else. */
  remindDefaults?: readonly number[] | undefined;
  /** Counters for alert deliveries, Bot API errors and reminders. */
  metrics?: {
    alertSent(): void;
    alertFailed(): void;
    telegramError(code: number | string): void;
    reminderFired?(late: boolean): void;
    reminderSnoozed?(): void;
  };
}

export interface BotSettings {
  /** Telegram user ids allowed to use the bot. */
  allowedUserIds: ReadonlySet<number>;
  /** The chat alerts go to; its members may read (/health, /stats, alert buttons). */
  alertChatId: string | undefined;
  /** The alert chat's language (ALERT_LANGUAGE); English when unset. */
  alertLanguage?: string | undefined;
  /** "read" (default) or "full": what the alert chat's members who are not allowed users may do. */
  alertChatAccess?: "read" | "full";
  rateLimitPerMinute: number | undefined;
  /** Minimum gap between two edits of one progress message. */
  progressEditIntervalMs?: number;
}
