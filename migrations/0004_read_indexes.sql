-- Indexes for the reads behind /health, /stats and the status page, which stay fast
-- with hundreds of thousands of operations stored.

CREATE INDEX operations_by_server_status ON operations (server, status, finished_at);
CREATE INDEX operations_by_status ON operations (status);
CREATE INDEX operations_by_finished ON operations (finished_at);
