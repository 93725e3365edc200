-- Alert routes besides the alert chat (as 0012_alert_routes.sql on SQLite).
CREATE TABLE alert_routes (
  route text PRIMARY KEY,
  since bigint NOT NULL
);

CREATE TABLE alert_deliveries (
  alert_id bigint NOT NULL REFERENCES alerts (id),
  route text NOT NULL,
  delivered_count integer NOT NULL DEFAULT 0,
  delivered_at bigint,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint,
  last_error text,
  failed_count integer NOT NULL DEFAULT 0,
  claim_owner text,
  claim_expires_at bigint,
  PRIMARY KEY (alert_id, route)
);
