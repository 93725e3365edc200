/**
 * Text for a terminal: control characters (C0 but newline and tab, DEL, C1) and the
 * bidirectional overrides are shown as escapes, so a task's text cannot move the cursor,
 * retitle the window or erase lines when the CLI or the console chat prints it.
 */
export function terminalSafe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16)}`;
  });
}
