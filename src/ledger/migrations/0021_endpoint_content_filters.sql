-- Carteiro ledger, version 21: content filters. Beyond its event types, an endpoint can ask only for
-- the events whose data satisfy a condition (docs/filters.md): an event it filters out gets no
-- delivery row for it, as one of a type it did not subscribe to.
--
-- filter            the filter as the API was given it (its small JSON language), shown back as is.
-- filter_jsonpath   that filter compiled by Carteiro (catalog/content-filter.ts) to a jsonpath
--                   predicate over the event's `data`. It names its values only as variables ($v1…),
--                   never as literals, so nothing a client sends is ever parsed as jsonpath.
-- filter_vars       the values of those variables.
-- The three are NULL together (no filter: every event of its types) or set together.
ALTER TABLE webhook_endpoints ADD COLUMN filter jsonb;
ALTER TABLE webhook_endpoints ADD COLUMN filter_jsonpath jsonpath;
ALTER TABLE webhook_endpoints ADD COLUMN filter_vars jsonb;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_filter_complete CHECK (
  (filter IS NULL AND filter_jsonpath IS NULL AND filter_vars IS NULL)
  OR (filter IS NOT NULL AND filter_jsonpath IS NOT NULL AND jsonb_typeof(filter_vars) = 'object'));

-- The fan-out of migration 0009, with the content filter applied (the rest unchanged). Filters read
-- `data` (jsonb); lax mode and `silent` make a filter that cannot apply to an event's data (another
-- type, a missing field) a non-match, never an error that would refuse the event.
CREATE OR REPLACE FUNCTION fan_out_new_events() RETURNS trigger
LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
DECLARE
  dispatched integer;
  completed integer;
BEGIN
  WITH ins AS (
    INSERT INTO webhook_dispatches (organization_id, webhook_event_id, webhook_endpoint_id, priority)
    SELECT e.organization_id, e.id, ep.id, e.priority
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
