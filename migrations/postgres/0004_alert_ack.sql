-- "I'm on it": who acknowledged an open alert, and when (as 0011_alert_ack.sql on SQLite).
ALTER TABLE alerts ADD COLUMN acked_by text;
ALTER TABLE alerts ADD COLUMN acked_by_id bigint;
ALTER TABLE alerts ADD COLUMN acked_at bigint;
