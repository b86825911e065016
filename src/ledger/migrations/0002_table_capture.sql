-- Carteiro ledger, version 2: table capture. A row written to a captured table becomes an event in
-- webhook_events IN THE SAME TRANSACTION (so a committed row always yields a webhook and a rolled-back
-- one never does); the fan-out trigger of 0001 then adds the dispatch rows and NOTIFYs the workers.
-- See docs/triggers.md for the user-facing description.
--
-- SQL API (all in Carteiro's schema):
--   capture_table(target regclass, event_type text, operations text[], columns text[], organization_id uuid,
--                 trigger_name text, record_id_column text, user_id_column text, priority text,
--                 mapping text, mapper regprocedure) → table_captures        attach (or re-configure) a capture
--   uncapture_table(target text, trigger_name text DEFAULT NULL) → integer  detach; works on dropped tables too
--   install_seed_triggers(target_schema text, organization_id uuid) → (table_name, trigger_name, installed)
--   uninstall_seed_triggers(target_schema text) → integer
--   map_captured_row(mapping, event_type, op, record, old_record, organization_id) → jsonb   (the Supabase ingress)
--
-- Failure rule, for every trigger here:
--   * a MAPPING error (a projected column that is gone, a mapper that raises, an organization that is not
--     Carteiro's, a row without the id a seed event needs) never reaches the user's write: it is stored
--     as an event with status 'failed' and the error in error_message, and is never delivered;
--   * a LEDGER write that cannot happen (webhook_events itself rejects the row) is raised into the
--     user's transaction, which then rolls back. Losing the event silently would break the promise that
--     a committed row always yields a webhook; failing the write keeps row and event consistent.
--
-- search_path: these functions are SECURITY DEFINER (they run from the user's tables, often as a role
-- with no rights on Carteiro's schema, e.g. Supabase's `authenticated`), so their path is pinned to
-- "<schema>, pg_catalog, pg_temp": with pg_temp last a caller's temporary table cannot stand in for
-- table_captures. The previous path is restored at the end of this file for the migrations after it.
SELECT set_config('carteiro.path_before_0002', current_setting('search_path'), true);
SELECT set_config('search_path', format('%I, pg_catalog, pg_temp', current_schema()), true);

-- One row per trigger Carteiro attached to a table, with how its rows become events.
--   mapping 'row':      event_type (with '{op}' → created/updated/deleted), data = the row or `columns` of it
--   mapping 'seed.*':   the seed's five triggers (map_seed_* below)
--   mapping 'function': `mapper(op text, record jsonb, old_record jsonb) RETURNS jsonb`, see capture_event
CREATE TABLE table_captures (
  id                uuid PRIMARY KEY DEFAULT uuid_v7(),
  schema_name       text NOT NULL,
  table_name        text NOT NULL,
  trigger_name      text NOT NULL,
  operations        text[] NOT NULL
                    CHECK (cardinality(operations) > 0 AND operations <@ ARRAY['INSERT', 'UPDATE', 'DELETE']),
  mapping           text NOT NULL DEFAULT 'row'
                    CHECK (mapping IN ('row', 'function', 'seed.user', 'seed.agent', 'seed.conversation', 'seed.message', 'seed.integration')),
  event_type        text,
  columns           text[],
  record_id_column  text NOT NULL DEFAULT 'id',
  user_id_column    text NOT NULL DEFAULT 'user_id',
  -- NULL: the row's organization_id column when it names a Carteiro organization, else the default one.
  organization_id   uuid REFERENCES organizations(id),
  mapper            regprocedure,
  priority          smallint NOT NULL DEFAULT 0 CHECK (priority IN (0, 1)),
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  UNIQUE (schema_name, table_name, trigger_name),
  CHECK (mapping <> 'row' OR event_type IS NOT NULL),
  CHECK ((mapping = 'function') = (mapper IS NOT NULL))
);

-- What a mapping produced for one row; event_type NULL means "this change makes no event".
CREATE TYPE captured_event AS (
  event_type       text,
  organization_id  uuid,
  user_id          text,
  record_id        text,
  data             jsonb,
  priority         smallint
);

-- A column's value, with JSON null and a missing column alike as SQL NULL: a table without an optional
-- column must map exactly like one where it is empty.
CREATE FUNCTION capture_value(record jsonb, col text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT nullif(record -> col, 'null'::jsonb) $$;

-- An id-like column as a JSON string (numeric and uuid ids alike), or NULL.
CREATE FUNCTION capture_text(record jsonb, col text) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT to_jsonb(record ->> col) $$;

-- A column the event cannot do without: raising here makes the row a failed event, never a failed write.
CREATE FUNCTION capture_required(record jsonb, col text, tbl text) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path FROM CURRENT AS $$
BEGIN
  IF record ->> col IS NULL THEN
    RAISE EXCEPTION 'this % row has no "%" value, which its event needs', tbl, col;
  END IF;
  RETURN to_jsonb(record ->> col);
END
$$;

-- The object without its null-valued top-level keys (nested objects are left as they are).
CREATE FUNCTION capture_drop_nulls(obj jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb) FROM jsonb_each(obj) WHERE jsonb_typeof(value) <> 'null'
$$;

-- ---------------------------------------------------------------------------------------------------
-- Mappers: (op, record, old_record) → {event_type, data, record_id, user_id[, organization_id]} or NULL.
-- record is NULL for DELETE, old_record NULL for INSERT. Columns are read through jsonb, so a column a
-- table does not have is simply absent from the data.

-- users → user.registered. Reads id (required), email, name (else full_name, else the name or full_name
-- in raw_user_meta_data, where Supabase's auth.users keeps them), metadata (when an object).
CREATE FUNCTION map_seed_user(op text, record jsonb, old_record jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT AS $$
  SELECT jsonb_build_object(
    'event_type', 'user.registered',
    'record_id', record ->> 'id',
    'user_id', record ->> 'id',
    'data', capture_drop_nulls(jsonb_build_object(
      'user_id', capture_required(record, 'id', 'users'),
      'email', capture_value(record, 'email'),
      'name', coalesce(capture_value(record, 'name'), capture_value(record, 'full_name'),
                       capture_value(record -> 'raw_user_meta_data', 'name'), capture_value(record -> 'raw_user_meta_data', 'full_name')),
      'metadata', CASE WHEN jsonb_typeof(record -> 'metadata') = 'object' THEN record -> 'metadata' END)))
$$;

-- agents → agent.created. Reads id (required), name, user_id, description, metadata.
CREATE FUNCTION map_seed_agent(op text, record jsonb, old_record jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT AS $$
  SELECT jsonb_build_object(
    'event_type', 'agent.created',
    'record_id', record ->> 'id',
    'user_id', record ->> 'user_id',
    'data', capture_drop_nulls(jsonb_build_object(
      'agent_id', capture_required(record, 'id', 'agents'),
      'name', capture_value(record, 'name'),
      'user_id', capture_text(record, 'user_id'),
      'description', capture_value(record, 'description'),
      'metadata', CASE WHEN jsonb_typeof(record -> 'metadata') = 'object' THEN record -> 'metadata' END)))
$$;

-- conversations → conversation.created. Reads id (required), agent_id, user_id, channel.
CREATE FUNCTION map_seed_conversation(op text, record jsonb, old_record jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT AS $$
  SELECT jsonb_build_object(
    'event_type', 'conversation.created',
    'record_id', record ->> 'id',
    'user_id', record ->> 'user_id',
    'data', capture_drop_nulls(jsonb_build_object(
      'conversation_id', capture_required(record, 'id', 'conversations'),
      'agent_id', capture_text(record, 'agent_id'),
      'user_id', capture_text(record, 'user_id'),
      'channel', capture_value(record, 'channel'))))
$$;

-- messages → conversation.message.added. Reads id (required), conversation_id (required), user_id,
-- role, content.
CREATE FUNCTION map_seed_message(op text, record jsonb, old_record jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE SET search_path FROM CURRENT AS $$
  SELECT jsonb_build_object(
    'event_type', 'conversation.message.added',
    'record_id', record ->> 'id',
    'user_id', record ->> 'user_id',
    'data', capture_drop_nulls(jsonb_build_object(
      'message_id', capture_required(record, 'id', 'messages'),
      'conversation_id', capture_required(record, 'conversation_id', 'messages'),
      'user_id', capture_text(record, 'user_id'),
      'role', capture_value(record, 'role'),
      'content', capture_value(record, 'content'))))
$$;

-- Whether an external_integrations row is connected: its is_active boolean when set; else its status
-- text ('active', 'connected', 'enabled' mean connected); else (neither column) connected.
CREATE FUNCTION seed_integration_active(record jsonb) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE
    WHEN record IS NULL THEN false
    WHEN jsonb_typeof(record -> 'is_active') = 'boolean' THEN (record ->> 'is_active')::boolean
    WHEN jsonb_typeof(record -> 'status') = 'string' THEN lower(record ->> 'status') IN ('active', 'connected', 'enabled')
    ELSE true
  END
$$;

-- external_integrations → integration.{whatsapp,openai}.connected when a row becomes connected (inserted
-- connected, or updated from not connected), integration.disconnected when it stops being connected.
-- Reads id (required), provider (required), user_id, is_active / status, phone_number.
-- Other providers make no "connected" event (the catalog has none), but do make integration.disconnected.
CREATE FUNCTION map_seed_integration(op text, record jsonb, old_record jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path FROM CURRENT AS $$
DECLARE
  row_now   jsonb := coalesce(record, old_record);
  was       boolean := op <> 'INSERT' AND seed_integration_active(old_record);
  is_now    boolean := op <> 'DELETE' AND seed_integration_active(record);
  provider  text;
  event     text;
BEGIN
  IF was = is_now THEN
    RETURN NULL;
  END IF;
  provider := lower(capture_required(row_now, 'provider', 'external_integrations') #>> '{}');
  IF is_now THEN
    event := CASE
      WHEN provider LIKE '%whatsapp%' THEN 'integration.whatsapp.connected'
      WHEN provider LIKE '%openai%' THEN 'integration.openai.connected'
    END;
    IF event IS NULL THEN
      RETURN NULL;
    END IF;
  ELSE
    event := 'integration.disconnected';
  END IF;
  RETURN jsonb_build_object(
    'event_type', event,
    'record_id', row_now ->> 'id',
    'user_id', row_now ->> 'user_id',
    'data', capture_drop_nulls(jsonb_build_object(
      'integration_id', capture_required(row_now, 'id', 'external_integrations'),
      'user_id', capture_text(row_now, 'user_id'),
      'provider', to_jsonb(provider),
      'phone_number', CASE WHEN is_now THEN capture_value(row_now, 'phone_number') END)));
END
$$;

-- The generic mapping: data is the row (the new one; the old one for DELETE), or only `columns` of it.
-- An UPDATE that leaves those columns as they were makes no event. A projected column the table no
-- longer has is a mapping error (the capture was configured for a different table shape).
CREATE FUNCTION map_row(event_type text, columns text[], record_id_column text, user_id_column text,
                        op text, record jsonb, old_record jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path FROM CURRENT AS $$
DECLARE
  source   jsonb := CASE WHEN op = 'DELETE' THEN old_record ELSE record END;
  missing  text[];
  data     jsonb := source;
  previous jsonb := old_record;
BEGIN
  IF columns IS NOT NULL THEN
    missing := ARRAY(SELECT c FROM unnest(columns) AS c WHERE NOT source ? c);
    IF cardinality(missing) > 0 THEN
      RAISE EXCEPTION 'captured column(s) % are not in the row', array_to_string(missing, ', ');
    END IF;
    data := (SELECT jsonb_object_agg(c, source -> c) FROM unnest(columns) AS c);
    previous := (SELECT jsonb_object_agg(c, old_record -> c) FROM unnest(columns) AS c);
  END IF;
  IF op = 'UPDATE' AND data = previous THEN
    RETURN NULL;
  END IF;
  RETURN jsonb_build_object(
    'event_type', replace(event_type, '{op}', CASE op WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END),
    'record_id', source ->> record_id_column,
    'user_id', source ->> user_id_column,
    'data', data);
END
$$;

-- ---------------------------------------------------------------------------------------------------
-- The organization an event belongs to: the capture's own, else the one the mapping or the row's
-- organization_id column names (it must be a Carteiro organization: writing a tenant's row into
-- another organization, or into one no endpoint belongs to, would be a leak or a silent loss), else
-- the default organization.
CREATE FUNCTION capture_organization(fixed uuid, named text) RETURNS uuid
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
  IF NOT EXISTS (SELECT 1 FROM organizations WHERE id = named::uuid) THEN
    RAISE EXCEPTION 'organization_id % is not a Carteiro organization', named
      USING HINT = 'create it in Carteiro, or give the capture a fixed organization_id';
  END IF;
  RETURN named::uuid;
END
$$;

-- Maps one row change by a capture's configuration. Raises on any mapping error; returns NULL (or a
-- row whose event_type is NULL) when the change makes no event.
--   in:  cfg (only mapping, event_type, columns, *_column, organization_id, mapper, priority are read),
--        op 'INSERT' | 'UPDATE' | 'DELETE', record (NULL for DELETE), old_record (NULL for INSERT)
--   out: a captured_event, validated: event_type is a dotted lower-case name, data is not NULL
CREATE FUNCTION capture_event(cfg table_captures, op text, record jsonb, old_record jsonb) RETURNS captured_event
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
  result.user_id := mapped ->> 'user_id';
  result.organization_id := capture_organization(cfg.organization_id,
    coalesce(mapped ->> 'organization_id', coalesce(record, old_record) ->> 'organization_id'));
  result.priority := coalesce(cfg.priority, 0);
  RETURN result;
END
$$;

-- Writes one row change's event, or on a mapping error a failed event carrying the error (see the
-- failure rule at the top). The ledger INSERTs are deliberately outside the exception block.
CREATE FUNCTION capture_row(cfg table_captures, tbl_schema text, tbl text, trigger text,
                            op text, record jsonb, old_record jsonb) RETURNS void
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
DECLARE
  ev       captured_event;
  failure  text;
  row_now  jsonb := coalesce(record, old_record);
  org      uuid;
  failed   uuid;
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
  INSERT INTO webhook_events (organization_id, event_type, event_source, table_name, record_id, user_id, data, status, error_message)
  VALUES (org,
          coalesce(replace(cfg.event_type, '{op}', CASE op WHEN 'INSERT' THEN 'created' WHEN 'UPDATE' THEN 'updated' ELSE 'deleted' END),
                   'carteiro.capture.failed'),
          'supabase', tbl, row_now ->> coalesce(cfg.record_id_column, 'id'), row_now ->> coalesce(cfg.user_id_column, 'user_id'),
          jsonb_build_object('type', op, 'schema', tbl_schema, 'table', tbl, 'record', record, 'old_record', old_record),
          'failed', format('capture %s on %s.%s: %s', trigger, tbl_schema, tbl, failure))
  RETURNING id INTO failed;
  -- Fan-out routes only pending events, so a failed capture is kept for inspection and never delivered.
  UPDATE webhook_events SET processed_at = now() WHERE id = failed;
END
$$;

-- Trigger function for INSERT-only captures: FOR EACH STATEMENT with the inserted rows as a transition
-- table, so a 1,000-row INSERT makes its 1,000 events in one INSERT (and one fan-out) instead of 1,000.
-- If any row fails to map, that statement is undone and every row goes through capture_row, which
-- stores the bad ones as failed events; a ledger failure then raises there.
--   TG_ARGV[0]: table_captures.id     transition table: carteiro_new_rows
CREATE FUNCTION capture_inserted_rows() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  cfg table_captures;
  r   record;
BEGIN
  SELECT * INTO cfg FROM table_captures WHERE id = TG_ARGV[0]::uuid;
  IF FOUND THEN
    BEGIN
      INSERT INTO webhook_events (organization_id, event_type, event_source, table_name, record_id, user_id, data, priority)
      SELECT e.organization_id, e.event_type, 'supabase', TG_TABLE_NAME, e.record_id, e.user_id, e.data, e.priority
      FROM carteiro_new_rows n
      CROSS JOIN LATERAL capture_event(cfg, 'INSERT', to_jsonb(n), NULL) e
      WHERE e.event_type IS NOT NULL;
      RETURN NULL;
    EXCEPTION WHEN OTHERS THEN
      NULL; -- retried row by row below
    END;
  END IF;
  FOR r IN SELECT to_jsonb(n) AS record FROM carteiro_new_rows n LOOP
    PERFORM capture_row(cfg, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_NAME, 'INSERT', r.record, NULL);
  END LOOP;
  RETURN NULL;
END
$$;

-- Trigger function for captures that include UPDATE or DELETE: FOR EACH ROW, since pairing old and new
-- rows needs OLD and NEW (transition tables cannot pair them without knowing the key).
--   TG_ARGV[0]: table_captures.id
CREATE FUNCTION capture_changed_row() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  cfg table_captures;
BEGIN
  SELECT * INTO cfg FROM table_captures WHERE id = TG_ARGV[0]::uuid;
  PERFORM capture_row(cfg, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_NAME, TG_OP,
                      CASE WHEN TG_OP <> 'DELETE' THEN to_jsonb(NEW) END,
                      CASE WHEN TG_OP <> 'INSERT' THEN to_jsonb(OLD) END);
  RETURN NULL;
END
$$;

-- Only whoever owns Carteiro's schema may attach these (CREATE TRIGGER needs EXECUTE; firing does not):
-- otherwise anyone could point a trigger of theirs at another organization's capture.
REVOKE EXECUTE ON FUNCTION capture_inserted_rows(), capture_changed_row() FROM PUBLIC;

-- ---------------------------------------------------------------------------------------------------
-- Attaches a capture to a table, or re-configures the one with the same trigger name. Returns its row.
--   target          the table ('public.orders'); not a view, not one of Carteiro's own tables
--   event_type      for mapping 'row': the event type, '{op}' standing for created/updated/deleted
--   operations      any of INSERT, UPDATE, DELETE (INSERT alone uses the set-based statement trigger)
--   columns         data = only these columns (NULL: the whole row); each must exist now
--   organization_id fixed organization (NULL: the row's organization_id column, else the default one)
--   trigger_name    default carteiro_<table>_<operations>
--   priority        'normal' | 'high'
CREATE FUNCTION capture_table(
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

  trg_name := coalesce(trigger_name, left(format('carteiro_%s_%s', tbl.relname, lower(array_to_string(ops, '_'))), 63));
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
  -- Transition tables are not allowed on partitions: those get the row-level trigger.
  IF ops = ARRAY['INSERT'] AND NOT tbl.relispartition THEN
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

-- Detaches captures from a table: the named one, or all of them. `target` is text ('public.orders',
-- or 'orders' for public) so the configuration of a table that was dropped can still be removed.
-- Returns how many captures were removed.
CREATE FUNCTION uncapture_table(target text, trigger_name text DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
#variable_conflict use_variable
DECLARE
  parts    text[] := parse_ident(target);
  sch      text := CASE WHEN cardinality(parts) > 1 THEN parts[1] ELSE 'public' END;
  tbl      text := parts[cardinality(parts)];
  rel      regclass := to_regclass(format('%I.%I', sch, tbl));
  t        record;
  removed  integer := 0;
BEGIN
  IF rel IS NOT NULL THEN
    -- Every capture trigger on the table, configured or orphaned.
    FOR t IN
      SELECT tg.tgname FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid
      WHERE tg.tgrelid = rel AND p.proname IN ('capture_inserted_rows', 'capture_changed_row')
        AND p.pronamespace = current_schema()::regnamespace
        AND (trigger_name IS NULL OR tg.tgname = trigger_name)
    LOOP
      EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, rel);
      removed := removed + 1;
    END LOOP;
  END IF;
  WITH gone AS (
    DELETE FROM table_captures c
    WHERE c.schema_name = sch AND c.table_name = tbl AND (trigger_name IS NULL OR c.trigger_name = trigger_name)
    RETURNING c.trigger_name
  )
  SELECT greatest(removed, count(*)::integer) INTO removed FROM gone;
  RETURN removed;
END
$$;

-- The seed's five triggers, attached to whichever of its tables exist in target_schema (run again after
-- creating more of them: it is idempotent). Returns one row per seed trigger. On Supabase,
-- install_seed_triggers('auth') captures sign-ups from auth.users as user.registered.
CREATE FUNCTION install_seed_triggers(target_schema text DEFAULT 'public', organization_id uuid DEFAULT NULL)
RETURNS TABLE (table_name text, trigger_name text, installed boolean)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
#variable_conflict use_variable
DECLARE
  s   record;
  rel regclass;
BEGIN
  FOR s IN
    SELECT * FROM (VALUES
      ('users', 'webhook_user_registration', 'seed.user', 'user.registered', ARRAY['INSERT']),
      ('agents', 'webhook_agent_created', 'seed.agent', 'agent.created', ARRAY['INSERT']),
      ('conversations', 'webhook_conversation_created', 'seed.conversation', 'conversation.created', ARRAY['INSERT']),
      ('messages', 'webhook_message_added', 'seed.message', 'conversation.message.added', ARRAY['INSERT']),
      ('external_integrations', 'webhook_integration_connected', 'seed.integration', NULL, ARRAY['INSERT', 'UPDATE'])
    ) AS v(tbl, trg, kind, evt, ops)
  LOOP
    -- Only tables: a view of the same name is reported as not installed rather than failing the rest.
    SELECT c.oid INTO rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = target_schema AND c.relname = s.tbl AND c.relkind IN ('r', 'p');
    table_name := s.tbl;
    trigger_name := s.trg;
    installed := rel IS NOT NULL;
    IF installed THEN
      PERFORM capture_table(rel, s.evt, s.ops, organization_id => organization_id, trigger_name => s.trg, mapping => s.kind);
    END IF;
    RETURN NEXT;
  END LOOP;
END
$$;

CREATE FUNCTION uninstall_seed_triggers(target_schema text DEFAULT 'public') RETURNS integer
LANGUAGE sql VOLATILE SET search_path FROM CURRENT AS $$
  SELECT coalesce(sum(uncapture_table(format('%I.%I', target_schema, v.tbl), v.trg)), 0)::integer
  FROM (VALUES ('users', 'webhook_user_registration'), ('agents', 'webhook_agent_created'),
               ('conversations', 'webhook_conversation_created'), ('messages', 'webhook_message_added'),
               ('external_integrations', 'webhook_integration_connected')) AS v(tbl, trg)
$$;

-- One row change mapped exactly as a capture would, without writing anything: the Supabase Database
-- Webhooks ingress uses it so a row gives the same event whether it came by trigger or by HTTP.
-- Returns {event_type, organization_id, user_id, record_id, data, priority} or NULL (no event);
-- raises on a mapping error.
CREATE FUNCTION map_captured_row(mapping text, event_type text, op text, record jsonb, old_record jsonb,
                                 organization_id uuid DEFAULT NULL) RETURNS jsonb
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT AS $$
#variable_conflict use_variable
DECLARE
  cfg table_captures;
  ev  captured_event;
BEGIN
  cfg.mapping := mapping;
  cfg.event_type := event_type;
  cfg.record_id_column := 'id';
  cfg.user_id_column := 'user_id';
  cfg.organization_id := organization_id;
  cfg.priority := 0;
  ev := capture_event(cfg, op, record, old_record);
  IF ev.event_type IS NULL THEN
    RETURN NULL;
  END IF;
  RETURN to_jsonb(ev);
END
$$;

SELECT set_config('search_path', current_setting('carteiro.path_before_0002'), true);
