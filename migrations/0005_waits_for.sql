-- A create waits for named operations of its task instead of a whole earlier phase:
-- backup for the file it snapshots, notifications for the servers whose failure would
-- roll the task back. Comma-separated server names; NULL waits for nothing.
ALTER TABLE operations ADD COLUMN waits_for TEXT;

-- Operations stored under phases wait for every phase-0 operation of their task, as before.
UPDATE operations
SET waits_for = (
  SELECT group_concat(p.server, ',') FROM operations p
  WHERE p.task_id = operations.task_id AND p.kind = operations.kind AND p.phase = 0
)
WHERE phase = 1;

ALTER TABLE operations DROP COLUMN phase;
