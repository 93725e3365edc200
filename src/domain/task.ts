import { randomBytes } from "node:crypto";
import { z } from "zod";
import { ValidationError } from "../errors.js";

export type TaskStatus = "pending" | "running" | "done" | "partial" | "failed" | "rolled_back";
export type OperationStatus = "pending" | "running" | "done" | "failed" | "skipped";
/** A change of a task after its create, fanned out like the create (see `Orchestrator.changeTask`). */
export type ChangeKind = "update" | "complete" | "reopen" | "delete";
export type OperationKind = "create" | "compensate" | ChangeKind;
export const changeKinds: readonly ChangeKind[] = ["update", "complete", "reopen", "delete"];
export const isChangeKind = (kind: string): kind is ChangeKind =>
  (changeKinds as readonly string[]).includes(kind);
/** The task's own state, separate from its fan-out status. */
export type LifecycleState = "open" | "done" | "deleted";
/** The fields an update may change. */
export type TaskFields = Pick<ValidTask, "title" | "description" | "priority" | "deadline" | "tags">;

export interface Task {
  id: string;
  title: string;
  description: string;
  /** 1 is the most important. */
  priority: number;
  /** ISO 8601 with offset, or null. */
  deadline: string | null;
  tags: string[];
  status: TaskStatus;
  statusReason: string | null;
  createdAt: number;
  updatedAt: number;
  settledAt: number | null;
  /** Set when a required server failed for good and the task was undone everywhere. */
  rollbackReason: string | null;
  state: LifecycleState;
  /** 1 at creation, one more for every change. */
  version: number;
  completedAt: number | null;
  deletedAt: number | null;
  /** The chat and user that created it (null for the API and the CLI). */
  chatId: string | null;
  userId: number | null;
}

export interface Operation {
  id: number;
  taskId: string;
  server: string;
  kind: OperationKind;
  status: OperationStatus;
  /** Servers whose create of the same task must settle before this one runs. */
  waitsFor: string[];
  priority: number;
  attempts: number;
  idempotencyKey: string;
  remoteId: string | null;
  lastError: string | null;
  retryable: boolean;
  waiting: string | null;
  recheck: boolean;
  nextAttemptAt: number;
  leaseOwner: string | null;
  leaseExpiresAt: number | null;
  durationMs: number | null;
  totalMs: number;
  createdAt: number;
  startedAt: number | null;
  finishedAt: number | null;
}

/** A task with its operations, as every reader (chat, API, CLI) shows it. */
export interface TaskView {
  task: Task;
  operations: Operation[];
}

export interface NewTask {
  title: string;
  description?: string | undefined;
  priority?: number | undefined;
  deadline?: string | Date | null | undefined;
  tags?: readonly string[] | undefined;
}

export interface ValidTask {
  title: string;
  description: string;
  priority: number;
  deadline: string | null;
  tags: string[];
}

/** The first control character (C0 and DEL; `allowed` ones excepted) in `text`, as U+XXXX. */
export function controlCharacterIn(text: string, allowed = ""): string | undefined {
  for (const c of text) {
    const code = c.charCodeAt(0);
    if ((code < 0x20 || code === 0x7f) && !allowed.includes(c)) {
      return `U+${code.toString(16).toUpperCase().padStart(4, "0")}`;
    }
  }
  return undefined;
}

const noControl = (field: string, allowed = "") =>
  z.string().superRefine((text, ctx) => {
    const found = controlCharacterIn(text, allowed);
    if (found)
      ctx.addIssue({ code: "custom", message: `the ${field} may not hold control characters (${found})` });
  });

/** The prefix of the markers taskfan writes on every server: no tag of a person's may use it. */
export const reservedTagPrefix = "taskfan-";

const tagSchema = z
  .string()
  .trim()
  .transform((t) => t.replace(/^#/, ""))
  .pipe(
    z
      .string()
      .min(1, "a tag may not be empty")
      .max(50, "a tag has at most 50 characters")
      .regex(/^[\p{L}\p{N}_-]+$/u, "a tag holds letters, digits, - and _ only")
      .refine(
        (t) => !t.toLowerCase().startsWith(reservedTagPrefix),
        `tags starting with "${reservedTagPrefix}" are reserved for taskfan's own markers`,
      ),
  );

const newTaskSchema = z.object({
  title: noControl("title").pipe(
    z.string().trim().min(1, "the title may not be empty").max(200, "the title has at most 200 characters"),
  ),
  description: noControl("description", "\n\t").pipe(
    z.string().trim().max(4000, "the description has at most 4000 characters"),
  ),
  priority: z
    .number()
    .int("priority is a whole number from 1 to 5")
    .min(1, "priority is from 1 (highest) to 5")
    .max(5, "priority is from 1 (highest) to 5"),
  tags: z.array(tagSchema).max(10, "at most 10 tags"),
});

/** Checks a new task; throws ValidationError naming the field. `now` decides "future". */
export function validateNewTask(input: NewTask, now: number = Date.now()): ValidTask {
  const result = newTaskSchema.safeParse({
    title: input.title,
    // Line ends pasted from another system are line ends, not control characters.
    description: typeof input.description === "string" ? input.description.replace(/\r\n?/g, "\n") : "",
    priority: input.priority ?? 3,
    tags: [...(input.tags ?? [])],
  });
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new ValidationError(String(issue?.path[0] ?? "task"), issue?.message ?? "invalid task");
  }
  let deadline: string | null = null;
  if (input.deadline !== undefined && input.deadline !== null && input.deadline !== "") {
    const date = input.deadline instanceof Date ? input.deadline : parseIsoDate(String(input.deadline));
    if (!date) {
      throw new ValidationError(
        "deadline",
        "the deadline is not a date; use ISO 8601, e.g. 2026-12-01T12:00:00Z",
      );
    }
    if (date.getTime() <= now) throw new ValidationError("deadline", "the deadline is in the past");
    deadline = date.toISOString();
  }
  return { ...result.data, tags: [...new Set(result.data.tags)], deadline };
}

function parseIsoDate(text: string): Date | undefined {
  if (!/^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) {
    return undefined;
  }
  const date = new Date(text.replace(" ", "T"));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

const alphabet = "0123456789abcdefghjkmnpqrstvwxyz";

/** A short id a person can type: 10 characters of Crockford base32 (50 bits). */
export function newTaskId(): string {
  const bytes = randomBytes(10);
  let id = "";
  for (const b of bytes) id += alphabet[b & 31];
  return id;
}

/** The marker every server's record of a task carries, so we can find it again. */
export function taskMarker(taskId: string): string {
  return `taskfan-${taskId}`;
}
