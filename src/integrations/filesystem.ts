import path from "node:path";
import { z } from "zod";
import type { Task } from "../domain/task.js";
import { ToolFailedError } from "../errors.js";
import { describeTask, parseSettings, textOf, type CallTool, type Integration } from "./integration.js";

const role = "filesystem";
/** `root`: where the task files go; by default the first folder the server allows. */
const settingsSchema = z.strictObject({ root: z.string().min(1).optional() });

/**
 * filesystem: the task as a Markdown file, tasks/<id>.md; undo moves it to trash/. Its
 * folder is the server's to say (`list_allowed_directories`), so a server on another
 * machine works without knowing this one's paths; `settings.root` overrides it.
 */
export function createFilesystemIntegration(settings: unknown): Integration {
  const given = parseSettings(settingsSchema, settings, role).root;
  let root = given;
  const folder = () => {
    if (!root) throw new ToolFailedError(role, "list_allowed_directories", "no folder to write in yet");
    return root;
  };
  const fileOf = (task: Task) => path.join(folder(), "tasks", `${task.id}.md`);
  return {
    role,
    requiredTools: [
      "write_file",
      "get_file_info",
      "create_directory",
      "move_file",
      ...(given ? [] : ["list_allowed_directories"]),
    ],
    async prepare(call, signal) {
      root = given ?? (await allowedFolder(call, signal));
      await call("create_directory", { path: path.join(root, "tasks") }, signal);
      await call("create_directory", { path: path.join(root, "trash") }, signal);
    },
    async create(task, call, signal) {
      const file = fileOf(task);
      await call("write_file", { path: file, content: contentOf(task) }, signal);
      return { remoteId: file };
    },
    async change({ kind, remoteId, recheck }, task, call, signal) {
      if (kind !== "delete") {
        // The whole file, as the task now is.
        await call("write_file", { path: remoteId, content: contentOf(task) }, signal);
        return {};
      }
      const trash = path.join(folder(), "trash", `${task.id}-deleted.md`);
      try {
        await call("move_file", { source: remoteId, destination: trash }, signal);
      } catch (error) {
        // A retry after the move landed finds the file gone and the trash holding it (the
        // server checks the destination first): done, once the file is seen to be gone.
        const landed = /ENOENT|no such file|not found|already exists/i.test(String((error as Error).message));
        if (!(recheck && landed && !(await exists(remoteId, call, signal)))) throw error;
      }
      return {};
    },
    async verify(task, _remoteId, call, signal) {
      const file = fileOf(task);
      return (await exists(file, call, signal)) ? { found: true, remoteId: file } : { found: false };
    },
    async probe(call, signal) {
      await call("get_file_info", { path: folder() }, signal);
    },
    async compensate(task, remoteId, call, signal) {
      const trash = path.join(folder(), "trash", `${task.id}-${Date.now()}.md`);
      await call("move_file", { source: remoteId, destination: trash }, signal);
    },
  };
}

/** Whether the server has the file. */
async function exists(file: string, call: CallTool, signal: AbortSignal): Promise<boolean> {
  try {
    await call("get_file_info", { path: file }, signal);
    return true;
  } catch (error) {
    if (/ENOENT|no such file|not found/i.test(String((error as Error).message))) return false;
    throw error;
  }
}

function contentOf(task: Task): string {
  return `# ${task.title}\n\n${describeTask(task)}\n`;
}

/** The first folder the server says it allows ("Allowed directories:" and one per line). */
async function allowedFolder(call: Parameters<NonNullable<Integration["prepare"]>>[0], signal: AbortSignal) {
  const text = textOf(await call("list_allowed_directories", {}, signal));
  const first = text
    .split("\n")
    .slice(1)
    .map((l) => l.trim())
    .find((l) => path.isAbsolute(l));
  if (!first) {
    throw new ToolFailedError(
      role,
      "list_allowed_directories",
      "the server allows no folder; give it one, or set servers.filesystem.settings.root",
    );
  }
  return first;
}
