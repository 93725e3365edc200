-- Alert routes besides the alert chat (webhooks, ...): each route keeps its own delivery
-- state per alert, so a route that is down delays only itself.
CREATE TABLE alert_routes (
  route TEXT PRIMARY KEY,
  -- The route takes alerts seen from this time on (not the history before it existed).
  since INTEGER NOT NULL
);

CREATE TABLE alert_deliveries (
  alert_id INTEGER NOT NULL REFERENCES alerts (id),
  route TEXT NOT NULL,
  -- The alert's count last accepted by the route (a repeat is delivered again).
  delivered_count INTEGER NOT NULL DEFAULT 0,
  delivered_at INTEGER,
  -- Failed attempts since the last delivery, and when the next may be made.
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  last_error TEXT,
  -- The count the route refused for good (a 4xx): not tried again until the alert changes.
  failed_count INTEGER NOT NULL DEFAULT 0,
  claim_owner TEXT,
  claim_expires_at INTEGER,
  PRIMARY KEY (alert_id, route)
);
