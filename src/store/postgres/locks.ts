import pg from "pg";
import type { SingletonLocks } from "../store.js";

/** The first key of every taskfan advisory lock ("tf"), so other users of the database keep theirs. */
const lockSpace = 0x7466;

/** A stable 31-bit number for a lock's name (FNV-1a). */
export function lockKey(name: string): number {
  let h = 0x811c9dc5;
  for (const c of Buffer.from(name, "utf8")) {
    h ^= c;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h & 0x7fffffff;
}

/**
 * Session advisory locks on a connection of their own (never a pooled one: a lock belongs
 * to the session that took it). When that connection ends (the database restarted, the
 * network dropped, the process died) every lock it held is free for another instance at
 * once, and this side hears it through `onLost`: it must stop acting as the holder. The
 * next `tryAcquire` connects again.
 */
export function advisoryLocks(config: pg.ClientConfig): SingletonLocks {
  let client: pg.Client | undefined;
  let connecting: Promise<pg.Client> | undefined;
  const held = new Set<string>();
  const lostListeners = new Set<(names: string[]) => void>();
  let closed = false;

  const lose = (c: pg.Client) => {
    if (client !== c) return;
    client = undefined;
    const names = [...held];
    held.clear();
    for (const l of lostListeners) l(names);
  };
  const session = (): Promise<pg.Client> => {
    if (client) return Promise.resolve(client);
    connecting ??= (async () => {
      // A query that hangs (a network that drops packets) fails after 10 s, and the
      // session is ended: its locks are then in doubt, so they count as lost.
      const c = new pg.Client({ ...config, query_timeout: 10_000 });
      c.on("error", () => lose(c));
      c.once("end", () => lose(c));
      try {
        await c.connect();
      } catch (error) {
        await c.end().catch(() => undefined);
        throw error;
      }
      client = c;
      return c;
    })().finally(() => (connecting = undefined));
    return connecting;
  };

  return {
    async tryAcquire(name) {
      if (closed) return false;
      if (held.has(name)) return true;
      const c = await session();
      let result: pg.QueryResult<{ ok: boolean }>;
      try {
        result = await c.query<{ ok: boolean }>("SELECT pg_try_advisory_lock($1, $2) AS ok", [
          lockSpace,
          lockKey(name),
        ]);
      } catch (error) {
        lose(c);
        await c.end().catch(() => undefined);
        throw error;
      }
      if (result.rows[0]?.ok) held.add(name);
      return held.has(name);
    },
    async release(name) {
      if (!held.delete(name) || !client) return;
      await client
        .query("SELECT pg_advisory_unlock($1, $2)", [lockSpace, lockKey(name)])
        .catch(() => undefined);
    },
    held: () => [...held],
    onLost(listener) {
      lostListeners.add(listener);
      return () => lostListeners.delete(listener);
    },
    async close() {
      closed = true;
      held.clear();
      const c = client;
      client = undefined;
      await c?.end().catch(() => undefined);
    },
  };
}
