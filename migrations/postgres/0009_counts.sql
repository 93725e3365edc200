-- Counts kept as rows change, so /stats, /health and the metrics read a handful of rows
-- instead of counting operations, tasks and events: the same cost at 10 000 and at
-- 10 000 000 operations. Several instances write at once, so a single row per key would
-- be a lock every writer waits for (and a deadlock when two take them in different
-- orders). Instead each statement that changes rows appends its net change per key
-- (statement-level triggers over the transition tables): append-only, no lock. A reader
-- sums the rows of a key; compact_counts(), run by maintenance (one instance of a group), folds them
-- into one row per key again. Seeded from the rows already stored, with writers held off
-- until the triggers are in place (an instance of the release before may be running).

LOCK TABLE operations, tasks, events IN SHARE MODE;

CREATE TABLE operation_counts (server text NOT NULL, status text NOT NULL, n bigint NOT NULL);
CREATE TABLE task_counts (status text NOT NULL, n bigint NOT NULL);
CREATE TABLE event_counts (type text NOT NULL, n bigint NOT NULL);
-- Operations finished per minute (finished_at / 60 000), for the activity of /stats.
CREATE TABLE finished_counts (minute bigint NOT NULL, n bigint NOT NULL);
CREATE INDEX finished_counts_by_minute ON finished_counts (minute);

INSERT INTO operation_counts (server, status, n)
SELECT server, status, count(*) FROM operations GROUP BY server, status;
INSERT INTO task_counts (status, n) SELECT status, count(*) FROM tasks GROUP BY status;
INSERT INTO event_counts (type, n) SELECT type, count(*) FROM events GROUP BY type;
INSERT INTO finished_counts (minute, n)
SELECT finished_at / 60000, count(*) FROM operations WHERE finished_at IS NOT NULL GROUP BY 1;

-- The latency percentiles read a server's last 1 000 durations: from the index alone
-- (an index-only scan, once autovacuum has marked the pages all-visible).
DROP INDEX operations_done;
CREATE INDEX operations_done ON operations (server, finished_at) INCLUDE (duration_ms) WHERE status = 'done';

CREATE FUNCTION operation_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO operation_counts (server, status, n)
    SELECT server, status, count(*) FROM new_rows GROUP BY server, status;
    INSERT INTO finished_counts (minute, n)
    SELECT finished_at / 60000, count(*) FROM new_rows WHERE finished_at IS NOT NULL GROUP BY 1;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO operation_counts (server, status, n)
    SELECT server, status, sum(d) FROM (
      SELECT server, status, 1 AS d FROM new_rows
      UNION ALL SELECT server, status, -1 FROM old_rows
    ) changed GROUP BY server, status HAVING sum(d) <> 0;
    INSERT INTO finished_counts (minute, n)
    SELECT minute, sum(d) FROM (
      SELECT finished_at / 60000 AS minute, 1 AS d FROM new_rows WHERE finished_at IS NOT NULL
      UNION ALL SELECT finished_at / 60000, -1 FROM old_rows WHERE finished_at IS NOT NULL
    ) changed GROUP BY minute HAVING sum(d) <> 0;
  ELSE
    INSERT INTO operation_counts (server, status, n)
    SELECT server, status, -count(*) FROM old_rows GROUP BY server, status;
    INSERT INTO finished_counts (minute, n)
    SELECT finished_at / 60000, -count(*) FROM old_rows WHERE finished_at IS NOT NULL GROUP BY 1;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION task_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO task_counts (status, n) SELECT status, count(*) FROM new_rows GROUP BY status;
  ELSIF TG_OP = 'UPDATE' THEN
    INSERT INTO task_counts (status, n)
    SELECT status, sum(d) FROM (
      SELECT status, 1 AS d FROM new_rows UNION ALL SELECT status, -1 FROM old_rows
    ) changed GROUP BY status HAVING sum(d) <> 0;
  ELSE
    INSERT INTO task_counts (status, n) SELECT status, -count(*) FROM old_rows GROUP BY status;
  END IF;
  RETURN NULL;
END $$;

CREATE FUNCTION event_counts_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO event_counts (type, n) SELECT type, count(*) FROM new_rows GROUP BY type;
  ELSE
    INSERT INTO event_counts (type, n) SELECT type, -count(*) FROM old_rows GROUP BY type;
  END IF;
  RETURN NULL;
END $$;

-- A trigger with transition tables takes no column list: every UPDATE statement runs it,
-- and one that moves no row between keys appends nothing.
CREATE TRIGGER operation_counts_insert AFTER INSERT ON operations
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION operation_counts_change();
CREATE TRIGGER operation_counts_update AFTER UPDATE ON operations
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION operation_counts_change();
CREATE TRIGGER operation_counts_delete AFTER DELETE ON operations
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION operation_counts_change();

CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION task_counts_change();
CREATE TRIGGER task_counts_update AFTER UPDATE ON tasks
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION task_counts_change();
CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION task_counts_change();

CREATE TRIGGER event_counts_insert AFTER INSERT ON events
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION event_counts_change();
CREATE TRIGGER event_counts_delete AFTER DELETE ON events
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION event_counts_change();

-- Folds one count table's rows into one per key (dropping keys that sum to 0): the rows
-- it sees are deleted and their sums written back, while rows appended meanwhile stay for
-- the next run, so a reader's sum never changes. Returns the rows removed.
CREATE FUNCTION fold_counts(counts regclass, keys text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  before bigint;
  after bigint;
BEGIN
  EXECUTE format(
    'WITH gone AS (DELETE FROM %1$s RETURNING %2$s, n),
       kept AS (
         INSERT INTO %1$s (%2$s, n)
         SELECT %2$s, sum(n) FROM gone GROUP BY %2$s HAVING sum(n) <> 0 RETURNING 1)
     SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM kept)',
    counts, keys)
  INTO before, after;
  RETURN before - after;
END $$;

-- Every count table folded, in one transaction; one instance at a time (an advisory lock,
-- "th"), another returns at once. Returns the rows removed.
CREATE FUNCTION compact_counts() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  IF NOT pg_try_advisory_xact_lock(29800, 0) THEN
    RETURN 0;
  END IF;
  RETURN fold_counts('operation_counts', 'server, status') + fold_counts('task_counts', 'status')
    + fold_counts('event_counts', 'type') + fold_counts('finished_counts', 'minute');
END $$;
