import type pg from "pg";

/** What every connection of one taskfan process to PostgreSQL carries. */
export interface SessionOptions {
  /**
   * This instance's name, as `application_name` ("taskfan <instance>"): another instance
   * that finds this one hung ends its sessions by it.
   */
  instance?: string | undefined;
  /**
   * The longest a statement may run, and a transaction sit idle, before PostgreSQL ends it:
   * a query blocked by an outside lock, or a transaction left open by a frozen process,
   * holds its pool slot and its rows no longer than this (the lease time).
   */
  timeoutMs?: number | undefined;
}

/** PostgreSQL keeps at most this many bytes of an application_name. */
const applicationNameBytes = 63;

/**
 * What a session is for: the pool's work, the singleton locks, or the group's own rows
 * (heartbeats, shared health), kept apart so a burst of work never delays a heartbeat.
 */
export type SessionRole = "pool" | "locks" | "group";

/** The application_name of an instance's sessions of one role, as PostgreSQL stores it. */
export function applicationName(instance: string, role: SessionRole = "pool"): string {
  let name = `taskfan ${instance}${role === "pool" ? "" : ` ${role}`}`;
  while (Buffer.byteLength(name) > applicationNameBytes) name = name.slice(0, -1);
  return name;
}

/**
 * A connection's settings: the instance's name, the statement and idle-transaction limits,
 * synced commits, no JIT, and TCP keepalives on both ends, so the server ends the session
 * of a peer the network cut off within about 25 s (10 s idle, then 3 probes 5 s apart),
 * not hours.
 */
export function sessionConfig(
  url: string,
  options: SessionOptions,
  role: SessionRole = "pool",
): pg.ClientConfig {
  const timeout = options.timeoutMs === undefined ? undefined : Math.max(1, Math.round(options.timeoutMs));
  const settings = [
    "tcp_keepalives_idle=10",
    "tcp_keepalives_interval=5",
    "tcp_keepalives_count=3",
    // A statement outside a transaction (a new task) commits synced, whatever the server's default.
    "synchronous_commit=on",
    // Short statements only: compiling one (its plan's cost estimate past jit_above_cost)
    // takes longer than running it.
    "jit=off",
    ...(timeout ? [`idle_in_transaction_session_timeout=${timeout}`, `statement_timeout=${timeout}`] : []),
  ];
  return {
    connectionString: url,
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    options: settings.map((s) => `-c ${s}`).join(" "),
    ...(options.instance ? { application_name: applicationName(options.instance, role) } : {}),
  };
}
