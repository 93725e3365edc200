import type { Api } from "grammy";
import { changeUnderWay, oneLine, renderTask, taskKeyboard } from "./task-format.js";
import type { Translate } from "./i18n.js";
import type { BotDeps } from "./deps.js";
import type { TaskFields } from "../domain/task.js";
import { formatInZone } from "../time-zone.js";

type FieldValue = TaskFields[keyof TaskFields];

interface Tracked {
  chatId: number;
  messageId: number;
  taskId: string;
  t: Translate;
  lastText: string;
  lastEditAt: number;
  timer: NodeJS.Timeout | undefined;
  /** Following a change: settled when its operations have run. */
  change: boolean;
}

/**
 * The live progress message: sent once when a task is created, then edited as its
 * operations finish, here or on another instance sharing the store. Edits of one message
 * are coalesced to one per interval, so a ten-server fan-out costs a handful of edits,
 * never a burst. It is followed until an edit shows the task settled.
 */
export class ProgressReporter {
  private readonly tracked = new Map<string, Tracked>();
  private readonly unlisten: (() => void) | undefined;

  constructor(
    private readonly api: Api,
    private readonly deps: BotDeps,
    private readonly intervalMs = 1500,
    /** The language of what is said outside an update: a change found on a server. */
    private readonly notices?: Translate,
    private readonly noticeLocale = "en",
  ) {
    deps.events.on("task.changed", this.changed);
    deps.events.on("task.conflict", this.conflict);
    deps.events.on("operation.started", this.touch);
    deps.events.on("operation.done", this.touch);
    deps.events.on("operation.failed", this.touch);
    deps.events.on("operation.waiting", this.touch);
    deps.events.on("task.settled", this.settled);
    deps.events.on("task.changes_settled", this.settled);
    // Operations other instances run: "" when some news was missed.
    this.unlisten = deps.onTaskChanged?.((taskId) => {
      if (taskId) this.schedule(taskId);
      else for (const id of this.tracked.keys()) this.schedule(id);
    });
  }

  private readonly touch = ({ taskId }: { taskId: string }) => this.schedule(taskId);

  /** A task finished, reopened, edited or deleted on a server, found by sync: its chat is told, once. */
  private readonly changed = ({
    taskId,
    kind,
    source,
    fields,
  }: {
    taskId: string;
    kind: string;
    source: string;
    fields: Array<keyof TaskFields>;
  }) => {
    const t = this.notices;
    if (!t || !source.startsWith("sync:")) return;
    void (async () => {
      const view = await this.deps.getTask(taskId);
      if (!view?.task.chatId) return;
      const task = view.task;
      const value = await this.valueIn(task.userId);
      const what = fields.map((f) => value(f, task[f])).join(", ");
      await this.api.sendMessage(
        task.chatId!,
        t(`found-${kind}`, {
          server: source.slice("sync:".length).split(",").join(", "),
          title: task.title,
          id: taskId,
          what,
        }),
      );
    })().catch((error: unknown) =>
      this.deps.log.warn({ err: error, taskId }, "could not tell the chat of a change found on a server"),
    );
  };

  /** Two servers changed one field since the last sync: the owner sees the value that lost. */
  private readonly conflict = (e: {
    taskId: string;
    field: keyof TaskFields;
    kept: { server: string; value: FieldValue };
    lost: Array<{ server: string; value: FieldValue }>;
  }) => {
    const t = this.notices;
    if (!t) return;
    void (async () => {
      const view = await this.deps.getTask(e.taskId);
      if (!view?.task.chatId) return;
      const value = await this.valueIn(view.task.userId);
      const lines = e.lost.map((l) =>
        t("sync-conflict", {
          id: e.taskId,
          server: l.server,
          lost: value(e.field, l.value),
          winner: e.kept.server,
          kept: value(e.field, e.kept.value),
        }),
      );
      await this.api.sendMessage(view.task.chatId, lines.join("\n"));
    })().catch((error: unknown) =>
      this.deps.log.warn({ err: error, taskId: e.taskId }, "could not tell the chat of a sync conflict"),
    );
  };

  /** A field and its value as the owner reads them: `deadline Fri 11 Dec 18:00 (Europe/Moscow)`. */
  private async valueIn(userId: number | null) {
    const t = this.notices!;
    const zone = await this.deps.timezoneOf(userId ?? undefined);
    return (field: keyof TaskFields, value: FieldValue): string => {
      const shown =
        value === null || (Array.isArray(value) && value.length === 0)
          ? t("value-none")
          : field === "deadline"
            ? formatInZone(String(value), zone, this.noticeLocale)
            : Array.isArray(value)
              ? value.map((tag) => `#${tag}`).join(" ")
              : field === "priority"
                ? `p${value}`
                : `"${oneLine(String(value), 80)}"`;
      return t("found-value", { field: t(`field-${field}`), value: shown });
    };
  }

  private readonly settled = (view: { task: { id: string } }) => this.schedule(view.task.id);

  /**
   * Sends the progress message for a new task (or, with `change`, for a change of one), in
   * the user's language, and follows it until it has settled.
   */
  async start(chatId: number, taskId: string, t: Translate, change = false): Promise<void> {
    const view = await this.deps.getTask(taskId);
    if (!view) return;
    const text = renderTask(view, t);
    const sent = await this.api.sendMessage(chatId, text);
    const tracked: Tracked = {
      chatId,
      messageId: sent.message_id,
      taskId,
      t,
      lastText: text,
      lastEditAt: Date.now(),
      timer: undefined,
      change,
    };
    this.tracked.set(taskId, tracked);
    // It may have moved, or settled, while the message was on its way.
    this.schedule(taskId);
  }

  /** Stops following every task and listening to the core (shutdown). */
  stop(): void {
    for (const t of this.tracked.values()) clearTimeout(t.timer);
    this.tracked.clear();
    this.unlisten?.();
    const events = this.deps.events;
    events.off("operation.started", this.touch);
    events.off("operation.done", this.touch);
    events.off("operation.failed", this.touch);
    events.off("operation.waiting", this.touch);
    events.off("task.settled", this.settled);
    events.off("task.changes_settled", this.settled);
    events.off("task.changed", this.changed);
    events.off("task.conflict", this.conflict);
  }

  private schedule(taskId: string): void {
    const t = this.tracked.get(taskId);
    if (!t || t.timer) return;
    const wait = Math.max(0, t.lastEditAt + this.intervalMs - Date.now());
    t.timer = setTimeout(() => {
      t.timer = undefined;
      this.flush(t).catch((error: unknown) => {
        // The task could not be read (the store does not answer): try again a little later.
        this.deps.log.warn(
          { err: error, taskId: t.taskId },
          "could not read the task for its progress message",
        );
        t.lastEditAt = Date.now() + this.intervalMs;
        if (this.tracked.get(t.taskId) === t) this.schedule(t.taskId);
      });
    }, wait);
  }

  private async flush(t: Tracked): Promise<void> {
    const view = await this.deps.getTask(t.taskId);
    if (!view) return;
    const text = renderTask(view, t.t);
    const settled = t.change ? !changeUnderWay(view) : view.task.settledAt !== null;
    // Once settled, the message gets the task's buttons: Done or Reopen, Delete.
    const keyboard = settled ? taskKeyboard(view, t.t) : undefined;
    const newText = text !== t.lastText;
    if (newText || keyboard) {
      t.lastEditAt = Date.now();
      t.lastText = text;
      const markup = keyboard ? { reply_markup: keyboard } : {};
      try {
        if (newText) await this.api.editMessageText(t.chatId, t.messageId, text, markup);
        else await this.api.editMessageReplyMarkup(t.chatId, t.messageId, markup);
      } catch (error) {
        this.deps.log.warn({ err: error, taskId: t.taskId }, "could not update the progress message");
      }
    }
    if (settled) this.tracked.delete(t.taskId);
  }
}
