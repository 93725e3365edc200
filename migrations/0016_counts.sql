-- Counts kept as rows change, so /stats, /health and the metrics read a handful of rows
-- instead of counting operations, tasks and events: the same cost at 10 000 and at
-- 10 000 000 operations. One row per key, kept by triggers in the writing transaction
-- (SQLite has one writer at a time, so a hot row costs nothing here). Seeded from the
-- rows already stored.

CREATE TABLE operation_counts (
  server TEXT NOT NULL,
  status TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY (server, status)
) STRICT, WITHOUT ROWID;

CREATE TABLE task_counts (
  status TEXT PRIMARY KEY,
  n INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE event_counts (
  type TEXT PRIMARY KEY,
  n INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Operations finished per minute (finished_at / 60 000), for the activity of /stats.
CREATE TABLE finished_counts (
  minute INTEGER PRIMARY KEY,
  n INTEGER NOT NULL
) STRICT;

INSERT INTO operation_counts (server, status, n)
SELECT server, status, count(*) FROM operations GROUP BY server, status;
INSERT INTO task_counts (status, n) SELECT status, count(*) FROM tasks GROUP BY status;
INSERT INTO event_counts (type, n) SELECT type, count(*) FROM events GROUP BY type;
INSERT INTO finished_counts (minute, n)
SELECT finished_at / 60000, count(*) FROM operations WHERE finished_at IS NOT NULL GROUP BY 1;

CREATE TRIGGER operation_counts_insert AFTER INSERT ON operations BEGIN
  INSERT INTO operation_counts (server, status, n) VALUES (new.server, new.status, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER operation_counts_update AFTER UPDATE OF server, status ON operations
  WHEN old.server IS NOT new.server OR old.status IS NOT new.status BEGIN
  UPDATE operation_counts SET n = n - 1 WHERE server = old.server AND status = old.status;
  INSERT INTO operation_counts (server, status, n) VALUES (new.server, new.status, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER operation_counts_delete AFTER DELETE ON operations BEGIN
  UPDATE operation_counts SET n = n - 1 WHERE server = old.server AND status = old.status;
END;

CREATE TRIGGER finished_counts_insert AFTER INSERT ON operations
  WHEN new.finished_at IS NOT NULL BEGIN
  INSERT INTO finished_counts (minute, n) VALUES (new.finished_at / 60000, 1)
    ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER finished_counts_update AFTER UPDATE OF finished_at ON operations
  WHEN old.finished_at IS NOT new.finished_at BEGIN
  UPDATE finished_counts SET n = n - 1 WHERE minute = old.finished_at / 60000;
  INSERT INTO finished_counts (minute, n) SELECT new.finished_at / 60000, 1 WHERE new.finished_at IS NOT NULL
    ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER finished_counts_delete AFTER DELETE ON operations
  WHEN old.finished_at IS NOT NULL BEGIN
  UPDATE finished_counts SET n = n - 1 WHERE minute = old.finished_at / 60000;
END;

CREATE TRIGGER task_counts_insert AFTER INSERT ON tasks BEGIN
  INSERT INTO task_counts (status, n) VALUES (new.status, 1) ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER task_counts_update AFTER UPDATE OF status ON tasks
  WHEN old.status IS NOT new.status BEGIN
  UPDATE task_counts SET n = n - 1 WHERE status = old.status;
  INSERT INTO task_counts (status, n) VALUES (new.status, 1) ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER task_counts_delete AFTER DELETE ON tasks BEGIN
  UPDATE task_counts SET n = n - 1 WHERE status = old.status;
END;

CREATE TRIGGER event_counts_insert AFTER INSERT ON events BEGIN
  INSERT INTO event_counts (type, n) VALUES (new.type, 1) ON CONFLICT DO UPDATE SET n = n + 1;
END;

CREATE TRIGGER event_counts_delete AFTER DELETE ON events BEGIN
  UPDATE event_counts SET n = n - 1 WHERE type = old.type;
END;

-- The latency percentiles read a server's last 1 000 durations: from the index alone.
DROP INDEX operations_done;
CREATE INDEX operations_done ON operations (server, finished_at, duration_ms) WHERE status = 'done';
