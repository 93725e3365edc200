import * as chrono from "chrono-node";

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const fail = <T>(error: string): Parsed<T> => ({ ok: false, error });

export const priorityLabels: Record<number, string> = {
  1: "1 · critical",
  2: "2 · high",
  3: "3 · normal",
  4: "4 · low",
  5: "5 · someday",
};

export function parseTitle(text: string): Parsed<string> {
  const title = text.trim();
  if (!title) return fail("The title may not be empty.");
  if (title.length > 200) return fail(`The title has ${title.length} characters; 200 at most, please.`);
  return ok(title);
}

export function parseDescription(text: string): Parsed<string> {
  const description = text.trim();
  if (description.length > 4000) return fail("The description has more than 4000 characters.");
  return ok(description);
}

export function parsePriority(text: string): Parsed<number> {
  const m = /^p?([1-5])$/i.exec(text.trim());
  return m ? ok(Number(m[1])) : fail("The priority is a number from 1 (critical) to 5 (someday).");
}

/**
 * A deadline in natural language, English or Russian ("tomorrow 18:00", "in 3 days",
 * "2026-12-01 12:00", "завтра в 18:00"), in the future.
 */
export function parseDeadline(text: string, now: Date): Parsed<string> {
  const input = text.trim();
  const date =
    chrono.parseDate(input, now, { forwardDate: true }) ??
    chrono.ru.parseDate(input, now, { forwardDate: true });
  if (!date) {
    return fail(
      `I could not read "${input}" as a date. Try "tomorrow 18:00", "in 3 days" or "2026-12-01 12:00".`,
    );
  }
  if (date.getTime() <= now.getTime())
    return fail(`${date.toISOString()} is in the past; the deadline must be later.`);
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
  if (bad) return fail(`"${bad}" is not a tag: letters, digits, - and _ only, 50 at most.`);
  if (tags.length > 10) return fail(`That is ${tags.length} tags; 10 at most.`);
  return ok(tags);
}

export interface Draft {
  title?: string;
  description?: string;
  priority?: number;
  deadline?: string | null;
  tags?: string[];
}

/** Most of the text is a date (so "call Bob at 5 about the report" stays a description). */
function looksLikeDate(text: string, now: Date): boolean {
  const found =
    chrono.parse(text, now, { forwardDate: true })[0] ?? chrono.ru.parse(text, now, { forwardDate: true })[0];
  return found !== undefined && found.text.length >= text.length * 0.6;
}

/**
 * The quick form: `Title | description | p2 | tomorrow 18:00 | #work #urgent`. The title
 * comes first; each other part is recognised by its shape.
 */
export function parseQuickForm(text: string, now: Date): Parsed<Draft> {
  const [first, ...rest] = text.split("|").map((p) => p.trim());
  const title = parseTitle(first ?? "");
  if (!title.ok) return title;
  const draft: Draft = { title: title.value };
  for (const part of rest.filter(Boolean)) {
    if (/^p?[1-5]$/i.test(part)) {
      draft.priority = Number(part.replace(/^p/i, ""));
    } else if (part.startsWith("#")) {
      const tags = parseTags(part);
      if (!tags.ok) return tags;
      draft.tags = tags.value;
    } else if (draft.deadline === undefined && looksLikeDate(part, now)) {
      const deadline = parseDeadline(part, now);
      if (!deadline.ok) return deadline;
      draft.deadline = deadline.value;
    } else if (draft.description === undefined) {
      const description = parseDescription(part);
      if (!description.ok) return description;
      draft.description = description.value;
    } else {
      return fail(`I do not know what "${part}" is. Use: Title | description | p2 | tomorrow 18:00 | #tag`);
    }
  }
  return ok(draft);
}
