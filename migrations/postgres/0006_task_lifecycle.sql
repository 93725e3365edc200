-- The task lifecycle: a task's own state (open, done, deleted) and version, kept apart from
-- its fan-out status; the chat and user that own it; the changes made to it; and operations
-- that carry a change (update, complete, reopen, delete) to each server that holds the task.

ALTER TABLE tasks
  ADD COLUMN state text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'done', 'deleted')),
  ADD COLUMN version integer NOT NULL DEFAULT 1,
  ADD COLUMN completed_at bigint,
  ADD COLUMN deleted_at bigint,
  ADD COLUMN chat_id text,
  ADD COLUMN user_id bigint;
CREATE INDEX tasks_by_state ON tasks (state, created_at DESC);

-- Every change of a task, in order: what it set, who made it, and the idempotency key of
-- the request that made it (the same key again answers with this change).
CREATE TABLE task_changes (
  id bigserial PRIMARY KEY,
  task_id text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  version integer NOT NULL,
  kind text NOT NULL CHECK (kind IN ('update', 'complete', 'reopen', 'delete')),
  fields text NOT NULL DEFAULT '{}',
  source text NOT NULL,
  idempotency_key text UNIQUE,
  idempotency_hash text,
  at bigint NOT NULL,
  UNIQUE (task_id, version)
);

ALTER TABLE operations DROP CONSTRAINT operations_kind_check;
ALTER TABLE operations ADD CONSTRAINT operations_kind_check
  CHECK (kind IN ('create', 'compensate', 'update', 'complete', 'reopen', 'delete'));
