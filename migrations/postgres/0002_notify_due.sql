-- Wake-ups: an operation that becomes pending (a new task, a release, a requeue, a
-- recovery) is announced on the channel `taskfan_due` with its server, once per server and
-- transaction (PostgreSQL folds identical notifications), when the transaction commits.
-- Dispatchers LISTEN and look at that server at once; their poll stays as the fallback.
CREATE FUNCTION taskfan_notify_due() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('taskfan_due', NEW.server);
  RETURN NULL;
END
$$;

-- Not for an operation blocked on its task's other creates (due at the end of time).
CREATE TRIGGER operations_due
  AFTER INSERT OR UPDATE OF status, next_attempt_at ON operations
  FOR EACH ROW WHEN (NEW.status = 'pending' AND NEW.next_attempt_at < 8640000000000000)
  EXECUTE FUNCTION taskfan_notify_due();
