import { z } from "zod";
import { ToolFailedError } from "../errors.js";
import type { Task } from "../domain/task.js";
import { callForJson, parseSettings, type Integration } from "./integration.js";

const role = "git";
/**
 * `repo_path`: the repository; by default "tasks", which the server resolves under its own
 * base folder (GIT_BASE_DIR) or working directory: a server on another machine needs none
 * of this one's paths.
 */
const settingsSchema = z.strictObject({ repo_path: z.string().min(1).default("tasks") });
const committed = z.object({ success: z.boolean(), commitHash: z.string().optional() });
const logged = z.object({
  commits: z.array(
    z.object({ hash: z.string(), subject: z.string().optional(), body: z.string().optional() }),
  ),
});

export function commitTrailer(task: Task): string {
  return `Taskfan-Task: ${task.id}`;
}

/**
 * A person's text inside a commit message: a line that starts like one of our trailers
 * ("Taskfan-Task: ...") is indented, so neither `git log --grep '^Taskfan-...'` nor a
 * trailer parser can take it for ours.
 */
export function quoteUserText(text: string): string {
  return text.replace(/^[ \t]*(taskfan-)/gim, "  $1");
}

/** The trailers of a commit body: the lines of its last paragraph, when each is "Key: value". */
export function trailersOf(body: string): string[] {
  const last =
    body
      .trim()
      .split(/\n[ \t]*\n/)
      .at(-1) ?? "";
  const lines = last.split("\n").map((l) => l.trimEnd());
  return lines.every((l) => /^[A-Za-z][\w-]*: /.test(l)) ? lines : [];
}

/**
 * git: an (empty) commit records each task in the repository's history; undo is a
 * compensating commit, never a rewrite of history.
 */
export function createGitIntegration(settings: unknown): Integration {
  const { repo_path: repo } = parseSettings(settingsSchema, settings, role);

  async function commit(message: string, call: Parameters<Integration["create"]>[1], signal: AbortSignal) {
    const reply = await callForJson(
      call,
      role,
      "git_commit",
      { path: repo, message, allowEmpty: true },
      committed,
      signal,
    );
    if (!reply.success || !reply.commitHash)
      throw new ToolFailedError(role, "git_commit", "no commit was made");
    return reply.commitHash;
  }

  return {
    role,
    requiredTools: ["git_init", "git_commit", "git_log"],
    async prepare(call, signal) {
      const log = await call("git_log", { path: repo, maxCount: 1 }, signal).catch(() => undefined);
      if (log) return;
      await call("git_init", { path: repo, initialBranch: "main" }, signal);
      // A first commit, so every later commit has a parent and can be undone.
      await commit("Start the taskfan task log", call, signal);
    },
    async create(task, call, signal) {
      const body = [`Priority: ${task.priority}`];
      if (task.deadline) body.push(`Deadline: ${task.deadline}`);
      if (task.tags.length > 0) body.push(`Tags: ${task.tags.join(", ")}`);
      const description = task.description ? `${quoteUserText(task.description)}\n\n` : "";
      // Our trailer is the last paragraph, written after the person's text.
      const message = `Add task ${task.id}: ${task.title}\n\n${description}${body.join("\n")}\n\n${commitTrailer(task)}`;
      return { remoteId: await commit(message, call, signal) };
    },
    async verify(task, remoteId, call, signal) {
      const reply = await callForJson(
        call,
        role,
        "git_log",
        { path: repo, maxCount: 20, grep: `^${commitTrailer(task)}$` },
        logged,
        signal,
      );
      // Matched as a trailer of ours, not a line anywhere in the message.
      const hit = reply.commits.find(
        (c) =>
          (remoteId ? c.hash === remoteId : true) && trailersOf(c.body ?? "").includes(commitTrailer(task)),
      );
      return hit ? { found: true, remoteId: hit.hash } : { found: false };
    },
    async change({ kind, key, recheck }, task, call, signal) {
      const trailer = `Taskfan-Change: ${key}`;
      // A commit cannot be made twice harmlessly: after an attempt that may have landed, look.
      if (recheck) {
        const reply = await callForJson(
          call,
          role,
          "git_log",
          { path: repo, maxCount: 20, grep: `^${trailer}$` },
          logged,
          signal,
        );
        const hit = reply.commits.find((c) => trailersOf(c.body ?? "").includes(trailer));
        if (hit) return { remoteId: hit.hash };
      }
      const verb = { update: "Edit", complete: "Complete", reopen: "Reopen", delete: "Delete" }[kind];
      const body = [`State: ${task.state}`, `Priority: ${task.priority}`];
      if (task.deadline) body.push(`Deadline: ${task.deadline}`);
      if (task.tags.length > 0) body.push(`Tags: ${task.tags.join(", ")}`);
      // History is never rewritten: a delete is a commit like any other change.
      const message = `${verb} task ${task.id}: ${task.title}\n\n${body.join("\n")}\n\n${commitTrailer(task)}\nTaskfan-Version: ${task.version}\n${trailer}`;
      return { remoteId: await commit(message, call, signal) };
    },
    async probe(call, signal) {
      await call("git_log", { path: repo, maxCount: 1 }, signal);
    },
    async isUndone(task, _remoteId, call, signal) {
      const reply = await callForJson(
        call,
        role,
        "git_log",
        { path: repo, maxCount: 20, grep: `^Taskfan-Withdrawn: ${task.id}$` },
        logged,
        signal,
      );
      return reply.commits.some(
        (c) =>
          (c.subject === undefined || c.subject === `Withdraw task ${task.id}`) &&
          trailersOf(c.body ?? "").includes(`Taskfan-Withdrawn: ${task.id}`),
      );
    },
    async compensate(task, remoteId, call, signal) {
      await commit(
        `Withdraw task ${task.id}\n\nReverts: ${remoteId}\nTaskfan-Withdrawn: ${task.id}`,
        call,
        signal,
      );
    },
  };
}
