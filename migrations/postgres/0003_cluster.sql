-- Several instances on one database.

-- Each running instance's row, renewed by its heartbeat; a row whose heartbeat is stale
-- (its process died without a clean stop) is removed by the others.
CREATE TABLE instances (
  id text PRIMARY KEY,
  host text NOT NULL,
  pid integer NOT NULL,
  version text NOT NULL,
  started_at bigint NOT NULL,
  heartbeat_at bigint NOT NULL,
  -- The singletons it holds (the Telegram poller, alert delivery, ...), as of its last beat.
  singletons text[] NOT NULL DEFAULT '{}'
);

-- The health monitor's latest rating of each server, written by the instance that holds it
-- and read by every instance's /health, /stats, /api/health, /metrics and status page.
CREATE TABLE server_health (
  server text PRIMARY KEY,
  rating jsonb NOT NULL,
  instance text NOT NULL,
  written_at bigint NOT NULL
);

-- A task's operations moved (claimed, done, failed, parked): announced on `taskfan_task`
-- with the task id, once per task and transaction, so the instance following the task in a
-- chat edits its progress message whichever instance did the work.
CREATE FUNCTION taskfan_notify_task() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('taskfan_task', NEW.task_id);
  RETURN NULL;
END
$$;

CREATE TRIGGER operations_moved
  AFTER UPDATE OF status, waiting ON operations
  FOR EACH ROW EXECUTE FUNCTION taskfan_notify_task();
