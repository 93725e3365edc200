import type { z } from "zod";
import type { ServerName } from "../config/schema.js";
import { ConfigError, MalformedReplyError, ToolFailedError } from "../errors.js";
import type { ChangeKind, Task, TaskFields } from "../domain/task.js";

export interface ToolResult {
  content?: Array<{ type: string; text?: string }>;
  structuredContent?: unknown;
  isError?: boolean;
}

/** The narrow door an integration gets to its server; `isError` already became a throw. */
export type CallTool = (
  name: string,
  args: Record<string, unknown>,
  signal: AbortSignal,
) => Promise<ToolResult>;

export type CreateOutcome = { remoteId: string } | { skipped: string };
/** A change done (with the record's id when it changed, as a new snapshot's), or skipped and why. */
export interface ChangeOutcome {
  remoteId?: string | undefined;
  skipped?: string | undefined;
}

/** One change of a task, to carry to one server. */
export interface ChangeRequest {
  kind: ChangeKind;
  /** The task's record on the server (its create's remote id). */
  remoteId: string;
  /** The operation's idempotency key: a server where a change cannot be made twice looks for it first. */
  key: string;
  /** An earlier attempt may have reached the server: look before changing again. */
  recheck: boolean;
  /** Whether the server offers a tool (lifecycle tools are optional at connect). */
  has(tool: string): boolean;
}
/**
 * A record found again, or not. `state`, where the server keeps one, is whether it holds the
 * task as done or open, and `fields` the task's fields as the server holds them (only those
 * it keeps whole and taskfan can read back as written): sync reads a change made there
 * behind taskfan's back from them.
 */
export type LookupResult =
  | {
      found: true;
      remoteId: string;
      state?: "open" | "done";
      fields?: Partial<TaskFields>;
    }
  | { found: false };

export interface Integration {
  readonly role: ServerName;
  readonly requiredTools: readonly string[];
  /**
   * Whose create of the same task must settle before this one runs: "required" (the
   * servers whose failure rolls the task back, for effects a person sees at once) or a
   * server whose output this one reads. Servers not in the fleet are ignored.
   */
  readonly after?: readonly ("required" | ServerName)[];
  /** One-time setup after (re)connecting, such as initialising a repository. */
  prepare?(call: CallTool, signal: AbortSignal): Promise<void>;
  create(task: Task, call: CallTool, signal: AbortSignal): Promise<CreateOutcome>;
  /** Looks for the task's record on the server (by remote id, else by our marker). */
  verify(task: Task, remoteId: string | null, call: CallTool, signal: AbortSignal): Promise<LookupResult>;
  compensate(task: Task, remoteId: string, call: CallTool, signal: AbortSignal): Promise<void>;
  /** Whether the undo already happened, for servers where undo leaves the record (git). */
  isUndone?(task: Task, remoteId: string, call: CallTool, signal: AbortSignal): Promise<boolean>;
  /**
   * Carries a change of the task (`task` is the task as it now is, after the change) to its
   * record on the server. Absent, or a kind it has no tool for: the change is skipped.
   */
  change?(req: ChangeRequest, task: Task, call: CallTool, signal: AbortSignal): Promise<ChangeOutcome>;
  /**
   * The server's own change feed, where it has one (memory keeper's `context_watch`): the
   * records changed since `cursor`, so sync reads only those back. With no cursor, or one
   * the server no longer knows (expired, restarted), it opens a new feed and answers "all":
   * what changed before it is read the slow way, once. Undefined: this server (an older
   * version) offers no feed.
   */
  changes?(
    cursor: string | null,
    call: CallTool,
    signal: AbortSignal,
    has: (tool: string) => boolean,
  ): Promise<FeedPage | undefined>;
  /** A cheap read for the health monitor. */
  probe(call: CallTool, signal: AbortSignal): Promise<void>;
}

/** What a change feed said: the cursor to ask from next time, and the records changed. */
export interface FeedPage {
  cursor: string;
  changed: ReadonlySet<string> | "all";
}

/** All text parts of a tool result, joined. */
export function textOf(result: ToolResult): string {
  return (result.content ?? [])
    .filter((c) => c.type === "text" && typeof c.text === "string")
    .map((c) => c.text)
    .join("\n");
}

/** The result as JSON: structured content when given, else the text parsed. */
export function jsonOf(result: ToolResult, server: string, tool: string): unknown {
  if (result.structuredContent !== undefined) return result.structuredContent;
  const text = textOf(result);
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new MalformedReplyError(server, tool, `expected JSON, got "${text.slice(0, 120)}"`, {
      cause: error,
    });
  }
}

/** Parses a reply with a schema; a reply of another shape is a recorded error. */
export function parseReply<T>(schema: z.ZodType<T>, value: unknown, server: string, tool: string): T {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw new MalformedReplyError(
      server,
      tool,
      result.error.issues.map((i) => `${i.path.join(".") || "reply"}: ${i.message}`).join("; "),
      { cause: result.error },
    );
  }
  return result.data;
}

/** Calls a tool whose reply is JSON, and checks the reply's shape. */
export async function callForJson<T>(
  call: CallTool,
  server: string,
  tool: string,
  args: Record<string, unknown>,
  schema: z.ZodType<T>,
  signal: AbortSignal,
): Promise<T> {
  return parseReply(schema, jsonOf(await call(tool, args, signal), server, tool), server, tool);
}

/** Servers such as DeltaTask answer failures as `{"error": "..."}` in a normal reply. */
export function throwIfErrorPayload(value: unknown, server: string, tool: string): void {
  if (value && typeof value === "object" && "error" in value) {
    const error = (value as { error: unknown }).error;
    if (error) throw new ToolFailedError(server, tool, String(error));
  }
}

/** Validates an integration's `settings`; the message names the config key. */
export function parseSettings<T>(schema: z.ZodType<T>, settings: unknown, role: ServerName): T {
  const result = schema.safeParse(settings ?? {});
  if (!result.success) {
    const issues = result.error.issues.map(
      (i) => `servers.${role}.settings.${i.path.join(".")}: ${i.message}`,
    );
    throw new ConfigError(`invalid settings for ${role}:\n  ${issues.join("\n  ")}`, issues);
  }
  return result.data;
}

/** The lines every human-readable record of a task carries. */
export function describeTask(task: Task): string {
  const lines = [`Title: ${task.title}`, `Priority: ${task.priority}`];
  if (task.description) lines.push(`Description: ${task.description}`);
  if (task.deadline) lines.push(`Deadline: ${task.deadline}`);
  if (task.tags.length > 0) lines.push(`Tags: ${task.tags.map((t) => `#${t}`).join(" ")}`);
  // A record written for a change says the task's state when it is no longer open.
  if (task.state && task.state !== "open") lines.push(`State: ${task.state}`);
  lines.push(`Task id: ${task.id}`);
  return lines.join("\n");
}

/** For each server, the servers its creates wait for (see `Integration.after`). */
export function dependencies(
  servers: readonly { name: ServerName; required: boolean }[],
  integrations: ReadonlyMap<ServerName, Integration>,
): Map<ServerName, ServerName[]> {
  const names = new Set(servers.map((s) => s.name));
  const required = servers.filter((s) => s.required).map((s) => s.name);
  const result = new Map<ServerName, ServerName[]>();
  for (const { name } of servers) {
    const after = (integrations.get(name)?.after ?? []).flatMap((a) => (a === "required" ? required : [a]));
    result.set(
      name,
      [...new Set(after)].filter((a) => a !== name && names.has(a)),
    );
  }
  return result;
}

/** The skip of a change a server has no tool for. */
export function noToolFor(role: ServerName, kind: ChangeKind, tool?: string): { skipped: string } {
  return { skipped: `${role} has no tool to ${kind} a task${tool ? ` (${tool} is not offered)` : ""}` };
}
