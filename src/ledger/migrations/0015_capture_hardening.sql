-- Table capture, hardened after an audit (each item: what it did before).
--
-- 1. Partitioned tables: an INSERT-only capture attached a statement-level trigger to the parent, and
--    Postgres does not clone statement-level triggers to partitions, so rows written straight into a
--    partition (INSERT or COPY) committed without an event. Such captures now use the row-level
--    trigger, which Postgres clones to every partition, present and future; captures already attached
--    that way are re-attached below. Events name the partitioned table, not the partition.
-- 2. A user id longer than webhook_events.user_id's index can hold (200 characters, as the API
--    allows) made the application's own INSERT or UPDATE fail. It is now a mapping error: a failed
--    event, never a failed write.
-- 3. A failed capture event kept the whole row, `columns` or not; it now keeps only those columns.
-- 4. A row naming the operations organization (migration 0012) was routed there, where events go to
--    the operations endpoint; it is refused like an organization that does not exist.
-- 5. The default trigger name was cut to 63 characters, but Postgres cuts identifiers to 63 bytes:
--    a table name with multi-byte characters got a name that never matched its trigger.
-- 6. A capture was found by its table's name, so after ALTER TABLE … RENAME it was listed as detached
--    while still firing, and removing it left the trigger behind. uncapture_table now also drops the
--    triggers that carry the removed captures' ids, wherever their tables are now (the listing finds
--    them the same way: src/ledger/triggers.ts).
SELECT set_config('carteiro.path_before_0015', current_setting('search_path'), true);
SELECT set_config('search_path', format('%I, pg_catalog, pg_temp', current_schema()), true);

-- Kept equal to the API's limit (src/api/schemas.ts shortText, ingest-service MAX_USER_ID_LENGTH).
CREATE FUNCTION capture_user_id(user_id text) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path FROM CURRENT AS $$
BEGIN
  IF length(user_id) > 200 THEN
    RAISE EXCEPTION 'the user id is % characters long; at most 200 can be stored', length(user_id);
  END IF;
  RETURN user_id;
END
$$;

CREATE OR REPLACE FUNCTION capture_organization(fixed uuid, named text) RETURNS uuid
LANGUAGE plpgsql STABLE SET search_path FROM CURRENT AS $$
BEGIN
  IF fixed IS NOT NULL THEN
    RETURN fixed;
  END IF;
  IF named IS NULL THEN
    RETURN '00000000-0000-7000-8000-000000000000';
  END IF;
  IF named !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN
    RAISE EXCEPTION 'organization_id "%" is not a UUID', named;
  END IF;
  -- The operations organization holds Carteiro's own events: no row of an application belongs there.
  IF named::uuid = '00000000-0000-7000-8000-00000000000f'
     OR NOT EXISTS (SELECT 1 FROM organizations WHERE id = named::uuid) THEN
    RAISE EXCEPTION 'organization_id % is not a Carteiro organization', named
      USING HINT = 'create it in Carteiro, or give the capture a fixed organization_id';
  END IF;
  RETURN named::uuid;
END
$$;

CREATE OR REPLACE FUNCTION capture_event(cfg table_captures, op text, record jsonb, old_record jsonb) RETURNS captured_event
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
  mapped jsonb;
  result captured_event;
BEGIN
  mapped := CASE cfg.mapping
    WHEN 'row' THEN map_row(cfg.event_type, cfg.columns, cfg.record_id_column, cfg.user_id_column, op, record, old_record)
    WHEN 'seed.user' THEN map_seed_user(op, record, old_record)
    WHEN 'seed.agent' THEN map_seed_agent(op, record, old_record)
    WHEN 'seed.conversation' THEN map_seed_conversation(op, record, old_record)
    WHEN 'seed.message' THEN map_seed_message(op, record, old_record)
    WHEN 'seed.integration' THEN map_seed_integration(op, record, old_record)
  END;
  IF cfg.mapping = 'function' THEN
    EXECUTE format('SELECT %s($1, $2, $3)', cfg.mapper::regproc) INTO mapped USING op, record, old_record;
  ELSIF cfg.mapping IS NULL THEN
    RAISE EXCEPTION 'the capture has no configuration (was its table_captures row deleted?)';
  END IF;
  IF mapped IS NULL OR mapped = 'null'::jsonb THEN
    RETURN NULL;
  END IF;
  IF jsonb_typeof(mapped) <> 'object' THEN
    RAISE EXCEPTION 'mapping returned % instead of an object', jsonb_typeof(mapped);
  END IF;
  result.event_type := mapped ->> 'event_type';
  IF result.event_type IS NULL OR result.event_type !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,5}$' THEN
    RAISE EXCEPTION 'mapping returned event_type % (expected a dotted lower-case name like "order.created")',
      coalesce(quote_literal(result.event_type), 'NULL');
  END IF;
  result.data := coalesce(mapped -> 'data', 'null'::jsonb);
  IF result.data = 'null'::jsonb THEN
    RAISE EXCEPTION 'mapping returned no data';
  END IF;
  result.record_id := mapped ->> 'record_id';
  result.user_id := capture_user_id(mapped ->> 'user_id');
  result.organization_id := capture_organization(cfg.organization_id,
    coalesce(mapped ->> 'organization_id', coalesce(record, old_record) ->> 'organization_id'));
  result.priority := coalesce(cfg.priority, 0);
  RETURN result;
END
$$;

-- Only the configured columns of a row (all of it when none are configured).
CREATE FUNCTION capture_columns(row_data jsonb, columns text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN row_data IS NULL OR columns IS NULL THEN row_data
              ELSE coalesce((SELECT jsonb_object_agg(key, value) FROM jsonb_each(row_data) WHERE key = ANY (columns)), '{}'::jsonb) END
$$;

CREATE OR REPLACE FUNCTION capture_row(cfg table_captures, tbl_schema text, tbl text, trigger text,
                                       op text, record jsonb, old_record jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
  ev       captured_event;
  failure  text;
  row_now  jsonb := coalesce(record, old_record);
  org      uuid;
  failed   uuid;
  user_id  text;
BEGIN
  BEGIN
    ev := capture_event(cfg, op, record, old_record);
  EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT;
  END;

  IF failure IS NULL THEN
    IF ev.event_type IS NOT NULL THEN
      INSERT INTO webhook_events (organization_id, event_type, event_source, table_name, record_id, user_id, data, priority)
      VALUES (ev.organization_id, ev.event_type, 'supabase', tbl, ev.record_id, ev.user_id, ev.data, ev.priority);
    END IF;
    RETURN;
  END IF;

  RAISE WARNING 'carteiro: capture % on %.% could not map a row (stored as a failed event): %', trigger, tbl_schema, tbl, failure;
  BEGIN
    org := capture_organization(cfg.organization_id, row_now ->> 'organization_id');
  EXCEPTION WHEN OTHERS THEN
    org := coalesce(cfg.organization_id, '00000000-0000-7000-8000-000000000000');
  END;
  user_id := row_now ->> coalesce(cfg.user_id_column, 'user_id');
  INSERT INTO webhook_events (organization_id, event_type, event_source, table_name, record_id, user_id, data, status, error_message)
  VALUES (org,
          coalesce(replace(cfg.event_type, '{op}', CASE op WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END),
                   'carteiro.capture.failed'),
          'supabase', tbl, row_now ->> coalesce(cfg.record_id_column, 'id'),
          CASE WHEN length(user_id) <= 200 THEN user_id END,
          jsonb_build_object('type', op, 'schema', tbl_schema, 'table', tbl,
                             'record', capture_columns(record, cfg.columns), 'old_record', capture_columns(old_record, cfg.columns)),
          'failed', format('capture %s on %s.%s: %s', trigger, tbl_schema, tbl, failure))
  RETURNING id INTO failed;
  -- Fan-out routes only pending events, so a failed capture is kept for inspection and never delivered.
  UPDATE webhook_events SET processed_at = now() WHERE id = failed;
END
$$;

CREATE OR REPLACE FUNCTION capture_changed_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  cfg  table_captures;
  tbl  text := TG_TABLE_NAME;
BEGIN
  -- A capture of a partitioned table fires on the partition a row went to; events name the table.
  IF (SELECT relispartition FROM pg_class WHERE oid = TG_RELID) THEN
    SELECT relname INTO tbl FROM pg_class WHERE oid = pg_partition_root(TG_RELID);
  END IF;
  SELECT * INTO cfg FROM table_captures WHERE id = TG_ARGV[0]::uuid;
  PERFORM capture_row(cfg, TG_TABLE_SCHEMA, tbl, TG_NAME, TG_OP,
                      CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END,
                      CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END);
  RETURN NULL;
END
$$;

-- The default trigger name, cut to 63 bytes as Postgres cuts identifiers (not 63 characters).
CREATE FUNCTION capture_trigger_name(relname text, ops text[]) RETURNS text
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
  name text := format('carteiro_%s_%s', relname, lower(array_to_string(ops, '_')));
BEGIN
  WHILE octet_length(name) > 63 LOOP
    name := left(name, length(name) - 1);
  END LOOP;
  RETURN name;
END
$$;

CREATE OR REPLACE FUNCTION capture_table(
  target            regclass,
  event_type        text,
  operations        text[] DEFAULT ARRAY['INSERT'],
  columns           text[] DEFAULT NULL,
  organization_id   uuid DEFAULT NULL,
  trigger_name      text DEFAULT NULL,
  record_id_column  text DEFAULT 'id',
  user_id_column    text DEFAULT 'user_id',
  priority          text DEFAULT 'normal',
  mapping           text DEFAULT 'row',
  mapper            regprocedure DEFAULT NULL
) RETURNS table_captures
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
#variable_conflict use_variable
DECLARE
  ops       text[];
  tbl       record;
  missing   text[];
  trg_name  text;
  existing  text;
  cfg       table_captures;
BEGIN
  SELECT c.relname, n.nspname, c.relkind, c.relispartition INTO tbl
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = target;
  IF tbl.relkind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION '% is not a table (only tables can be captured)', target;
  END IF;
  IF tbl.nspname = current_schema() THEN
    RAISE EXCEPTION '% is one of Carteiro''s own tables and cannot be captured', target;
  END IF;
  IF organization_id = '00000000-0000-7000-8000-00000000000f' THEN
    RAISE EXCEPTION 'organization_id % is Carteiro''s operations organization: no table''s rows belong there', organization_id;
  END IF;

  ops := ARRAY(SELECT DISTINCT upper(trim(o)) FROM unnest(operations) AS o ORDER BY 1);
  IF cardinality(ops) = 0 OR NOT ops <@ ARRAY['INSERT', 'UPDATE', 'DELETE'] THEN
    RAISE EXCEPTION 'operations must be some of INSERT, UPDATE, DELETE (got %)', operations;
  END IF;
  -- Required for 'row'; for other mappings it names their failed events, so it must be valid too.
  IF (mapping = 'row' AND event_type IS NULL)
      OR replace(event_type, '{op}', 'created') !~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,5}$' THEN
    RAISE EXCEPTION 'event_type % must be a dotted lower-case name like "order.created" ("{op}" allowed)',
      coalesce(quote_literal(event_type), 'NULL');
  END IF;
  IF priority NOT IN ('normal', 'high') THEN
    RAISE EXCEPTION 'priority must be normal or high (got %)', priority;
  END IF;
  IF columns IS NOT NULL THEN
    missing := ARRAY(SELECT c FROM unnest(columns) AS c
                     WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                                       WHERE a.attrelid = target AND a.attname = c AND a.attnum > 0 AND NOT a.attisdropped));
    IF cardinality(missing) > 0 THEN
      RAISE EXCEPTION 'column(s) % not found in %', array_to_string(missing, ', '), target;
    END IF;
  END IF;

  trg_name := coalesce(trigger_name, capture_trigger_name(tbl.relname, ops));
  -- Never replace a trigger that is not a Carteiro capture.
  SELECT p.proname INTO existing
  FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
  WHERE t.tgrelid = target AND t.tgname = trg_name;
  IF existing NOT IN ('capture_inserted_rows', 'capture_changed_row') THEN
    RAISE EXCEPTION 'trigger % on % exists and is not a Carteiro capture', trg_name, target;
  END IF;

  INSERT INTO table_captures AS c (schema_name, table_name, trigger_name, operations, mapping, event_type, columns,
                                   record_id_column, user_id_column, organization_id, mapper, priority)
  VALUES (tbl.nspname, tbl.relname, trg_name, ops, mapping, event_type, columns,
          record_id_column, user_id_column, organization_id, mapper, CASE priority WHEN 'high' THEN 1 ELSE 0 END)
  ON CONFLICT ON CONSTRAINT table_captures_schema_name_table_name_trigger_name_key DO UPDATE
    SET operations = EXCLUDED.operations, mapping = EXCLUDED.mapping, event_type = EXCLUDED.event_type,
        columns = EXCLUDED.columns, record_id_column = EXCLUDED.record_id_column,
        user_id_column = EXCLUDED.user_id_column, organization_id = EXCLUDED.organization_id,
        mapper = EXCLUDED.mapper, priority = EXCLUDED.priority, updated_at = now()
  RETURNING * INTO cfg;

  IF existing IS NOT NULL THEN
    EXECUTE format('DROP TRIGGER %I ON %s', trg_name, target);
  END IF;
  -- The statement-level trigger (one INSERT of events per statement) only for plain tables: transition
  -- tables are not allowed on partitions, and a partitioned table's statement-level trigger does not
  -- fire for rows written straight into its partitions, whereas a row-level one is cloned to them.
  IF ops = ARRAY['INSERT'] AND tbl.relkind = 'r' AND NOT tbl.relispartition THEN
    EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS carteiro_new_rows '
                   'FOR EACH STATEMENT EXECUTE FUNCTION %I.capture_inserted_rows(%L)',
                   trg_name, target, current_schema(), cfg.id);
  ELSE
    EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s FOR EACH ROW EXECUTE FUNCTION %I.capture_changed_row(%L)',
                   trg_name, array_to_string(ops, ' OR '), target, current_schema(), cfg.id);
  END IF;
  RETURN cfg;
END
$$;

-- Whether a trigger is the one attached for a capture: Carteiro's trigger functions, given its id.
CREATE FUNCTION capture_trigger_of(t pg_trigger, capture_id uuid) RETURNS boolean
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT t.tgnargs = 1 AND t.tgargs = convert_to(capture_id::text, 'UTF8') || '\x00'::bytea
     AND t.tgfoid IN ('capture_inserted_rows'::regproc, 'capture_changed_row'::regproc)
$$;

CREATE OR REPLACE FUNCTION uncapture_table(target text, trigger_name text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
#variable_conflict use_variable
DECLARE
  parts    text[] := parse_ident(target);
  sch      text := CASE WHEN cardinality(parts) > 1 THEN parts[1] ELSE 'public' END;
  tbl      text := parts[cardinality(parts)];
  rel      regclass := to_regclass(format('%I.%I', sch, tbl));
  t        record;
  dropped  integer := 0;
  removed  integer := 0;
BEGIN
  -- The triggers of the captures configured under this name, wherever their tables are now (a table
  -- renamed since keeps its trigger), then any other capture trigger on the table (orphaned ones).
  FOR t IN
    SELECT tg.tgname, tg.tgrelid::regclass AS rel
    FROM pg_trigger tg JOIN table_captures c ON capture_trigger_of(tg, c.id)
    WHERE c.schema_name = sch AND c.table_name = tbl AND (trigger_name IS NULL OR c.trigger_name = trigger_name)
    UNION
    SELECT tg.tgname, tg.tgrelid::regclass
    FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid
    WHERE rel IS NOT NULL AND tg.tgrelid = rel AND p.proname IN ('capture_inserted_rows', 'capture_changed_row')
      AND p.pronamespace = current_schema()::regnamespace
      AND (trigger_name IS NULL OR tg.tgname = trigger_name)
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
    dropped := dropped + 1;
  END LOOP;
  WITH gone AS (
    DELETE FROM table_captures c
    WHERE c.schema_name = sch AND c.table_name = tbl AND (trigger_name IS NULL OR c.trigger_name = trigger_name)
    RETURNING c.trigger_name
  )
  SELECT greatest(dropped, count(*)::integer) INTO removed FROM gone;
  RETURN removed;
END
$$;

-- Re-attach INSERT-only captures of partitioned tables with the row-level trigger (item 1).
DO $$
DECLARE
  c table_captures;
BEGIN
  FOR c IN
    SELECT tc.* FROM table_captures tc
    JOIN pg_class r ON r.oid = to_regclass(format('%I.%I', tc.schema_name, tc.table_name))
    WHERE r.relkind = 'p' AND tc.operations = ARRAY['INSERT']
  LOOP
    PERFORM capture_table(format('%I.%I', c.schema_name, c.table_name)::regclass, c.event_type, c.operations, c.columns,
                          c.organization_id, c.trigger_name, c.record_id_column, c.user_id_column,
                          CASE c.priority WHEN 1 THEN 'high' ELSE 'normal' END, c.mapping, c.mapper);
  END LOOP;
END
$$;

SELECT set_config('search_path', current_setting('carteiro.path_before_0015'), true);
