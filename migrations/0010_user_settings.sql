-- What each Telegram user chose for themselves: their time zone (an IANA name), in which
-- the deadlines they type are read and the deadlines they read are shown.
CREATE TABLE user_settings (
  user_id INTEGER PRIMARY KEY,
  timezone TEXT,
  updated_at INTEGER NOT NULL
) STRICT;
