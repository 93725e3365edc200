-- Tasks, the operations that deliver each task to one server, and an event log.

CREATE TABLE tasks (
  id TEXT PRIMARY KEY,
  title TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  priority INTEGER NOT NULL CHECK (priority BETWEEN 1 AND 5),
  deadline TEXT,
  tags TEXT NOT NULL DEFAULT '[]',
  status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'running', 'done', 'partial', 'failed', 'rolled_back')),
  status_reason TEXT,
  idempotency_key TEXT UNIQUE,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  settled_at INTEGER
) STRICT;

CREATE INDEX tasks_by_created ON tasks (created_at DESC);
CREATE INDEX tasks_by_status ON tasks (status);

CREATE TABLE operations (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  server TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT 'create' CHECK (kind IN ('create', 'compensate')),
  status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped')),
  -- 0: runs at once; 1: runs after the task's phase-0 operations (irreversible effects).
  phase INTEGER NOT NULL DEFAULT 0,
  priority INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  idempotency_key TEXT NOT NULL UNIQUE,
  remote_id TEXT,
  last_error TEXT,
  retryable INTEGER NOT NULL DEFAULT 0,
  -- Why a pending operation is parked (its server is down or its breaker open).
  waiting TEXT,
  -- 1 when an earlier attempt may have reached the server: look before creating again.
  recheck INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_expires_at INTEGER,
  duration_ms INTEGER,
  total_ms INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX operations_due ON operations (server, status, next_attempt_at);
CREATE INDEX operations_by_task ON operations (task_id);
CREATE INDEX operations_by_lease ON operations (status, lease_expires_at);

CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id TEXT,
  operation_id INTEGER,
  type TEXT NOT NULL,
  data TEXT NOT NULL DEFAULT '{}',
  at INTEGER NOT NULL
) STRICT;

CREATE INDEX events_by_task ON events (task_id, id);
