-- The alert outbox: one row per condition (a repeat updates it), delivered by the bot.

CREATE TABLE alerts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL
    CHECK (kind IN ('breaker_open', 'degraded', 'error', 'crash_loop', 'recovered', 'rolled_back')),
  server TEXT NOT NULL DEFAULT '',
  task_id TEXT,
  -- open while the condition lasts; recovered and rolled_back rows are born closed.
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
  claim_expires_at INTEGER
) STRICT;

CREATE UNIQUE INDEX alerts_one_open ON alerts (kind, server) WHERE status = 'open' AND task_id IS NULL;
CREATE INDEX alerts_undelivered ON alerts (delivered_count, count);
CREATE INDEX events_by_type ON events (type, at);

-- Why a task was rolled back; set once, when a required server fails for good.
ALTER TABLE tasks ADD COLUMN rollback_reason TEXT;
