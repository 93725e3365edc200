-- "I'm on it": who acknowledged an open alert, and when. Repeats of an acknowledged alert
-- edit its message quietly instead of ringing again; the next alert of the same kind and
-- server (after a recovery) is a new row, unacknowledged.
ALTER TABLE alerts ADD COLUMN acked_by TEXT;
ALTER TABLE alerts ADD COLUMN acked_by_id INTEGER;
ALTER TABLE alerts ADD COLUMN acked_at INTEGER;
