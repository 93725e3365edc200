-- What the bot keeps: conversation state (so a restart resumes a conversation), mutes,
-- and where each alert was sent (so a repeat edits that message).

CREATE TABLE conversations (
  key TEXT PRIMARY KEY,
  state TEXT NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE mutes (
  server TEXT PRIMARY KEY, -- a server name, or '*' for all
  until INTEGER NOT NULL
) STRICT;

ALTER TABLE alerts ADD COLUMN chat_id TEXT;
ALTER TABLE alerts ADD COLUMN message_id INTEGER;
