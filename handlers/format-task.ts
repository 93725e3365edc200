import type { TaskView } from "../src/orchestrator/orchestrator.js";
import type { Operation } from "../src/orchestrator/task.js";

function oneLine(text: string | null, max = 80): string {
  const line = (text ?? "").split("\n")[0] ?? "";
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/** One line for one server's part of a task. */
export function operationLine(op: Operation): string {
  const name = op.server.padEnd(19);
  if (op.kind === "compensate") {
    if (op.status === "done") return `↩️ ${name} undone`;
    if (op.status === "failed") return `⚠️ ${name} undo failed: ${oneLine(op.lastError)}`;
    return `↩️ ${name} undoing…`;
  }
  switch (op.status) {
    case "done":
      return `✅ ${name} ${op.totalMs} ms`;
    case "skipped":
      return `⏭ ${name} skipped${op.lastError ? `: ${oneLine(op.lastError)}` : ""}`;
    case "failed":
      return `❌ ${name} ${oneLine(op.lastError)}`;
    case "running":
      return op.attempts > 1 ? `🔄 ${name} retrying (attempt ${op.attempts})` : `🔄 ${name} working…`;
    default:
      if (op.waiting) return `⏸ ${name} waiting: ${oneLine(op.waiting)}`;
      return op.attempts > 0 ? `🔄 ${name} retrying` : `⏳ ${name} pending`;
  }
}

/** The closing line: done, partial with what is retried, or rolled back and why. */
export function summaryLine(view: TaskView): string {
  const { task } = view;
  switch (task.status) {
    case "done":
      return "Done: every server has it.";
    case "partial":
      return `Partial: ${task.statusReason}. Failed steps are retried when their servers recover.`;
    case "failed":
      return `Failed: ${task.statusReason}.`;
    case "rolled_back":
      return `Rolled back: ${task.statusReason}.`;
    default:
      return "Working…";
  }
}

/** The live progress message and /task: one line per server, then the summary. */
export function renderTask(view: TaskView, detailed = false): string {
  const { task } = view;
  const head = [`Task ${task.id}: ${task.title}`];
  if (detailed) {
    head.push(
      `Priority ${task.priority}${task.deadline ? ` · due ${task.deadline}` : ""}${task.tags.length ? ` · ${task.tags.map((t) => `#${t}`).join(" ")}` : ""}`,
    );
  }
  const lines = view.operations.map((op) => {
    const line = operationLine(op);
    if (!detailed) return line;
    const extra = [
      op.remoteId ? `id ${oneLine(op.remoteId, 40)}` : "",
      `${op.attempts} attempt${op.attempts === 1 ? "" : "s"}`,
    ]
      .filter(Boolean)
      .join(", ");
    return `${line}\n    ${extra}`;
  });
  return [...head, "", ...lines, "", summaryLine(view)].join("\n");
}
