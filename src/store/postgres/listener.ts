import pg from "pg";

/**
 * A dedicated connection that LISTENs on `channel` and hands each notification's payload
 * to `heard`, except those sent by the backends in `own` (this process's pool: it knows
 * its own work already). node-postgres does not reconnect a client by itself: when the
 * connection ends, this connects again after 1 s, doubling up to 30 s, and says `heard("")`
 * once listening again (whatever was announced meanwhile was missed: look at everything).
 */
export function listen(
  session: pg.ClientConfig,
  channel: string,
  own: ReadonlySet<number>,
  heard: (payload: string) => void,
): { close(): Promise<void> } {
  let client: pg.Client | undefined;
  let timer: NodeJS.Timeout | undefined;
  let delay = 1000;
  let closed = false;
  let first = true;
  const again = () => {
    client = undefined;
    if (closed || timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void connect();
    }, delay);
    timer.unref();
    delay = Math.min(delay * 2, 30_000);
  };
  const connect = async () => {
    const c = new pg.Client(session);
    c.on("notification", (n) => {
      if (!own.has(n.processId)) heard(n.payload ?? "");
    });
    c.on("error", () => undefined);
    c.once("end", () => {
      if (client === c) again();
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${channel}`);
      if (closed) {
        await c.end();
        return;
      }
      client = c;
      delay = 1000;
      if (!first) heard("");
      first = false;
    } catch {
      await c.end().catch(() => undefined);
      again();
    }
  };
  void connect();
  return {
    async close() {
      closed = true;
      clearTimeout(timer);
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
