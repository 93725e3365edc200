import * as chrono from "chrono-node";
import type { Msg } from "../src/bot/i18n.js";
import { shorten } from "../src/bot/message-limits.js";
import { controlCharacterIn, reservedTagPrefix } from "../src/domain/task.js";
import { parseOffsets } from "../src/domain/reminder.js";
import { formatInZone, offsetMinutes } from "../src/time-zone.js";

/** What a typed answer is read against: the moment, and the person's zone and language. */
export interface ReadingContext {
  now: Date;
  /** An IANA zone name: "tomorrow 18:00" is 18:00 there. */
  zone: string;
  /** "en" or "ru": whose words are tried first. */
  language: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: Msg };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(key: string, vars?: Msg["vars"]): Parsed<T> => ({
  ok: false,
  error: vars ? { key, vars } : { key },
});

export function parseTitle(text: string): Parsed<string> {
  const title = text.trim();
  if (!title) return fail("err-title-empty");
  const control = controlCharacterIn(title);
  if (control) return fail("err-title-control", { char: control });
  if (title.length > 200) return fail("err-title-long", { length: title.length });
  return ok(title);
}

export function parseDescription(text: string): Parsed<string> {
  const description = text.replace(/\r\n?/g, "\n").trim();
  if (description.length > 4000) return fail("err-description-long");
  const control = controlCharacterIn(description, "\n\t");
  if (control) return fail("err-description-control", { char: control });
  return ok(description);
}

export function parsePriority(text: string): Parsed<number> {
  const m = /^p?([1-5])$/i.exec(text.trim());
  return m ? ok(Number(m[1])) : fail("err-priority");
}

type Reading = { text: string; date: Date };

/** One language's reading of the first date in `text`, in the person's zone. */
function readIn(
  parser: typeof chrono.en | typeof chrono.ru,
  text: string,
  at: ReadingContext,
): Reading | undefined {
  const read = (offset: number) =>
    parser.parse(text, { instant: at.now, timezone: offset }, { forwardDate: true })[0];
  const offset = offsetMinutes(at.zone, at.now);
  let found = read(offset);
  // Across a daylight-saving change, the wall-clock time is read with that day's offset.
  const then = found ? offsetMinutes(at.zone, found.date()) : offset;
  if (found && then !== offset) found = read(then) ?? found;
  return found ? { text: found.text, date: found.date() } : undefined;
}

/**
 * The date in `text`, English or Russian: the person's language is tried first, and the
 * reading that covers most of what they typed wins (English alone reads only "18:00" of
 * "завтра в 18:00").
 */
function readDate(text: string, at: ReadingContext): Reading | undefined {
  const parsers = at.language === "ru" ? [chrono.ru, chrono.en] : [chrono.en, chrono.ru];
  let best: Reading | undefined;
  for (const parser of parsers) {
    const reading = readIn(parser, text, at);
    if (reading && (!best || reading.text.length > best.text.length)) best = reading;
  }
  return best;
}

/**
 * A deadline in natural language, English or Russian ("tomorrow 18:00", "in 3 days",
 * "2026-12-01 12:00", "завтра в 18:00"), read in the person's zone, in the future; kept
 * as a UTC ISO string.
 */
export function parseDeadline(text: string, at: ReadingContext): Parsed<string> {
  const input = text.trim();
  const date = readDate(input, at)?.date;
  if (!date) return fail("err-date-unreadable", { input: shorten(input, 60) });
  if (date.getTime() <= at.now.getTime()) {
    return fail("err-date-past", { date: formatInZone(date, at.zone, at.language, at.now) });
  }
  return ok(date.toISOString());
}

const tagShape = /^[\p{L}\p{N}_-]{1,50}$/u;

/** Tags as a comma or space list, with or without #. */
export function parseTags(text: string): Parsed<string[]> {
  const tags = [
    ...new Set(
      text
        .split(/[\s,]+/)
        .map((t) => t.replace(/^#/, ""))
        .filter(Boolean),
    ),
  ];
  const bad = tags.find((t) => !tagShape.test(t));
  if (bad) return fail("err-tag-bad", { tag: shorten(bad, 60) });
  const reserved = tags.find((t) => t.toLowerCase().startsWith(reservedTagPrefix));
  if (reserved) return fail("err-tag-reserved", { tag: reserved });
  if (tags.length > 10) return fail("err-tags-many", { count: tags.length });
  return ok(tags);
}

/** Reminders before the deadline: "30m", "1h 10m", "0" (at it), "none". */
export function parseRemind(text: string): Parsed<number[]> {
  const offsets = parseOffsets(text.replace(/^(remind|напомни(?:ть)?)\s+/iu, ""));
  return offsets.ok ? ok(offsets.minutes) : fail("err-remind-bad", { part: shorten(offsets.part, 60) });
}

export interface Draft {
  title?: string;
  description?: string;
  priority?: number;
  deadline?: string | null;
  tags?: string[];
  /** Minutes before the deadline to be reminded ([] none; absent: the configured default). */
  remind?: number[];
}

/** Most of the text is a date (so "call Bob at 5 about the report" stays a description). */
function looksLikeDate(text: string, at: ReadingContext): boolean {
  const found = readDate(text, at);
  return found !== undefined && found.text.length >= text.length * 0.6;
}

/**
 * The quick form: `Title | description | p2 | tomorrow 18:00 | #work #urgent`. The title
 * comes first; each other part is recognised by its shape.
 */
export function parseQuickForm(text: string, at: ReadingContext): Parsed<Draft> {
  const [first, ...rest] = text.split("|").map((p) => p.trim());
  const title = parseTitle(first ?? "");
  if (!title.ok) return title;
  const draft: Draft = { title: title.value };
  for (const part of rest.filter(Boolean)) {
    if (/^(remind|напомни(?:ть)?)\s/iu.test(part)) {
      const remind = parseRemind(part);
      if (!remind.ok) return remind;
      draft.remind = remind.value;
    } else if (/^p?[1-5]$/i.test(part)) {
      draft.priority = Number(part.replace(/^p/i, ""));
    } else if (part.startsWith("#")) {
      const tags = parseTags(part);
      if (!tags.ok) return tags;
      draft.tags = tags.value;
    } else if (draft.deadline === undefined && looksLikeDate(part, at)) {
      const deadline = parseDeadline(part, at);
      if (!deadline.ok) return deadline;
      draft.deadline = deadline.value;
    } else if (draft.description === undefined) {
      const description = parseDescription(part);
      if (!description.ok) return description;
      draft.description = description.value;
    } else {
      return fail("err-quick-unknown", { part: shorten(part, 60) });
    }
  }
  return ok(draft);
}

/** The fields an edit by reply may set. */
export interface FieldEdit {
  title?: string;
  description?: string;
  priority?: number;
  /** null clears it ("deadline: none"). */
  deadline?: string | null;
  tags?: string[];
}

const editKeys: Record<string, keyof FieldEdit> = {
  title: "title",
  название: "title",
  description: "description",
  описание: "description",
  priority: "priority",
  приоритет: "priority",
  deadline: "deadline",
  due: "deadline",
  срок: "deadline",
  tags: "tags",
  теги: "tags",
};

/**
 * An edit by reply: one field a line, `title: …`, `description: …`, `priority: 2` (or
 * `p2`), `deadline: friday 18:00` (`deadline: none` clears it), `#tag #other` (the tags
 * become these), in English or Russian keys; each value checked as /newtask checks it.
 * undefined when the text is no edit at all (no line has such a shape).
 */
export function parseEditReply(text: string, at: ReadingContext): Parsed<FieldEdit> | undefined {
  const edit: FieldEdit = {};
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  let seen = false;
  for (const line of lines) {
    const keyed = /^([\p{L}]+)\s*:\s*(.*)$/su.exec(line);
    const key = keyed ? editKeys[keyed[1]!.toLowerCase()] : undefined;
    const value = keyed?.[2] ?? "";
    if (key) seen = true;
    if (key === "title") {
      const title = parseTitle(value);
      if (!title.ok) return title;
      edit.title = title.value;
    } else if (key === "description") {
      const description = parseDescription(value);
      if (!description.ok) return description;
      edit.description = description.value;
    } else if (key === "priority" || (!key && /^p[1-5]$/i.test(line))) {
      seen = true;
      const priority = parsePriority(key ? value : line);
      if (!priority.ok) return priority;
      edit.priority = priority.value;
    } else if (key === "deadline") {
      if (/^(none|no|нет|без)$/i.test(value.trim())) edit.deadline = null;
      else {
        const deadline = parseDeadline(value, at);
        if (!deadline.ok) return deadline;
        edit.deadline = deadline.value;
      }
    } else if (key === "tags" || (!key && line.startsWith("#"))) {
      seen = true;
      const tags = parseTags(key ? value : line);
      if (!tags.ok) return tags;
      edit.tags = [...(edit.tags ?? []), ...tags.value];
    } else {
      // A line of another shape: among edits, a mistake to name; before any, no edit at all.
      return seen ? fail("err-edit-unknown", { part: shorten(line, 60) }) : undefined;
    }
  }
  return seen ? ok(edit) : undefined;
}
