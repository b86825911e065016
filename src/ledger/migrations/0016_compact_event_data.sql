-- Carteiro ledger, version 16: each event's data as the compact JSON text that is sent.
--
-- `data` is jsonb, and jsonb's text has spaces after ':' and ',' and its keys sorted by length, so a
-- body built from it differed from one built from JSON.stringify (sealed data took that path), and a
-- receiver that re-serialised the body could verify one kind and not the other. `data_json` holds the
-- text sent: Carteiro's ingestion stores JSON.stringify of what the client sent (keys in the client's
-- order), and every other writer (table capture, a tenant's own INSERT or UPDATE, the sealing pass)
-- gets it from `data` by compact_json below. The worker splices it into the body as it is.
ALTER TABLE webhook_events ADD COLUMN data_json text;

-- jsonb as compact JSON text: no spaces, keys in jsonb's order, numbers without trailing zeros
-- (1.50 → 1.5, as JSON.stringify(JSON.parse()) gives them; integers stay exact whatever their size).
-- Strings are escaped by Postgres as JSON.stringify escapes them.
CREATE FUNCTION compact_json(v jsonb) RETURNS text
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path FROM CURRENT AS $$
BEGIN
  CASE jsonb_typeof(v)
    WHEN 'object' THEN
      RETURN '{' || coalesce((
        SELECT string_agg(to_json(e.key)::text || ':' || CASE
                 WHEN jsonb_typeof(e.value) IN ('object', 'array') THEN compact_json(e.value)
                 WHEN jsonb_typeof(e.value) = 'number' THEN trim_scale(e.value::numeric)::text
                 ELSE e.value::text END, ',' ORDER BY e.n)
        FROM jsonb_each(v) WITH ORDINALITY AS e(key, value, n)), '') || '}';
    WHEN 'array' THEN
      RETURN '[' || coalesce((
        SELECT string_agg(CASE
                 WHEN jsonb_typeof(e.value) IN ('object', 'array') THEN compact_json(e.value)
                 WHEN jsonb_typeof(e.value) = 'number' THEN trim_scale(e.value::numeric)::text
                 ELSE e.value::text END, ',' ORDER BY e.n)
        FROM jsonb_array_elements(v) WITH ORDINALITY AS e(value, n)), '') || ']';
    WHEN 'number' THEN
      RETURN trim_scale(v::numeric)::text;
    ELSE
      RETURN v::text;
  END CASE;
END
$$;

CREATE FUNCTION compact_event_data() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
  NEW.data_json := compact_json(NEW.data);
  RETURN NEW;
END
$$;

-- Rows written without the text get it from `data`. A row written under row level security (a
-- tenant role) always does: its text could otherwise say something other than its data (a ciphertext
-- copied from another organization's event, sent opened under a row still marked sealed).
CREATE TRIGGER webhook_events_compact_data_insert
  BEFORE INSERT ON webhook_events
  FOR EACH ROW WHEN (NEW.data_json IS NULL OR row_security_active('webhook_events'))
  EXECUTE FUNCTION compact_event_data();

-- Data changed without its text (an operator's SQL, a writer that knows only `data`) gets it anew,
-- so no stale copy (a personal field in clear after sealing, say) outlives the data it was.
CREATE TRIGGER webhook_events_compact_data_update
  BEFORE UPDATE OF data, data_json ON webhook_events
  FOR EACH ROW WHEN (NEW.data_json IS NULL OR row_security_active('webhook_events')
                     OR (NEW.data IS DISTINCT FROM OLD.data AND NEW.data_json IS NOT DISTINCT FROM OLD.data_json))
  EXECUTE FUNCTION compact_event_data();
