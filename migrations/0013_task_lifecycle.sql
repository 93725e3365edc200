-- The task lifecycle: a task's own state (open, done, deleted) and version, kept apart from
-- its fan-out status; the chat and user that own it; the changes made to it; and operations
-- that carry a change (update, complete, reopen, delete) to each server that holds the task.

ALTER TABLE tasks ADD COLUMN state TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'deleted'));
ALTER TABLE tasks ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN completed_at INTEGER;
ALTER TABLE tasks ADD COLUMN deleted_at INTEGER;
ALTER TABLE tasks ADD COLUMN chat_id TEXT;
ALTER TABLE tasks ADD COLUMN user_id INTEGER;
CREATE INDEX tasks_by_state ON tasks (state, created_at DESC);

-- Every change of a task, in order: what it set, who made it, and the idempotency key of
-- the request that made it (the same key again answers with this change).
CREATE TABLE task_changes (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  version INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('update', 'complete', 'reopen', 'delete')),
  fields TEXT NOT NULL DEFAULT '{}',
  source TEXT NOT NULL,
  idempotency_key TEXT UNIQUE,
  idempotency_hash TEXT,
  at INTEGER NOT NULL,
  UNIQUE (task_id, version)
) STRICT;

-- SQLite cannot change a CHECK in place: the operations table is rebuilt with the change
-- kinds allowed, its rows and ids kept.
CREATE TABLE operations_next (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  server TEXT NOT NULL,
  kind TEXT NOT NULL DEFAULT 'create'
    CHECK (kind IN ('create', 'compensate', 'update', 'complete', 'reopen', 'delete')),
  status TEXT NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped')),
  priority INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  idempotency_key TEXT NOT NULL UNIQUE,
  remote_id TEXT,
  last_error TEXT,
  retryable INTEGER NOT NULL DEFAULT 0,
  waiting TEXT,
  recheck INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NOT NULL,
  lease_owner TEXT,
  lease_expires_at INTEGER,
  duration_ms INTEGER,
  total_ms INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  started_at INTEGER,
  finished_at INTEGER,
  updated_at INTEGER NOT NULL,
  waits_for TEXT
) STRICT;

INSERT INTO operations_next (id, task_id, server, kind, status, priority, attempts, idempotency_key,
  remote_id, last_error, retryable, waiting, recheck, next_attempt_at, lease_owner, lease_expires_at,
  duration_ms, total_ms, created_at, started_at, finished_at, updated_at, waits_for)
SELECT id, task_id, server, kind, status, priority, attempts, idempotency_key,
  remote_id, last_error, retryable, waiting, recheck, next_attempt_at, lease_owner, lease_expires_at,
  duration_ms, total_ms, created_at, started_at, finished_at, updated_at, waits_for
FROM operations;

DROP TABLE operations;
ALTER TABLE operations_next RENAME TO operations;

CREATE INDEX operations_by_task ON operations (task_id);
CREATE INDEX operations_by_finished ON operations (finished_at);
CREATE INDEX operations_pending ON operations (server, next_attempt_at) WHERE status = 'pending';
CREATE INDEX operations_running ON operations (server, lease_expires_at) WHERE status = 'running';
CREATE INDEX operations_failed ON operations (server, next_attempt_at) WHERE status = 'failed';
CREATE INDEX operations_done ON operations (server, finished_at) WHERE status = 'done';
CREATE INDEX operations_skipped ON operations (server) WHERE status = 'skipped';
