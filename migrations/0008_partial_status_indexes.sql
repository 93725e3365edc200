-- Status indexes only where queries look: the open operations of each server (due,
-- running, to recover) and the finished ones (read-back, durations, counts). A claim or an
-- outcome now moves one small entry instead of rewriting entries in three indexes that
-- held every operation, so each commit writes fewer pages.

DROP INDEX operations_due;
DROP INDEX operations_by_server_status;
DROP INDEX operations_by_status;
CREATE INDEX operations_pending ON operations (server, next_attempt_at) WHERE status = 'pending';
CREATE INDEX operations_running ON operations (server, lease_expires_at) WHERE status = 'running';
CREATE INDEX operations_failed ON operations (server, next_attempt_at) WHERE status = 'failed';
CREATE INDEX operations_done ON operations (server, finished_at) WHERE status = 'done';
CREATE INDEX operations_skipped ON operations (server) WHERE status = 'skipped';
