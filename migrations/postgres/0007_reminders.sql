-- Reminders: per task, the minutes before the deadline its owner asked for (NULL: the
-- configured default), and the version of the task its reminders were last planned for
-- (a task whose version moved on is planned again: its deadline or state may have changed).
-- Each reminder is a row, claimed by one instance, fired once.

ALTER TABLE tasks
  ADD COLUMN remind text,
  ADD COLUMN reminders_planned integer;
CREATE INDEX tasks_to_plan ON tasks (created_at) WHERE reminders_planned IS DISTINCT FROM version;

CREATE TABLE reminders (
  id bigserial PRIMARY KEY,
  task_id text NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('before', 'snooze')),
  offset_ms bigint NOT NULL DEFAULT 0,
  fire_at bigint NOT NULL,
  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'firing', 'sent')),
  lease_owner text,
  lease_expires_at bigint,
  fired_at bigint,
  late boolean NOT NULL DEFAULT false,
  snoozed_from bigint UNIQUE,
  created_at bigint NOT NULL
);
CREATE INDEX reminders_due ON reminders (fire_at) WHERE status = 'pending';
CREATE INDEX reminders_firing ON reminders (lease_expires_at) WHERE status = 'firing';
CREATE INDEX reminders_by_task ON reminders (task_id);
