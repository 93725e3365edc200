import { z } from "zod";
import { canonicalZone } from "../time-zone.js";

/** The longest mute, the same from /mute and from a button. */
export const maxMuteMs = 30 * 86_400_000;

/**
 * The data of every button the bot makes outside the /newtask conversation, built and
 * parsed here. A button's data comes back from any client that cares to send it: each is
 * parsed with its schema, and one that does not parse is refused.
 */
export const buttonData = {
  healthRefresh: "health:refresh",
  mute: (server: string, seconds: number) => `mute:${server}:${seconds}`,
  ack: (alertId: number) => `ack:${alertId}`,
  /** A page of /tasks; `filter` is its words joined by commas ("done,#home"). */
  tasksPage: (page: number, filter = "") => `tasks:page:${page}${filter ? `:${filter}` : ""}`,
  taskRetry: (taskId: string) => `task:retry:${taskId}`,
  /** A change from a button; `delete` asks first, `delete-yes` is the answer. */
  taskChange: (action: TaskButtonAction, taskId: string) => `task:${action}:${taskId}`,
  timeZone: (zone: string) => `tz:${zone}`,
  /** Snooze a reminder: an hour from the press, or until 9:00 tomorrow in the user's zone. */
  snooze: (reminderId: number, until: SnoozeUntil) => `rem:snooze:${reminderId}:${until}`,
};

export type SnoozeUntil = "1h" | "tomorrow";

const int = z
  .string()
  .regex(/^\d{1,9}$/)
  .transform(Number);

/** mute:<server|*>:<seconds>, a known server, at most 30 days. */
export function muteSchema(servers: readonly string[]) {
  return z
    .string()
    .transform((data) => data.split(":"))
    .pipe(
      z.tuple([
        z.literal("mute"),
        z.enum(["*", ...servers] as [string, ...string[]]),
        int.pipe(
          z
            .number()
            .min(1)
            .max(maxMuteMs / 1000),
        ),
      ]),
    )
    .transform(([, server, seconds]) => ({ server, seconds }));
}

/** ack:<alert id>; the handler checks that the alert is there and open. */
export const ackSchema = z
  .string()
  .transform((data) => data.split(":"))
  .pipe(z.tuple([z.literal("ack"), int]))
  .transform(([, id]) => id);

/** tasks:page:<n>; the handler checks it against the pages there are. */
export const tasksPageSchema = z
  .string()
  .max(64)
  .transform((data) => data.split(":"))
  .pipe(
    z.union([
      z.tuple([z.literal("tasks"), z.literal("page"), int]),
      z.tuple([z.literal("tasks"), z.literal("page"), int, z.string()]),
    ]),
  )
  .transform(([, , page, filter]) => ({ page, filter: filter ?? "" }));

/** task:retry:<id>, an id of the shape taskfan makes. */
export const taskRetrySchema = z
  .string()
  .transform((data) => data.split(":"))
  .pipe(z.tuple([z.literal("task"), z.literal("retry"), z.string().regex(/^[0-9a-z]{10}$/)]))
  .transform(([, , id]) => id);

export const taskButtonActions = ["done", "reopen", "edit", "delete", "delete-yes", "keep"] as const;
export type TaskButtonAction = (typeof taskButtonActions)[number];

/** task:<done|reopen|edit|delete|delete-yes|keep>:<id>; the handler checks the task and its state. */
export const taskChangeSchema = z
  .string()
  .transform((data) => data.split(":"))
  .pipe(z.tuple([z.literal("task"), z.enum(taskButtonActions), z.string().regex(/^[0-9a-z]{10}$/)]))
  .transform(([, action, id]) => ({ action, id }));

/** tz:<IANA zone>, a zone Intl knows, as its canonical name. */
export const timeZoneButtonSchema = z
  .string()
  .regex(/^tz:[\w+\-/]{1,60}$/)
  .transform((data) => canonicalZone(data.slice(3)))
  .pipe(z.string());

/** rem:snooze:<reminder id>:<1h|tomorrow>; the handler checks the reminder and its task. */
export const snoozeSchema = z
  .string()
  .max(40)
  .transform((data) => data.split(":"))
  .pipe(z.tuple([z.literal("rem"), z.literal("snooze"), int, z.enum(["1h", "tomorrow"])]))
  .transform(([, , id, until]) => ({ id, until }));
