-- Isolation between endpoints (docs/architecture.md, "Isolation").
--
-- A claim no longer walks one global due-order index: it visits the active endpoints and takes, from
-- each, at most its room (its in-flight cap less what this worker already has in flight there), high
-- priority before normal and then by due time, with one index range scan per priority level. So a
-- claim reads only the rows it may take, whatever the backlog or the planner's statistics, and a
-- backlogged or hanging endpoint cannot fill a claim that others are waiting on.
CREATE INDEX webhook_dispatches_endpoint_due
  ON webhook_dispatches (webhook_endpoint_id, priority, next_attempt_at) WHERE status = 'pending';

-- max_in_flight            the endpoint's own cap on requests in flight per worker (NULL: the default,
--                          CARTEIRO_ENDPOINT_MAX_IN_FLIGHT); adaptive concurrency moves below it.
-- failed_attempts_in_row   attempts in a row that failed (any failure; a success resets it). Past
--                          CARTEIRO_SLOW_LANE_AFTER_FAILURES the endpoint is in the slow lane: one
--                          request in flight per worker until it answers again. Kept in the ledger so
--                          every worker, and a restarted one, contains it at once.
-- failing_notified_at      when `endpoint.failing` was emitted for the current run of failures (NULL:
--                          healthy, or not yet past CARTEIRO_ENDPOINT_FAILING_AFTER_FAILURES).
-- probe_at, probes         half-open probing of an endpoint the circuit breaker disabled: when the next
--                          single trial delivery is due, and how many were tried (the cool-off doubles).
--                          NULL for endpoints disabled by hand or by 410 Gone: those are never probed.
ALTER TABLE webhook_endpoints ADD COLUMN max_in_flight integer CHECK (max_in_flight BETWEEN 1 AND 1000);
ALTER TABLE webhook_endpoints ADD COLUMN failed_attempts_in_row integer NOT NULL DEFAULT 0;
ALTER TABLE webhook_endpoints ADD COLUMN failing_notified_at timestamptz;
ALTER TABLE webhook_endpoints ADD COLUMN probe_at timestamptz;
ALTER TABLE webhook_endpoints ADD COLUMN probes integer NOT NULL DEFAULT 0;

CREATE INDEX webhook_endpoints_probe ON webhook_endpoints (probe_at) WHERE probe_at IS NOT NULL AND NOT is_active;
