-- taskfan on PostgreSQL: the same tables as the SQLite store's migrations 0001 to 0010 end
-- with. Times are milliseconds since the epoch (bigint), as the orchestrator's clock gives them.

CREATE TABLE tasks (
  id text PRIMARY KEY,
  title text NOT NULL,
  description text NOT NULL DEFAULT '',
  priority integer NOT NULL CHECK (priority BETWEEN 1 AND 5),
  deadline text,
  tags text NOT NULL DEFAULT '[]',
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'running', 'done', 'partial', 'failed', 'rolled_back')),
  status_reason text,
  idempotency_key text UNIQUE,
  idempotency_hash text,
  rollback_reason text,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  settled_at bigint
);
CREATE INDEX tasks_by_created ON tasks (created_at DESC);
CREATE INDEX tasks_by_status ON tasks (status);

CREATE TABLE operations (
  id bigserial PRIMARY KEY,
  task_id text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  server text NOT NULL,
  kind text NOT NULL DEFAULT 'create' CHECK (kind IN ('create', 'compensate')),
  status text NOT NULL DEFAULT 'pending'
    CHECK (status IN ('pending', 'running', 'done', 'failed', 'skipped')),
  -- Servers whose create of the same task must settle first (comma-separated).
  waits_for text,
  priority integer NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  idempotency_key text NOT NULL UNIQUE,
  remote_id text,
  last_error text,
  retryable integer NOT NULL DEFAULT 0,
  -- Why a pending operation is parked (its server is down or its breaker open).
  waiting text,
  -- 1 when an earlier attempt may have reached the server: look before creating again.
  recheck integer NOT NULL DEFAULT 0,
  next_attempt_at bigint NOT NULL,
  lease_owner text,
  lease_expires_at bigint,
  duration_ms integer,
  total_ms bigint NOT NULL DEFAULT 0,
  created_at bigint NOT NULL,
  started_at bigint,
  finished_at bigint,
  updated_at bigint NOT NULL
);
CREATE INDEX operations_by_task ON operations (task_id);
CREATE INDEX operations_by_finished ON operations (finished_at);
CREATE INDEX operations_pending ON operations (server, next_attempt_at) WHERE status = 'pending';
CREATE INDEX operations_running ON operations (server, lease_expires_at) WHERE status = 'running';
CREATE INDEX operations_failed ON operations (server, next_attempt_at) WHERE status = 'failed';
CREATE INDEX operations_done ON operations (server, finished_at) WHERE status = 'done';
CREATE INDEX operations_skipped ON operations (server) WHERE status = 'skipped';

CREATE TABLE events (
  id bigserial PRIMARY KEY,
  task_id text,
  operation_id bigint,
  type text NOT NULL,
  data text NOT NULL DEFAULT '{}',
  at bigint NOT NULL
);
CREATE INDEX events_by_task ON events (task_id, id);
CREATE INDEX events_by_type ON events (type, at);

CREATE TABLE alerts (
  id bigserial PRIMARY KEY,
  kind text NOT NULL
    CHECK (kind IN ('breaker_open', 'degraded', 'error', 'crash_loop', 'recovered', 'rolled_back')),
  server text NOT NULL DEFAULT '',
  task_id text,
  -- open while the condition lasts; recovered and rolled_back rows are born closed.
  status text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
  first_seen bigint NOT NULL,
  last_seen bigint NOT NULL,
  count integer NOT NULL DEFAULT 1,
  details text NOT NULL DEFAULT '{}',
  closed_at bigint,
  -- Delivery: the count last delivered, so a repeat can be folded into the sent message.
  delivered_at bigint,
  delivered_count integer NOT NULL DEFAULT 0,
  claim_owner text,
  claim_expires_at bigint,
  chat_id text,
  message_id bigint
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (kind, server) WHERE status = 'open' AND task_id IS NULL;
CREATE INDEX alerts_undelivered ON alerts (delivered_count, count);

CREATE TABLE conversations (
  key text PRIMARY KEY,
  state text NOT NULL,
  updated_at bigint NOT NULL
);

CREATE TABLE mutes (
  server text PRIMARY KEY, -- a server name, or '*' for all
  until bigint NOT NULL
);

CREATE TABLE dispatchers (
  owner text PRIMARY KEY,
  -- Boot, pid and process start time: tells a live run from a pid reused after a reboot.
  process text NOT NULL,
  started_at bigint NOT NULL
);

CREATE TABLE store_probe (
  id bigserial PRIMARY KEY,
  data bytea NOT NULL
);

CREATE TABLE user_settings (
  user_id bigint PRIMARY KEY,
  timezone text,
  updated_at bigint NOT NULL
);
