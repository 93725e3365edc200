/**
 * A local time-tracking MCP server with a Toggl-like surface plus update and delete: tasks
 * that time can be tracked against (active until done, as Toggl's tasks), and a timer.
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import { z } from "zod";
import { JsonFile, dataDirFromEnv } from "./json-file.js";
import { json, ToolSet, toolError, serve } from "./run-server.js";

interface TrackedTask {
  id: string;
  name: string;
  tags: string[];
  estimated_seconds: number | null;
  created_at: string;
  /** Toggl's flag: false once the task is done (archived); absent on older rows means true. */
  active?: boolean;
}

interface TimeEntry {
  id: string;
  task_id: string | null;
  description: string;
  tags: string[];
  start: string;
  stop: string | null;
}

const store = new JsonFile<{ tasks: TrackedTask[]; entries: TimeEntry[] }>(
  path.join(dataDirFromEnv(), "time-tracker.json"),
  () => ({ tasks: [], entries: [] }),
);
const server = new ToolSet({ name: "time-tracker", version: "0.1.0" });

server.registerTool(
  "toggl_create_task",
  {
    description: "Register a task that time can be tracked against.",
    inputSchema: {
      name: z.string().min(1),
      tags: z.array(z.string()).default([]),
      estimated_seconds: z.number().int().positive().optional(),
    },
  },
  ({ name, tags, estimated_seconds }) => {
    const task: TrackedTask = {
      id: randomUUID(),
      name,
      tags,
      estimated_seconds: estimated_seconds ?? null,
      created_at: new Date().toISOString(),
      active: true,
    };
    store.update((d) => d.tasks.push(task));
    return json(task);
  },
);

server.registerTool(
  "toggl_list_tasks",
  { description: "List registered tasks, optionally by tag.", inputSchema: { tag: z.string().optional() } },
  ({ tag }) => json({ tasks: store.data.tasks.filter((t) => !tag || t.tags.includes(tag)) }),
);

server.registerTool(
  "toggl_get_task",
  { description: "Get a registered task and its tracked time.", inputSchema: { task_id: z.string() } },
  ({ task_id }) => {
    const task = store.data.tasks.find((t) => t.id === task_id);
    if (!task) return toolError(`Task ${task_id} not found`);
    const entries = store.data.entries.filter((e) => e.task_id === task_id);
    return json({ ...task, entries });
  },
);

server.registerTool(
  "toggl_update_task",
  {
    description:
      "Update a registered task: its name, tags, or active flag (false: done; its running timer stops).",
    inputSchema: {
      task_id: z.string(),
      name: z.string().min(1).optional(),
      tags: z.array(z.string()).optional(),
      active: z.boolean().optional(),
    },
  },
  ({ task_id, name, tags, active }) => {
    const task = store.data.tasks.find((t) => t.id === task_id);
    if (!task) return toolError(`Task ${task_id} not found`);
    store.update((d) => {
      if (name !== undefined) task.name = name;
      if (tags !== undefined) task.tags = tags;
      if (active !== undefined) task.active = active;
      if (active === false) {
        const now = new Date().toISOString();
        for (const e of d.entries) if (e.task_id === task_id && e.stop === null) e.stop = now;
      }
    });
    return json({ ...task, active: task.active ?? true });
  },
);

server.registerTool(
  "toggl_delete_task",
  { description: "Delete a registered task and its time entries.", inputSchema: { task_id: z.string() } },
  ({ task_id }) => {
    if (!store.data.tasks.some((t) => t.id === task_id)) return toolError(`Task ${task_id} not found`);
    store.update((d) => {
      d.tasks = d.tasks.filter((t) => t.id !== task_id);
      d.entries = d.entries.filter((e) => e.task_id !== task_id);
    });
    return json({ success: true });
  },
);

server.registerTool(
  "toggl_start_timer",
  {
    description: "Start a timer, stopping any running one.",
    inputSchema: {
      description: z.string().default(""),
      task_id: z.string().optional(),
      tags: z.array(z.string()).default([]),
    },
  },
  ({ description, task_id, tags }) => {
    const now = new Date().toISOString();
    const entry: TimeEntry = {
      id: randomUUID(),
      task_id: task_id ?? null,
      description,
      tags,
      start: now,
      stop: null,
    };
    store.update((d) => {
      for (const e of d.entries) if (e.stop === null) e.stop = now;
      d.entries.push(entry);
    });
    return json(entry);
  },
);

server.registerTool("toggl_stop_timer", { description: "Stop the running timer.", inputSchema: {} }, () => {
  const running = store.data.entries.find((e) => e.stop === null);
  if (!running) return toolError("No timer is running");
  store.update(() => (running.stop = new Date().toISOString()));
  return json(running);
});

server.registerTool(
  "toggl_get_current_entry",
  { description: "The running time entry, if any.", inputSchema: {} },
  () => json({ entry: store.data.entries.find((e) => e.stop === null) ?? null }),
);

server.registerTool(
  "delete_time_entry",
  { description: "Delete one time entry.", inputSchema: { time_entry_id: z.string() } },
  ({ time_entry_id }) => {
    if (!store.data.entries.some((e) => e.id === time_entry_id))
      return toolError(`Entry ${time_entry_id} not found`);
    store.update((d) => (d.entries = d.entries.filter((e) => e.id !== time_entry_id)));
    return json({ success: true });
  },
);

await serve(server);
