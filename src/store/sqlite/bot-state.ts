import type { Alert } from "../../domain/alert.js";
import { toAlert, type AlertRow } from "../rows.js";
import type { Db } from "./open-database.js";

/** Conversation state, mutes and users' settings: the little the bot keeps between restarts. */
export function createBotStateStore(db: Db, now: () => number) {
  const read = db.prepare<[string], { state: string }>("SELECT state FROM conversations WHERE key = ?");
  const write = db.prepare<[string, string, number]>(
    `INSERT INTO conversations (key, state, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`,
  );
  const remove = db.prepare<[string]>("DELETE FROM conversations WHERE key = ?");
  const mute = db.prepare<[string, number]>(
    "INSERT INTO mutes (server, until) VALUES (?, ?) ON CONFLICT (server) DO UPDATE SET until = excluded.until",
  );
  const unmute = db.prepare<[string]>("DELETE FROM mutes WHERE server = ?");
  const unmuteAll = db.prepare("DELETE FROM mutes");
  const muted = db.prepare<[number], { server: string; until: number }>(
    "SELECT server, until FROM mutes WHERE until > ? ORDER BY server",
  );
  const setMessage = db.prepare<[string, number, number]>(
    "UPDATE alerts SET chat_id = ?, message_id = ? WHERE id = ?",
  );
  const getMessage = db.prepare<[number], { chat_id: string | null; message_id: number | null }>(
    "SELECT chat_id, message_id FROM alerts WHERE id = ?",
  );
  const openGroup = db.prepare<[number, string], { chat_id: string; message_id: number }>(
    `SELECT chat_id, message_id FROM alerts
     WHERE status = 'open' AND message_id IS NOT NULL AND first_seen >= ? AND server <> ?
     ORDER BY id DESC LIMIT 1`,
  );
  const sharing = db.prepare<[string, number], AlertRow>(
    "SELECT * FROM alerts WHERE chat_id = ? AND message_id = ? ORDER BY id",
  );
  const getZone = db.prepare<[number], { timezone: string | null }>(
    "SELECT timezone FROM user_settings WHERE user_id = ?",
  );
  const setZone = db.prepare<[number, string, number]>(
    `INSERT INTO user_settings (user_id, timezone, updated_at) VALUES (?, ?, ?)
     ON CONFLICT (user_id) DO UPDATE SET timezone = excluded.timezone, updated_at = excluded.updated_at`,
  );
  return {
    conversations: {
      read(key: string): unknown {
        const row = read.get(key);
        return row ? (JSON.parse(row.state) as unknown) : undefined;
      },
      write(key: string, state: unknown): void {
        write.run(key, JSON.stringify(state), now());
      },
      delete(key: string): void {
        remove.run(key);
      },
    },
    mutes: {
      /** Mutes alerts of a server ('*' for all) until a time. */
      mute(server: string, until: number): void {
        mute.run(server, until);
      },
      unmute(server?: string): void {
        if (server) unmute.run(server);
        else unmuteAll.run();
      },
      active(): Array<{ server: string; until: number }> {
        return muted.all(now());
      },
      isMuted(server: string): boolean {
        return muted.all(now()).some((m) => m.server === "*" || m.server === server);
      },
    },
    timezones: {
      /** The zone a user chose, if any. */
      get(userId: number): string | undefined {
        return getZone.get(userId)?.timezone ?? undefined;
      },
      set(userId: number, zone: string): void {
        setZone.run(userId, zone, now());
      },
    },
    alertMessages: {
      set(alertId: number, chatId: string, messageId: number): void {
        setMessage.run(chatId, messageId, alertId);
      },
      get(alertId: number): { chatId: string; messageId: number } | undefined {
        const row = getMessage.get(alertId);
        return row?.chat_id && row.message_id
          ? { chatId: row.chat_id, messageId: row.message_id }
          : undefined;
      },
      openGroup(since: number, server: string): { chatId: string; messageId: number } | undefined {
        const row = openGroup.get(since, server);
        return row ? { chatId: row.chat_id, messageId: row.message_id } : undefined;
      },
      sharing(chatId: string, messageId: number): Alert[] {
        return sharing.all(chatId, messageId).map(toAlert);
      },
    },
  };
}
