-- Reminders: per task, the minutes before the deadline its owner asked for (NULL: the
-- configured default), and the version of the task its reminders were last planned for
-- (a task whose version moved on is planned again: its deadline or state may have changed).
-- Each reminder is a row, claimed by one instance, fired once.

ALTER TABLE tasks ADD COLUMN remind TEXT;
ALTER TABLE tasks ADD COLUMN reminders_planned INTEGER;
CREATE INDEX tasks_to_plan ON tasks (created_at) WHERE reminders_planned IS NOT version;

CREATE TABLE reminders (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id TEXT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('before', 'snooze')),
  -- How long before the deadline (kind before).
  offset_ms INTEGER NOT NULL DEFAULT 0,
  fire_at INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'firing', 'sent')),
  lease_owner TEXT,
  lease_expires_at INTEGER,
  fired_at INTEGER,
  late INTEGER NOT NULL DEFAULT 0,
  -- A snooze of that reminder: one per reminder, however often its button is pressed.
  snoozed_from INTEGER UNIQUE,
  created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX reminders_due ON reminders (fire_at) WHERE status = 'pending';
CREATE INDEX reminders_firing ON reminders (lease_expires_at) WHERE status = 'firing';
CREATE INDEX reminders_by_task ON reminders (task_id);
