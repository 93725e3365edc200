type Method = (...args: unknown[]) => unknown;

/**
 * A copy of a table object (nested objects included) with each method replaced by
 * `wrap(method)`: how each engine puts its own rule around every call.
 */
export function wrapMethods(table: object, wrap: (method: Method) => Method): unknown {
  return Object.fromEntries(
    Object.entries(table).map(([name, value]) => [
      name,
      typeof value === "function" ? wrap(value as Method) : wrapMethods(value as object, wrap),
    ]),
  );
}
