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

/** The instances table and the shared health ratings, on the store's pool. */
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
