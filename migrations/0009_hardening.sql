-- The request a task's idempotency key was first used with (a hash of the validated task),
-- so the same key with another task is refused instead of answered with the first one.
ALTER TABLE tasks ADD COLUMN idempotency_hash TEXT;

-- A scratch table for the store's write probe: while the store is unavailable, a row of a
-- few pages is written and removed, which fails as long as the database cannot grow.
CREATE TABLE store_probe (
  id INTEGER PRIMARY KEY,
  data BLOB NOT NULL
) STRICT;
