-- Task events for alert routes: a task done, reopened or deleted is a row of the alert
-- outbox (born closed and delivered for the alert chat, which shows no task events), so a
-- route that asks for them gets each once, with the routes' own retries and signatures.
ALTER TABLE alerts DROP CONSTRAINT alerts_kind_check;
ALTER TABLE alerts ADD CONSTRAINT alerts_kind_check
  CHECK (kind IN ('breaker_open', 'degraded', 'error', 'crash_loop', 'recovered', 'rolled_back',
    'task_done', 'task_reopened', 'task_deleted'));
