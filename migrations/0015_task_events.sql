-- Task events for alert routes: a task done, reopened or deleted is a row of the alert
-- outbox (born closed and delivered for the alert chat, which shows no task events), so a
-- route that asks for them gets each once, with the routes' own retries and signatures.
-- SQLite cannot change a CHECK in place: the alerts table is rebuilt with the new kinds,
-- its rows and ids kept. alert_deliveries refers to it: its rows are set aside meanwhile.

CREATE TABLE alerts_next (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL
    CHECK (kind IN ('breaker_open', 'degraded', 'error', 'crash_loop', 'recovered', 'rolled_back',
      'task_done', 'task_reopened', 'task_deleted')),
  server TEXT NOT NULL DEFAULT '',
  task_id TEXT,
  -- open while the condition lasts; notices and task events are born closed.
  status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
  first_seen INTEGER NOT NULL,
  last_seen INTEGER NOT NULL,
  count INTEGER NOT NULL DEFAULT 1,
  details TEXT NOT NULL DEFAULT '{}',
  closed_at INTEGER,
  -- Delivery: the count last delivered, so a repeat can be folded into the sent message.
  delivered_at INTEGER,
  delivered_count INTEGER NOT NULL DEFAULT 0,
  claim_owner TEXT,
  claim_expires_at INTEGER,
  chat_id TEXT,
  message_id INTEGER,
  acked_by TEXT,
  acked_by_id INTEGER,
  acked_at INTEGER
) STRICT;

INSERT INTO alerts_next (id, kind, server, task_id, status, first_seen, last_seen, count, details,
  closed_at, delivered_at, delivered_count, claim_owner, claim_expires_at, chat_id, message_id,
  acked_by, acked_by_id, acked_at)
SELECT id, kind, server, task_id, status, first_seen, last_seen, count, details,
  closed_at, delivered_at, delivered_count, claim_owner, claim_expires_at, chat_id, message_id,
  acked_by, acked_by_id, acked_at
FROM alerts;

CREATE TEMP TABLE alert_deliveries_kept AS SELECT * FROM alert_deliveries;
DELETE FROM alert_deliveries;
DROP TABLE alerts;
ALTER TABLE alerts_next RENAME TO alerts;
INSERT INTO alert_deliveries SELECT * FROM alert_deliveries_kept;
DROP TABLE alert_deliveries_kept;

CREATE UNIQUE INDEX alerts_one_open ON alerts (kind, server) WHERE status = 'open' AND task_id IS NULL;
CREATE INDEX alerts_undelivered ON alerts (delivered_count, count);
