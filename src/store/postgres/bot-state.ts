import { toAlert, type AlertRow } from "../rows.js";
import type { StoreQueries } from "../store.js";
import { type Queryable, statementsOn } from "./sql.js";

/** The bot's state: conversations, mutes, users' time zones, the alert messages it sent. */
export function createBotStateStore(q: Queryable, now: () => number): StoreQueries["bot"] {
  const { rows } = statementsOn(q);
  return {
    conversations: {
      async read(key) {
        const [row] = await rows<{ state: string }>("SELECT state FROM conversations WHERE key = $1", [key]);
        return row ? (JSON.parse(row.state) as unknown) : undefined;
      },
      async write(key, state) {
        await q.query(
          `INSERT INTO conversations (key, state, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
          [key, JSON.stringify(state), now()],
        );
      },
      async delete(key) {
        await q.query("DELETE FROM conversations WHERE key = $1", [key]);
      },
    },
    mutes: {
      async mute(server, until) {
        await q.query(
          "INSERT INTO mutes (server, until) VALUES ($1, $2) ON CONFLICT (server) DO UPDATE SET until = excluded.until",
          [server, until],
        );
      },
      async unmute(server) {
        if (server) await q.query("DELETE FROM mutes WHERE server = $1", [server]);
        else await q.query("DELETE FROM mutes");
      },
      async active() {
        return rows<{ server: string; until: number }>(
          "SELECT server, until FROM mutes WHERE until > $1 ORDER BY server",
          [now()],
        );
      },
      async isMuted(server) {
        const found = await rows<{ n: number }>(
          "SELECT count(*)::int AS n FROM mutes WHERE until > $1 AND (server = '*' OR server = $2)",
          [now(), server],
        );
        return found[0]!.n > 0;
      },
    },
    timezones: {
      async get(userId) {
        const [row] = await rows<{ timezone: string | null }>(
          "SELECT timezone FROM user_settings WHERE user_id = $1",
          [userId],
        );
        return row?.timezone ?? undefined;
      },
      async set(userId, zone) {
        await q.query(
          `INSERT INTO user_settings (user_id, timezone, updated_at) VALUES ($1, $2, $3)
           ON CONFLICT (user_id) DO UPDATE SET timezone = excluded.timezone, updated_at = excluded.updated_at`,
          [userId, zone, now()],
        );
      },
    },
    alertMessages: {
      async set(alertId, chatId, messageId) {
        await q.query("UPDATE alerts SET chat_id = $1, message_id = $2 WHERE id = $3", [
          chatId,
          messageId,
          alertId,
        ]);
      },
      async get(alertId) {
        const [row] = await rows<{ chat_id: string | null; message_id: number | null }>(
          "SELECT chat_id, message_id FROM alerts WHERE id = $1",
          [alertId],
        );
        return row?.chat_id && row.message_id
          ? { chatId: row.chat_id, messageId: row.message_id }
          : undefined;
      },
      async openGroup(since, server) {
        const [row] = await rows<{ chat_id: string; message_id: number }>(
          `SELECT chat_id, message_id FROM alerts
           WHERE status = 'open' AND message_id IS NOT NULL AND first_seen >= $1 AND server <> $2
           ORDER BY id DESC LIMIT 1`,
          [since, server],
        );
        return row ? { chatId: row.chat_id, messageId: Number(row.message_id) } : undefined;
      },
      async sharing(chatId, messageId) {
        return (
          await rows<AlertRow>("SELECT * FROM alerts WHERE chat_id = $1 AND message_id = $2 ORDER BY id", [
            chatId,
            messageId,
          ])
        ).map(toAlert);
      },
    },
  };
}
