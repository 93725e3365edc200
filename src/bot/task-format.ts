import { isChangeKind, type ChangeKind, type Operation, type TaskView } from "../domain/task.js";
import { InlineKeyboard } from "grammy";
import { buttonData } from "./callback-data.js";
import type { Translate } from "./i18n.js";
import { shorten } from "./message-limits.js";

/** The first line of a text, shortened to `max`. */
export const oneLine = (text: string | null, max = 80) => shorten((text ?? "").split("\n")[0] ?? "", max);

/** One line for one server's part of a task. */
export function operationLine(op: Operation, t: Translate): string {
  const name = op.server.padEnd(19);
  if (op.kind === "compensate") {
    if (op.status === "done") return `↩️ ${name} ${t("op-undone")}`;
    if (op.status === "failed") return `⚠️ ${name} ${t("op-undo-failed", { error: oneLine(op.lastError) })}`;
    return `↩️ ${name} ${t("op-undoing")}`;
  }
  switch (op.status) {
    case "done":
      return `✅ ${name} ${t("op-done", { ms: op.totalMs })}`;
    case "skipped":
      return `⏭ ${name} ${op.lastError ? t("op-skipped-why", { reason: oneLine(op.lastError) }) : t("op-skipped")}`;
    case "failed":
      return `❌ ${name} ${oneLine(op.lastError)}`;
    case "running":
      return `🔄 ${name} ${op.attempts > 1 ? t("op-retrying-attempt", { attempt: op.attempts }) : t("op-working")}`;
    default:
      if (op.waiting) return `⏸ ${name} ${t("op-waiting", { reason: oneLine(op.waiting) })}`;
      return op.attempts > 0 ? `🔄 ${name} ${t("op-retrying")}` : `⏳ ${name} ${t("op-pending")}`;
  }
}

/** The version a change's operation carries (its key ends in `:v<version>`). */
export function versionOf(op: Pick<Operation, "idempotencyKey">): number {
  return Number(/:v(\d+)$/.exec(op.idempotencyKey)?.[1] ?? 0);
}

/** The latest change of a task and its operations, one per server. */
export function latestChange(
  view: TaskView,
): { kind: ChangeKind; version: number; ops: Operation[] } | undefined {
  const changes = view.operations.filter((o) => isChangeKind(o.kind));
  if (changes.length === 0) return undefined;
  const version = Math.max(...changes.map(versionOf));
  const ops = changes.filter((o) => versionOf(o) === version);
  return { kind: ops[0]!.kind as ChangeKind, version, ops };
}

/** Whether a change of the task is still on its way to a server. */
export function changeUnderWay(view: TaskView): boolean {
  return view.operations.some(
    (o) => isChangeKind(o.kind) && (o.status === "running" || (o.status === "pending" && !o.waiting)),
  );
}

/** The closing line: done, partial with what is retried, or rolled back and why. */
export function summaryLine(view: TaskView, t: Translate): string {
  const reason = view.task.statusReason ?? "";
  switch (view.task.status) {
    case "done":
      return t("sum-done");
    case "partial":
      return t("sum-partial", { reason });
    case "failed":
      return t("sum-failed", { reason });
    case "rolled_back":
      return t("sum-rolled-back", { reason });
    default:
      return t("sum-working");
  }
}

/**
 * The live progress message and /task: one line per server, then the summary. `date`
 * shows a deadline as the reader reads it (their zone and language).
 */
export function renderTask(
  view: TaskView,
  t: Translate,
  detailed = false,
  date: (iso: string) => string = (iso) => iso,
): string {
  const { task } = view;
  const head = [t("task-head", { id: task.id, title: task.title })];
  if (detailed) {
    head.push(
      t("task-details", {
        priority: task.priority,
        due: task.deadline ? t("task-due", { date: date(task.deadline) }) : "",
        tags: task.tags.length ? ` · ${task.tags.map((tag) => `#${tag}`).join(" ")}` : "",
      }),
    );
  }
  if (task.state !== "open" || task.version > 1) {
    head.push(t("task-state", { state: t(`state-${task.state}`), version: task.version }));
  }
  const lines = view.operations
    .filter((o) => !isChangeKind(o.kind))
    .map((op) => {
      const line = operationLine(op, t);
      if (!detailed) return line;
      const extra = [
        op.remoteId ? t("task-remote", { id: oneLine(op.remoteId, 40) }) : "",
        t("task-attempts", { count: op.attempts }),
      ]
        .filter(Boolean)
        .join(", ");
      return `${line}\n    ${extra}`;
    });
  const change = latestChange(view);
  const changeLines = change
    ? [
        "",
        t("change-head", { kind: t(`change-${change.kind}`), version: change.version }),
        ...change.ops.map((op) => operationLine(op, t)),
        changeUnderWay(view) ? t("sum-working") : t("change-settled"),
      ]
    : [];
  return [...head, "", ...lines, "", summaryLine(view, t), ...changeLines].join("\n");
}

/** The buttons under a task: retry what failed, and Done or Reopen, Edit and Delete as its state allows. */
export function taskKeyboard(view: TaskView, t: Translate): InlineKeyboard | undefined {
  const { task } = view;
  if (task.status === "rolled_back" || task.state === "deleted") return undefined;
  const keyboard = new InlineKeyboard();
  if (task.state === "open") keyboard.text(t("btn-done"), buttonData.taskChange("done", task.id));
  else keyboard.text(t("btn-reopen"), buttonData.taskChange("reopen", task.id));
  keyboard.text(t("btn-task-edit"), buttonData.taskChange("edit", task.id));
  keyboard.text(t("btn-delete"), buttonData.taskChange("delete", task.id));
  if (view.operations.some((o) => o.status === "failed" && o.kind === "create")) {
    keyboard.row().text(t("btn-retry"), buttonData.taskRetry(task.id));
  }
  return keyboard;
}
