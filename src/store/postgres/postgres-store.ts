import pg from "pg";
import { StoreUnavailableError, maskUrlCredentials } from "../../errors.js";
import { StoreHealth, type StoreFault } from "../store-health.js";
import type { Store, StoreQueries } from "../store.js";
import { wrapMethods } from "../wrap-methods.js";
import { listen } from "./listener.js";
import { clusterOn } from "./cluster.js";
import { advisoryLocks } from "./locks.js";
import { migratePostgres } from "./migrate.js";
import { createAlertRouteStore } from "./alert-routes.js";
import { createAlertStore } from "./alerts.js";
import { createBotStateStore } from "./bot-state.js";
import { createDispatcherStore } from "./dispatchers.js";
import { createReminderStore } from "./reminders.js";
import { createEventStore, transactionEvents } from "./events.js";
import { createOperationStore, transactionOperations } from "./operations.js";
import type { Queryable } from "./sql.js";
import { createTaskStore } from "./tasks.js";
import { sessionConfig, type SessionOptions } from "./session.js";

export interface PostgresStoreOptions extends SessionOptions {
  /** Connections in the pool (default 10). */
  poolSize?: number;
  /** How long the store may stay busy before it counts as unavailable. */
  unavailableAfterMs?: number;
}

/** A statement's and an idle transaction's limit when none is given: the default lease. */
const defaultSessionTimeoutMs = 30_000;

/** bigint columns (times in ms, ids) as numbers: every one of ours fits in 2^53. */
const types = {
  getTypeParser: ((oid: number, format?: string) =>
    oid === pg.types.builtins.INT8
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

/**
 * The store on PostgreSQL: a pool of node-postgres connections, migrated at open under an
 * advisory lock. A transaction is one client from BEGIN to COMMIT; a relaxed one commits
 * with `synchronous_commit = off` (it survives a crash of this process and of PostgreSQL's,
 * and a power cut may take the last few). Connection and server faults become store health
 * states and StoreUnavailableError, as the SQLite store's do.
 */
export async function createPostgresStore(
  url: string,
  now: () => number = Date.now,
  options: PostgresStoreOptions = {},
): Promise<Store> {
  const named = { instance: options.instance, timeoutMs: options.timeoutMs ?? defaultSessionTimeoutMs };
  const session = sessionConfig(url, named);
  const trips = { count: 0 };
  const pool = new pg.Pool({
    ...session,
    Client: countingClient(trips),
    max: options.poolSize ?? 10,
    types,
    // A burst of work queues for the pool; no slot is held past the statement limit, so a
    // wait longer than that means the database does not answer (a store fault, not a hang).
    connectionTimeoutMillis: named.timeoutMs + 5000,
  });
  // A client that loses its server (a restart cuts every session, another instance ends a
  // hung one's): the pool drops an idle one, a query in flight rejects with the error, and
  // the next query connects again. The client's own "error" needs a listener too, or it is
  // an uncaught exception.
  const quiet = (p: pg.Pool) => {
    p.on("error", () => undefined);
    p.on("connect", (client) => void client.on("error", () => undefined));
  };
  quiet(pool);
  // This pool's sessions: what they announce, this process knows already.
  const own = new Set<number>();
  pool.on("connect", (client) => {
    const pid = (client as unknown as { processID?: number }).processID;
    if (pid) own.add(pid);
    client.once("end", () => pid && own.delete(pid));
  });
  const where = maskUrlCredentials(url);
  // At open, a server that does not answer within 10 s is an error, not a wait.
  const opening = new pg.Pool({ connectionString: url, max: 1, connectionTimeoutMillis: 10_000 });
  opening.on("error", () => undefined);
  let migrated: number[];
  try {
    migrated = await migratePostgres(opening);
  } catch (error) {
    await pool.end().catch(() => undefined);
    const fault = pgFault(error);
    throw fault ? new StoreUnavailableError(fault, { cause: error, where }) : error;
  } finally {
    await opening.end().catch(() => undefined);
  }
  const health = new StoreHealth(options.unavailableAfterMs ?? 10_000, now);
  const commits = { full: 0, relaxed: 0 };
  const queries = guarded(queriesOn(pool, now), health);
  /** One try of a transaction on a client of its own. */
  const once = async <T>(
    fn: (tx: StoreQueries) => Promise<T>,
    durability: "full" | "relaxed",
  ): Promise<T> => {
    let client: pg.PoolClient | undefined;
    let broken: unknown;
    try {
      client = await pool.connect();
      // One statement at a time on the client, whatever the transaction runs at once; the
      // ROLLBACK of a failed one, after what it still has under way.
      const turns = inTurn(client);
      await turns.query(`BEGIN; SET LOCAL synchronous_commit = ${durability === "relaxed" ? "off" : "on"}`);
      let value: T;
      try {
        const events = transactionEvents(turns, now);
        value = await fn({
          ...queriesOn(turns, now),
          events,
          operations: transactionOperations(turns, now),
        });
        await events.flush();
        await turns.query("COMMIT");
      } catch (error) {
        await turns.query("ROLLBACK").catch((rollbackFailed: unknown) => (broken = rollbackFailed));
        throw error;
      }
      health.succeeded();
      return value;
    } catch (error) {
      if (retryable(error)) throw new StoreUnavailableError(pgFault(error)!, { cause: error });
      if (pgFault(error)) broken = error;
      throw reported(error, health);
    } finally {
      // A client whose connection failed is closed, not handed out again.
      client?.release(broken instanceof Error ? broken : undefined);
    }
  };
  const locks = advisoryLocks(sessionConfig(url, named, "locks"));
  const group = new pg.Pool({ ...sessionConfig(url, named, "group"), max: 2, types });
  quiet(group);
  const channels = {
    due: new Channel(session, "taskfan_due", own),
    task: new Channel(session, "taskfan_task", own),
  };
  return {
    ...queries,
    // A new task on its own is one statement, and so a synced commit of its own.
    tasks: {
      ...queries.tasks,
      insertWithOperations: (...args) => {
        commits.full += 1;
        return queries.tasks.insertWithOperations(...args);
      },
    },
    description: `PostgreSQL ${where}`,
    commits,
    get roundTrips() {
      return trips.count;
    },
    health,
    async taskView(id) {
      const [task, operations] = await Promise.all([queries.tasks.get(id), queries.operations.forTask(id)]);
      return task ? { task, operations } : undefined;
    },
    async transaction<T>(
      fn: (tx: StoreQueries) => Promise<T>,
      durability: "full" | "relaxed" = "full",
    ): Promise<T> {
      commits[durability] += 1;
      // Two transactions that wait for each other (a deadlock) or a serialization failure:
      // PostgreSQL rolls one back; it runs again, a few times, after a short random pause.
      for (let attempt = 1; ; attempt++) {
        try {
          return await once(fn, durability);
        } catch (error) {
          if (!retryable((error as { cause?: unknown }).cause)) throw error;
          if (attempt >= 5) {
            health.failed(error);
            throw error;
          }
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 10 * attempt));
        }
      }
    },
    async probe() {
      try {
        await pool.query(
          "WITH p AS (INSERT INTO store_probe (data) VALUES (decode(repeat('00', 16384), 'hex')) RETURNING id) DELETE FROM store_probe WHERE id IN (SELECT id FROM p)",
        );
        health.succeeded();
        return true;
      } catch (error) {
        reported(error, health);
        return false;
      }
    },
    async compactCounts() {
      try {
        return Number((await pool.query<{ n: string }>("SELECT compact_counts() AS n")).rows[0]!.n);
      } catch (error) {
        throw reported(error, health);
      }
    },
    onDue: (fn) => channels.due.add(fn),
    onTaskChanged: (fn) => channels.task.add(fn),
    locks,
    cluster: guarded(clusterOn(group, now), health),
    migrated,
    async close() {
      await locks.close();
      await channels.due.close();
      await channels.task.close();
      await group.end();
      await pool.end();
    },
  };
}

/**
 * The store's calls in SQL for PostgreSQL, on `q` (the pool, or one client inside a
 * transaction), one table family per file as in `../sqlite/`: the same rules, statement
 * for statement.
 */
function queriesOn(q: Queryable, now: () => number): StoreQueries {
  return {
    tasks: createTaskStore(q, now),
    operations: createOperationStore(q, now),
    events: createEventStore(q, now),
    alerts: createAlertStore(q, now),
    alertRoutes: createAlertRouteStore(q),
    bot: createBotStateStore(q, now),
    dispatchers: createDispatcherStore(q, now),
    reminders: createReminderStore(q, now),
  };
}

/** Listeners of one channel, on a connection opened with the first of them. */
class Channel {
  private readonly listeners = new Set<(payload: string) => void>();
  private connection: ReturnType<typeof listen> | undefined;

  constructor(
    private readonly session: pg.ClientConfig,
    private readonly name: string,
    private readonly own: ReadonlySet<number>,
  ) {}

  add(fn: (payload: string) => void): () => void {
    this.listeners.add(fn);
    this.connection ??= listen(this.session, this.name, this.own, (payload) => {
      for (const l of this.listeners) l(payload);
    });
    return () => this.listeners.delete(fn);
  }

  close(): Promise<void> {
    return this.connection?.close() ?? Promise.resolve();
  }
}

/** What a node-postgres error says about the database; undefined for anything else (a bug, a constraint). */
export function pgFault(error: unknown): StoreFault | undefined {
  const code = String((error as { code?: unknown } | undefined)?.code ?? "");
  const message = String((error as Error | undefined)?.message ?? "");
  const fault = (kind: StoreFault["kind"], reason: string): StoreFault => ({
    code: code || "PG",
    kind,
    reason,
  });
  if (
    /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EHOSTUNREACH|EPIPE)$/.test(code) ||
    /^(08|57P)/.test(code)
  )
    return fault("io", "the database server does not answer");
  if (/Connection terminated|not queryable|timeout exceeded when trying to connect/i.test(message))
    return { code: "PG_CONNECTION", kind: "io", reason: "the database server does not answer" };
  if (code === "53100") return fault("full", "the database or its disk is full");
  if (code === "53300" || code === "55P03" || code === "40P01" || code === "40001")
    return fault("busy", "the database is busy");
  // Our statement limit: a statement waited past it (for a lock someone else holds).
  if (code === "57014") return fault("busy", "the database is busy (a statement ran past its limit)");
  if (code === "25006") return fault("readonly", "the database is read-only");
  if (code === "XX001" || code === "XX002") return fault("corrupt", "the database file is damaged");
  return undefined;
}

/** The error as the caller sees it, reported to `health`. */
function reported(error: unknown, health: StoreHealth): unknown {
  const fault = pgFault(error);
  const seen = fault ? new StoreUnavailableError(fault, { cause: error }) : error;
  health.failed(seen);
  return seen;
}

/** `queries` with every call's store fault reported and turned into StoreUnavailableError. */
function guarded<T extends object>(queries: T, health: StoreHealth): T {
  return wrapMethods(queries, (method) => async (...args) => {
    try {
      return await method(...args);
    } catch (error) {
      throw reported(error, health);
    }
  }) as T;
}

/** A deadlock or a serialization failure: the transaction may simply run again. */
function retryable(error: unknown): boolean {
  const code = (error as { code?: unknown } | undefined)?.code;
  return code === "40P01" || code === "40001";
}

/**
 * `client` with its statements sent one after another: several calls of one transaction at
 * once (a group commit's outcomes) queue here, not inside node-postgres, which no longer
 * takes a query while another runs.
 */
function inTurn(client: pg.PoolClient): pg.PoolClient {
  let last: Promise<unknown> = Promise.resolve();
  const query = (...args: unknown[]) => {
    const run = last.then(() => (client.query as (...a: unknown[]) => Promise<unknown>)(...args));
    last = run.catch(() => undefined);
    return run;
  };
  return new Proxy(client, {
    get: (target, name) => (name === "query" ? query : Reflect.get(target, name)),
  });
}

/**
 * A client that counts the statements it sends: each `query` is one round trip to the
 * server (a text of several statements, or one with parameters, goes in one flight).
 */
function countingClient(trips: { count: number }): typeof pg.Client {
  return class CountingClient extends pg.Client {
    override query(...args: unknown[]): never {
      trips.count += 1;
      return (super.query as (...a: unknown[]) => never)(...args);
    }
  } as typeof pg.Client;
}
