-- Carteiro ledger, version 7: the lease index keyed on the lease itself, not on the status.
--
-- A worker records a batch of outcomes with
--   UPDATE webhook_dispatches d ... FROM unnest(<ids>) u WHERE d.id = u.id AND d.status = 'in_flight' AND ...
-- With the old index (lease_expires_at) WHERE status = 'in_flight', the planner could answer the status
-- condition from that index, and it did: it read every in-flight row of every worker and matched each
-- against the batch in a nested loop, instead of looking the batch's rows up by primary key. Measured
-- here: 4 ms of Postgres CPU to record 7 outcomes with 1,500 deliveries in flight, and the cost of every
-- flush growing with the work in flight (up to workers x concurrency rows).
--
-- Indexed on the lease being set, it still serves the lease sweep (lease_expires_at < now() implies
-- it is set) and nothing that merely filters on the status; outcomes go through the primary key.
DROP INDEX webhook_dispatches_leases;
CREATE INDEX webhook_dispatches_leases ON webhook_dispatches (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
