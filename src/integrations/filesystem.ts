import path from "node:path";
import { z } from "zod";
import type { Task } from "../domain/task.js";
import { describeTask, parseSettings, type Integration } from "./integration.js";

const role = "filesystem";
const settingsSchema = z.strictObject({ root: z.string().min(1) });

/** filesystem: the task as a Markdown file, tasks/<id>.md; undo moves it to trash/. */
export function createFilesystemIntegration(settings: unknown): Integration {
  const { root } = parseSettings(settingsSchema, settings, role);
  const fileOf = (task: Task) => path.join(root, "tasks", `${task.id}.md`);
  return {
    role,
    requiredTools: ["write_file", "get_file_info", "create_directory", "move_file"],
    async prepare(call, signal) {
      await call("create_directory", { path: path.join(root, "tasks") }, signal);
      await call("create_directory", { path: path.join(root, "trash") }, signal);
    },
    async create(task, call, signal) {
      const file = fileOf(task);
      const content = `# ${task.title}\n\n${describeTask(task)}\n`;
      await call("write_file", { path: file, content }, signal);
      return { remoteId: file };
    },
    async verify(task, _remoteId, call, signal) {
      const file = fileOf(task);
      try {
        await call("get_file_info", { path: file }, signal);
        return { found: true, remoteId: file };
      } catch (error) {
        if (/ENOENT|no such file|not found/i.test(String((error as Error).message))) return { found: false };
        throw error;
      }
    },
    async probe(call, signal) {
      await call("get_file_info", { path: root }, signal);
    },
    async compensate(task, remoteId, call, signal) {
      const trash = path.join(root, "trash", `${task.id}-${Date.now()}.md`);
      await call("move_file", { source: remoteId, destination: trash }, signal);
    },
  };
}
