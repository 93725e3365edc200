-- One row per running dispatcher, removed when it stops cleanly. Claims are committed
-- without fsync; a row whose process is gone marks a run that ended without stopping,
-- whose last claims a power cut may have taken, so the next start looks up every
-- unfinished operation on its server before creating it again.
CREATE TABLE dispatchers (
  owner TEXT PRIMARY KEY,
  -- Boot, pid and process start time: tells a live run from a pid reused after a reboot.
  process TEXT NOT NULL,
  started_at INTEGER NOT NULL
) STRICT;
