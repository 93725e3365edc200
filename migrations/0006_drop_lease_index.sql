-- Every claim, lease renewal and outcome rewrote an entry in this index; the queries it
-- served are answered as well by operations_due (orphans of one server) and
-- operations_by_status (a status across servers).
DROP INDEX operations_by_lease;
