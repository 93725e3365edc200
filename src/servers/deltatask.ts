/**
 * A local MCP server with DeltaTask's tool surface (create_task, get_task_by_id,
 * update_task, delete_task, list_tasks, search_tasks, finish_task, get_statistics).
 * Failures come back as `{"error": "..."}` in a normal reply, as upstream does.
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import { z } from "zod";
import { JsonFile, dataDirFromEnv } from "./json-file.js";
import { json, ToolSet, serve } from "./run-server.js";

interface DeltaTask {
  id: string;
  title: string;
  description: string;
  urgency: number;
  effort: number;
  tags: string[];
  deadline: string | null;
  completed: boolean;
  parent_id: string | null;
  created_at: string;
  updated_at: string;
}

const efforts = [1, 2, 3, 5, 8, 13, 21];
const store = new JsonFile<{ tasks: DeltaTask[] }>(path.join(dataDirFromEnv(), "tasks.json"), () => ({
  tasks: [],
}));
const server = new ToolSet({ name: "deltatask", version: "0.1.0" });

function find(id: string): DeltaTask | undefined {
  return store.data.tasks.find((t) => t.id === id);
}

function checkFields(f: { urgency?: number | undefined; effort?: number | undefined }) {
  if (f.urgency !== undefined && (f.urgency < 1 || f.urgency > 5 || !Number.isInteger(f.urgency))) {
    return "Urgency must be an integer between 1 and 5";
  }
  if (f.effort !== undefined && !efforts.includes(f.effort)) {
    return `Effort must be one of ${efforts.join(", ")}`;
  }
  return undefined;
}

server.registerTool(
  "create_task",
  {
    description: "Create a new task.",
    inputSchema: {
      title: z.string(),
      description: z.string().default(""),
      urgency: z.number().default(1),
      effort: z.number().default(1),
      tags: z.array(z.string()).default([]),
      parent_id: z.string().optional(),
    },
  },
  (args) => {
    if (!args.title.trim()) return json({ error: "Title is required" });
    const invalid = checkFields(args);
    if (invalid) return json({ error: invalid });
    const now = new Date().toISOString();
    const task: DeltaTask = {
      id: randomUUID(),
      title: args.title,
      description: args.description,
      urgency: args.urgency,
      effort: args.effort,
      tags: args.tags,
      deadline: null,
      completed: false,
      parent_id: args.parent_id ?? null,
      created_at: now,
      updated_at: now,
    };
    store.update((d) => d.tasks.push(task));
    return json({ id: task.id, message: "Task created successfully" });
  },
);

server.registerTool(
  "get_task_by_id",
  { description: "Get a task by its id.", inputSchema: { task_id: z.string() } },
  ({ task_id }) => json(find(task_id) ?? { error: `Task with ID ${task_id} not found` }),
);

server.registerTool(
  "update_task",
  {
    description: "Update fields of a task.",
    inputSchema: {
      task_id: z.string(),
      updates: z.object({
        title: z.string().optional(),
        description: z.string().optional(),
        urgency: z.number().optional(),
        effort: z.number().optional(),
        tags: z.array(z.string()).optional(),
        deadline: z.string().nullable().optional(),
        completed: z.boolean().optional(),
      }),
    },
  },
  ({ task_id, updates }) => {
    const task = find(task_id);
    if (!task) return json({ error: `Task with ID ${task_id} not found` });
    const invalid = checkFields(updates);
    if (invalid) return json({ error: invalid });
    if (updates.deadline && Number.isNaN(Date.parse(updates.deadline))) {
      return json({ error: "Deadline must be an ISO 8601 date" });
    }
    store.update(() => {
      Object.assign(task, Object.fromEntries(Object.entries(updates).filter(([, v]) => v !== undefined)));
      task.updated_at = new Date().toISOString();
    });
    return json({ message: "Task updated successfully", task });
  },
);

server.registerTool(
  "delete_task",
  { description: "Delete a task and its subtasks.", inputSchema: { task_id: z.string() } },
  ({ task_id }) => {
    if (!find(task_id)) return json({ error: `Task with ID ${task_id} not found` });
    store.update((d) => {
      d.tasks = d.tasks.filter((t) => t.id !== task_id && t.parent_id !== task_id);
    });
    return json({ message: "Task deleted successfully" });
  },
);

server.registerTool(
  "list_tasks",
  {
    description: "List tasks, optionally those carrying all the given tags.",
    inputSchema: { tags: z.array(z.string()).optional() },
  },
  ({ tags }) => json(store.data.tasks.filter((t) => (tags ?? []).every((tag) => t.tags.includes(tag)))),
);

server.registerTool(
  "search_tasks",
  { description: "Search tasks by text.", inputSchema: { query: z.string() } },
  ({ query }) => {
    const q = query.toLowerCase();
    return json(
      store.data.tasks.filter(
        (t) =>
          t.title.toLowerCase().includes(q) ||
          t.description.toLowerCase().includes(q) ||
          t.tags.some((tag) => tag.toLowerCase().includes(q)),
      ),
    );
  },
);

server.registerTool(
  "finish_task",
  { description: "Mark a task completed.", inputSchema: { task_id: z.string() } },
  ({ task_id }) => {
    const task = find(task_id);
    if (!task) return json({ error: `Task with ID ${task_id} not found` });
    store.update(() => {
      task.completed = true;
      task.updated_at = new Date().toISOString();
    });
    return json({ message: "Task marked as completed" });
  },
);

server.registerTool("get_statistics", { description: "Task statistics.", inputSchema: {} }, () => {
  const tasks = store.data.tasks;
  return json({
    total_tasks: tasks.length,
    completed_tasks: tasks.filter((t) => t.completed).length,
    by_urgency: Object.fromEntries(
      [1, 2, 3, 4, 5].map((u) => [u, tasks.filter((t) => t.urgency === u).length]),
    ),
  });
});

await serve(server);
