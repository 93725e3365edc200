/** Telegram's limit for the text of one message, in UTF-16 code units as the API counts them. */
export const maxMessageLength = 4096;

/** A field shortened for a summary or a list: at most `max` characters, "…" where cut. */
export function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** A whole message made to fit, as a last guard: cut at the limit with a note. */
export function fitMessage(text: string): string {
  if (text.length <= maxMessageLength) return text;
  const note = "\n… (shortened)";
  return `${text.slice(0, maxMessageLength - note.length)}${note}`;
}
