/**
 * A local MCP server with caldav-mcp's todo surface (create-todo, list-todos, update-todo,
 * complete-todo, delete-todo, list-calendars), for when no CalDAV server is configured. Todos are kept
 * per calendar URL in one JSON file under DATA_DIR.
 */
import { randomUUID } from "node:crypto";
import path from "node:path";
import { z } from "zod";
import { JsonFile, dataDirFromEnv } from "./json-file.js";
import { json, ToolSet, text, toolError, serve } from "./run-server.js";

const statuses = ["NEEDS-ACTION", "COMPLETED", "IN-PROCESS", "CANCELLED"] as const;

interface Todo {
  uid: string;
  summary: string;
  status: (typeof statuses)[number];
  due?: string;
  start?: string;
  description?: string;
  location?: string;
  /** RFC 5545: raised on every change; COMPLETED and PERCENT-COMPLETE set with STATUS:COMPLETED. */
  sequence?: number;
  completed?: string;
  percentComplete?: number;
  lastModified?: string;
}

/** A todo as a change leaves it: one sequence more; completion fields follow the status. */
function changed(todo: Todo, fields: Partial<Todo>): Todo {
  const next: Todo = {
    ...todo,
    ...fields,
    sequence: (todo.sequence ?? 0) + 1,
    lastModified: new Date().toISOString(),
  };
  if (next.status === "COMPLETED") {
    next.completed =
      todo.status === "COMPLETED" && todo.completed ? todo.completed : new Date().toISOString();
    next.percentComplete = 100;
  } else {
    delete next.completed;
    delete next.percentComplete;
  }
  return next;
}

function replace(calendarUrl: string, uid: string, fields: Partial<Todo>) {
  const todo = (store.data.calendars[calendarUrl] ?? []).find((t) => t.uid === uid);
  if (!todo) return toolError(`Todo not found: ${uid}`);
  const next = changed(todo, fields);
  store.update((d) => {
    d.calendars[calendarUrl] = (d.calendars[calendarUrl] ?? []).map((t) => (t.uid === uid ? next : t));
  });
  return text(uid);
}

const store = new JsonFile<{ calendars: Record<string, Todo[]> }>(
  path.join(dataDirFromEnv(), "calendar.json"),
  () => ({ calendars: {} }),
);
const server = new ToolSet({ name: "calendar", version: "0.1.0" });
const isoDate = z.string().datetime({ offset: true });

server.registerTool("list-calendars", { description: "List the calendars.", inputSchema: {} }, () =>
  json(
    Object.keys(store.data.calendars).map((url) => ({
      displayName: url.split("/").filter(Boolean).pop() ?? url,
      url,
    })),
  ),
);

server.registerTool(
  "create-todo",
  {
    description: "Creates a task (VTODO) in the calendar specified by its URL.",
    inputSchema: {
      summary: z.string(),
      calendarUrl: z.string(),
      due: isoDate.optional(),
      start: isoDate.optional(),
      description: z.string().optional(),
      location: z.string().optional(),
      status: z.enum(statuses).optional(),
    },
  },
  (args) => {
    const todo: Todo = {
      uid: randomUUID(),
      summary: args.summary,
      status: args.status ?? "NEEDS-ACTION",
      ...(args.due ? { due: new Date(args.due).toISOString() } : {}),
      ...(args.start ? { start: new Date(args.start).toISOString() } : {}),
      ...(args.description !== undefined ? { description: args.description } : {}),
      ...(args.location !== undefined ? { location: args.location } : {}),
    };
    store.update((d) => {
      (d.calendars[args.calendarUrl] ??= []).push(todo);
    });
    return text(todo.uid);
  },
);

server.registerTool(
  "list-todos",
  {
    description: "List tasks (VTODOs) in the calendar; by default only open ones.",
    inputSchema: {
      calendarUrl: z.string(),
      status: z.enum(["OPEN", "ALL", ...statuses]).optional(),
      limit: z.number().int().positive().max(500).optional(),
      offset: z.number().int().nonnegative().optional(),
    },
  },
  (args) => {
    const status = args.status ?? "OPEN";
    const all = (store.data.calendars[args.calendarUrl] ?? []).filter((t) =>
      status === "ALL"
        ? true
        : status === "OPEN"
          ? t.status === "NEEDS-ACTION" || t.status === "IN-PROCESS"
          : t.status === status,
    );
    const limit = args.limit ?? 50;
    const offset = args.offset ?? 0;
    return json({ todos: all.slice(offset, offset + limit), total: all.length, limit, offset });
  },
);

server.registerTool(
  "update-todo",
  {
    description: "Updates an existing task (VTODO). Only provided fields are changed.",
    inputSchema: {
      uid: z.string(),
      calendarUrl: z.string(),
      summary: z.string().optional(),
      due: isoDate.optional(),
      start: isoDate.optional(),
      description: z.string().optional(),
      location: z.string().optional(),
      status: z.enum(statuses).optional(),
    },
  },
  ({ uid, calendarUrl, ...args }) =>
    replace(calendarUrl, uid, {
      ...(args.summary !== undefined ? { summary: args.summary } : {}),
      ...(args.due ? { due: new Date(args.due).toISOString() } : {}),
      ...(args.start ? { start: new Date(args.start).toISOString() } : {}),
      ...(args.description !== undefined ? { description: args.description } : {}),
      ...(args.location !== undefined ? { location: args.location } : {}),
      ...(args.status !== undefined ? { status: args.status } : {}),
    }),
);

server.registerTool(
  "complete-todo",
  {
    description: "Marks a task (VTODO) as done: STATUS:COMPLETED with its completion time.",
    inputSchema: { uid: z.string(), calendarUrl: z.string() },
  },
  ({ uid, calendarUrl }) => replace(calendarUrl, uid, { status: "COMPLETED" }),
);

server.registerTool(
  "delete-todo",
  {
    description: "Deletes a task (VTODO) by its UID.",
    inputSchema: { uid: z.string(), calendarUrl: z.string() },
  },
  ({ uid, calendarUrl }) => {
    const todos = store.data.calendars[calendarUrl] ?? [];
    if (!todos.some((t) => t.uid === uid)) return toolError(`Todo ${uid} not found`);
    store.update((d) => {
      d.calendars[calendarUrl] = todos.filter((t) => t.uid !== uid);
    });
    return text("Todo deleted");
  },
);

await serve(server);
