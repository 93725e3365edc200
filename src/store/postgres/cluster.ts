import type pg from "pg";
import type { ServerHealth } from "../../monitoring/health-monitor.js";
import type { ClusterStore, InstanceRow } from "../store.js";

interface Row {
  id: string;
  host: string;
  pid: number;
  version: string;
  started_at: number;
  heartbeat_at: number;
  singletons: string[];
}

/**
 * The instances table and the shared health ratings, on a pool of their own (a burst of
 * work waiting for the store's pool never delays a heartbeat, which would make this
 * instance look hung to the others).
 */
export function clusterOn(pool: pg.Pool, now: () => number): ClusterStore {
  return {
    async beat(row) {
      await pool.query(
        `INSERT INTO instances (id, host, pid, version, started_at, heartbeat_at, singletons)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (id) DO UPDATE SET host = EXCLUDED.host, pid = EXCLUDED.pid,
           version = EXCLUDED.version, started_at = EXCLUDED.started_at,
           heartbeat_at = EXCLUDED.heartbeat_at, singletons = EXCLUDED.singletons`,
        [row.id, row.host, row.pid, row.version, row.startedAt, now(), row.singletons],
      );
    },
    async removeStale(before) {
      const { rows } = await pool.query<{ id: string }>(
        "DELETE FROM instances WHERE heartbeat_at < $1 RETURNING id",
        [before],
      );
      return rows.map((r) => r.id);
    },
    async endHungSessions(before, self) {
      // Its sessions carry its name (see session.ts): its lock and group sessions, and any
      // of its pool's left idle inside a transaction (holding rows). What it has running
      // ends by itself within the statement limit. This instance's own are never among them.
      const { rows } = await pool.query<{ id: string; ended: number }>(
        `SELECT i.id, count(*) FILTER (WHERE pg_terminate_backend(a.pid))::int AS ended
         FROM instances i JOIN pg_stat_activity a
           ON a.application_name IN (left($3 || i.id || ' locks', 63), left($3 || i.id || ' group', 63))
           OR (a.application_name = left($3 || i.id, 63) AND a.state = 'idle in transaction'
               AND a.state_change < now() - interval '1 second')
         WHERE i.heartbeat_at < $1 AND i.id <> $2 AND a.pid <> pg_backend_pid()
           AND a.datname = current_database()
         GROUP BY i.id`,
        [before, self, "taskfan "],
      );
      return rows.filter((r) => r.ended > 0).map((r) => r.id);
    },
    async leave(id) {
      await pool.query("DELETE FROM instances WHERE id = $1", [id]);
    },
    async instances() {
      const { rows } = await pool.query<Row>("SELECT * FROM instances ORDER BY started_at, id");
      return rows.map((r): InstanceRow => ({
        id: r.id,
        host: r.host,
        pid: r.pid,
        version: r.version,
        startedAt: r.started_at,
        heartbeatAt: r.heartbeat_at,
        singletons: r.singletons,
      }));
    },
    async writeHealth(instance, ratings) {
      if (ratings.length === 0) return;
      await pool.query(
        `INSERT INTO server_health (server, rating, instance, written_at)
         SELECT r->>'server', r, $2, $3 FROM jsonb_array_elements($1::jsonb) AS r
         ON CONFLICT (server) DO UPDATE SET rating = EXCLUDED.rating,
           instance = EXCLUDED.instance, written_at = EXCLUDED.written_at`,
        [JSON.stringify(ratings), instance, now()],
      );
    },
    async readHealth() {
      const { rows } = await pool.query<{ rating: ServerHealth; instance: string; written_at: number }>(
        "SELECT rating, instance, written_at FROM server_health",
      );
      return rows.map((r) => ({ rating: r.rating, instance: r.instance, writtenAt: r.written_at }));
    },
  };
}
