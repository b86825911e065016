-- Carteiro ledger, version 25: ordered (FIFO) delivery, opt-in per endpoint (docs/ordered-delivery.md).
-- A FIFO endpoint gets one delivery at a time, in the order of its events' ids (UUIDv7: the order the
-- API accepted them in), and a delivery waiting for a retry holds every later one back.
--
-- webhook_endpoints.fifo               the endpoint asks for ordered delivery.
-- webhook_endpoints.fifo_on_exhausted  what a head that fails for good does: 'hold' disables the endpoint,
--                                      holding what follows until someone replays the head or enables the
--                                      endpoint again (which skips it); 'skip' lets the next one go.
-- webhook_dispatches.fifo              true on the rows of FIFO endpoints (NULL on every other row), so
--                                      the index below holds only those: endpoints that do not ask for
--                                      order pay nothing for it on the hot path.
ALTER TABLE webhook_endpoints ADD COLUMN fifo boolean NOT NULL DEFAULT false;
ALTER TABLE webhook_endpoints ADD COLUMN fifo_on_exhausted text NOT NULL DEFAULT 'hold';
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_fifo_on_exhausted CHECK (fifo_on_exhausted IN ('hold', 'skip'));
ALTER TABLE webhook_dispatches ADD COLUMN fifo boolean;
ALTER TABLE webhook_dispatches ADD CONSTRAINT webhook_dispatches_fifo_true_or_null CHECK (fifo);
-- The head of each FIFO endpoint's queue: its unfinished deliveries in event order. The claim reads
-- the first entry per endpoint (one index probe), whatever the backlog behind it.
CREATE INDEX webhook_dispatches_fifo_head ON webhook_dispatches (webhook_endpoint_id, webhook_event_id)
  WHERE fifo AND status IN ('pending', 'in_flight');

-- The fan-out of migration 0021, marking the rows of FIFO endpoints (the rest unchanged).
CREATE OR REPLACE FUNCTION fan_out_new_events() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  dispatched integer;
  completed integer;
BEGIN
  WITH ins AS (
    INSERT INTO webhook_dispatches (organization_id, webhook_event_id, webhook_endpoint_id, priority, fifo)
    SELECT e.organization_id, e.id, ep.id, e.priority, CASE WHEN ep.fifo THEN true END
    FROM new_events e
    JOIN webhook_endpoints ep
      ON ep.organization_id = e.organization_id
     AND ep.is_active
     AND ep.events && event_type_patterns(e.event_type)
     AND (ep.filter_jsonpath IS NULL OR jsonb_path_match(e.data, ep.filter_jsonpath, ep.filter_vars, true))
    WHERE e.status = 'pending'
    RETURNING webhook_event_id
  ), unrouted AS (
    UPDATE webhook_events w
       SET status = 'completed', processed_at = now(), updated_at = now()
     WHERE w.id IN (SELECT id FROM new_events WHERE status = 'pending' EXCEPT SELECT webhook_event_id FROM ins)
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM unrouted) INTO dispatched, completed;
  IF dispatched > 0
     AND coalesce(current_setting('carteiro.defer_notify', true), '') <> 'on'
     -- re-entrant within a transaction: a second statement of the notifier notifies again (folded)
     AND pg_try_advisory_xact_lock(hashtext('carteiro.dispatch_notify'), hashtext(TG_TABLE_SCHEMA)) THEN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_dispatch', '');
  END IF;
  RETURN NULL;
END
$$;
