-- Carteiro ledger, version 6: the attempt log (webhook_deliveries) partitioned by day, so retention
-- drops whole days of attempts (DROP TABLE: a catalog change and an unlink) instead of deleting
-- hundreds of millions of rows one by one. docs/performance.md, "The ledger at hundreds of millions
-- of rows", explains the choices; in short:
--
--   * RANGE partitions on created_at, one per UTC day, named webhook_deliveries_pYYYYMMDD.
--     A day is the retention's granularity (at most one extra day of attempts is kept), keeps a
--     partition's indexes to one day of inserts (≤ 864M rows at 10k attempts/s), and keeps the
--     partition count near CARTEIRO_RETENTION_DAYS + 9, so lookups that cannot prune (by event id,
--     by endpoint) probe a few dozen small indexes, not hundreds (hourly partitions would).
--   * The primary key must contain the partition key: it is (id, created_at). Ids are uuid v7, so
--     still unique in practice; nothing references attempt rows by foreign key.
--   * A DEFAULT partition catches any row no day partition covers (maintenance behind, a clock far
--     off, a back-dated row), so recording an attempt never fails for lack of a partition.
--   * Maintenance (ensure_attempt_partitions, below) creates each day's partition days ahead, by
--     CREATE TABLE + ATTACH PARTITION (SHARE UPDATE EXCLUSIVE on the parent: inserts and reads go
--     on). Should the default already hold rows of that day, they are moved into the new partition
--     in the same transaction (Postgres refuses to attach over rows the default holds).
--   * drop_expired_attempt_partitions drops partitions entirely older than the retention cutoff,
--     keeping (moving to the default partition) the attempts of events retention itself keeps.
--
-- Existing installs: the old table is not copied. It becomes the partition "webhook_deliveries_legacy"
-- for everything up to the end of the current UTC day (its indexes become the partitions of the new
-- ones as they are); costs are one sequential read of the old table (validating the bound, so the
-- ATTACH needs no scan of its own) and one index build on (id, created_at) — which an operator can
-- do beforehand, without blocking, as
--   CREATE UNIQUE INDEX CONCURRENTLY webhook_deliveries_id_created ON <schema>.webhook_deliveries (id, created_at);
-- and this migration then uses it. Rows dated after the current day (clock skew) are moved out first.
-- An empty old table (a new install) is simply dropped.

-- 1. The old table steps aside; its index and constraint names go with it, so the new table can take them.
ALTER TABLE webhook_deliveries RENAME TO webhook_deliveries_legacy;
ALTER INDEX webhook_deliveries_event RENAME TO webhook_deliveries_legacy_event;
ALTER INDEX webhook_deliveries_created RENAME TO webhook_deliveries_legacy_created;
ALTER INDEX webhook_deliveries_endpoint RENAME TO webhook_deliveries_legacy_endpoint;
ALTER TABLE webhook_deliveries_legacy DROP CONSTRAINT webhook_deliveries_pkey;

-- 2. The partitioned attempt log: the seed's columns, exactly as before.
CREATE TABLE webhook_deliveries (
  id                    uuid NOT NULL DEFAULT uuid_v7(),
  organization_id       uuid NOT NULL,
  webhook_event_id      uuid NOT NULL,
  webhook_endpoint_id   uuid,
  dispatch_id           uuid,
  attempt_number        integer NOT NULL,
  success               boolean NOT NULL,
  status_code           integer,
  response_body         text,
  delivery_duration_ms  integer NOT NULL,
  error                 text,
  created_at            timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (id, created_at)
) PARTITION BY RANGE (created_at);
COMMENT ON TABLE webhook_deliveries IS
  'One row per delivery attempt, partitioned by UTC day of created_at (migration 0006); maintained by ensure_attempt_partitions() and drop_expired_attempt_partitions().';
-- The same indexes as before (0001), now one per partition.
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (webhook_event_id);      -- an event's attempts; retention and erasure by event
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);          -- last-hour stats; the orphan sweep
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (webhook_endpoint_id, id DESC); -- an endpoint's attempt log, newest first

-- Row level security as in 0004, on the table every query names. Partitions get RLS with no policy:
-- another role reads attempts through webhook_deliveries, never a partition directly.
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY webhook_deliveries_tenant ON webhook_deliveries
  USING (organization_id = ANY ((SELECT current_organization_ids())::uuid[]))
  WITH CHECK (organization_id = ANY ((SELECT current_organization_ids())::uuid[]));

-- Privileges an operator granted on the old table (e.g. SELECT to Supabase's `authenticated`) carry over.
DO $grants$
DECLARE
  g record;
BEGIN
  FOR g IN
    SELECT a.grantee, a.privilege_type, a.is_grantable
    FROM pg_class c, aclexplode(c.relacl) a
    WHERE c.oid = 'webhook_deliveries_legacy'::regclass AND a.grantee <> c.relowner
  LOOP
    EXECUTE format('GRANT %s ON webhook_deliveries TO %s%s', g.privilege_type,
                   CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(g.grantee)) END,
                   CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
END
$grants$;

CREATE TABLE webhook_deliveries_default PARTITION OF webhook_deliveries DEFAULT;
ALTER TABLE webhook_deliveries_default ENABLE ROW LEVEL SECURITY;

-- 3. Partition maintenance. Day boundaries are UTC whatever the session's time zone (SET timezone).

-- The attempt log's partitions with their ranges (NULL: unbounded), oldest first, the default last.
-- Bounds are read back from pg_get_expr, rendered in UTC/ISO by the function's own settings.
CREATE FUNCTION attempt_partitions()
RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz, is_default boolean)
LANGUAGE sql STABLE SET search_path FROM CURRENT SET timezone = 'UTC' SET datestyle = 'ISO, YMD' AS $$
  SELECT c.relname::text,
         substring(b.bound FROM $re$FROM \('([^']+)'\)$re$)::timestamptz,
         substring(b.bound FROM $re$TO \('([^']+)'\)$re$)::timestamptz,
         b.bound = 'DEFAULT'
  FROM pg_inherits i
  JOIN pg_class c ON c.oid = i.inhrelid
  CROSS JOIN LATERAL (SELECT pg_get_expr(c.relpartbound, c.oid) AS bound) b
  WHERE i.inhparent = 'webhook_deliveries'::regclass
  ORDER BY 4, 2 NULLS FIRST, 3
$$;

-- Serialises the two maintenance functions (per schema, so several Carteiro schemas in one database
-- do not wait on each other).
CREATE FUNCTION lock_attempt_partitions() RETURNS void
LANGUAGE sql VOLATILE SET search_path FROM CURRENT AS $$
  SELECT pg_advisory_xact_lock(hashtext('carteiro.attempt_partitions'),
                               hashtext((SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'webhook_deliveries'::regclass)))
$$;

-- Creates the day partitions from the UTC day of `at` through `days_ahead` days later, skipping days
-- a partition already covers (so it is idempotent, and never overlaps the legacy partition). Rows the
-- default partition holds for a new day are moved into it in the same transaction. Returns what it
-- created. Locks: the parent in SHARE UPDATE EXCLUSIVE (inserts and reads continue), the default
-- partition briefly in ACCESS EXCLUSIVE (only rows routed to it wait), both only when a partition is
-- missing. Callers should SET LOCAL lock_timeout: a long query on the default partition would
-- otherwise hold the maintenance, and the readers queued behind it.
CREATE FUNCTION ensure_attempt_partitions(days_ahead integer DEFAULT 7, at timestamptz DEFAULT now())
RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz, moved_rows bigint)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT SET timezone = 'UTC' AS $$
#variable_conflict use_variable
DECLARE
  nsp text := (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'webhook_deliveries'::regclass);
  default_name text;
  cols text := (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                WHERE attrelid = 'webhook_deliveries'::regclass AND attnum > 0 AND NOT attisdropped);
  day_start timestamptz;
  locked boolean := false;
BEGIN
  IF days_ahead IS NULL OR days_ahead < 0 OR days_ahead > 366 THEN
    RAISE EXCEPTION 'days_ahead must be between 0 and 366, not %', days_ahead;
  END IF;
  PERFORM lock_attempt_partitions();
  SELECT p.partition_name INTO default_name FROM attempt_partitions() p WHERE p.is_default;
  FOR i IN 0..days_ahead LOOP
    day_start := date_trunc('day', at, 'UTC') + i * interval '1 day';
    CONTINUE WHEN EXISTS (
      SELECT 1 FROM attempt_partitions() p
      WHERE NOT p.is_default
        AND coalesce(p.range_start, '-infinity') < day_start + interval '1 day'
        AND coalesce(p.range_end, 'infinity') > day_start);
    IF NOT locked THEN
      -- Parent first, then the default: the order in which every query and insert takes them.
      LOCK TABLE ONLY webhook_deliveries IN SHARE UPDATE EXCLUSIVE MODE;
      IF default_name IS NOT NULL THEN
        EXECUTE format('LOCK TABLE %I.%I IN ACCESS EXCLUSIVE MODE', nsp, default_name);
      END IF;
      locked := true;
    END IF;
    partition_name := 'webhook_deliveries_p' || to_char(day_start, 'YYYYMMDD');
    range_start := day_start;
    range_end := day_start + interval '1 day';
    EXECUTE format('CREATE TABLE %I.%I (LIKE %I.webhook_deliveries)', nsp, partition_name, nsp);
    moved_rows := 0;
    IF default_name IS NOT NULL THEN
      EXECUTE format('WITH moved AS (DELETE FROM %I.%I WHERE created_at >= $1 AND created_at < $2 RETURNING %s) '
                     'INSERT INTO %I.%I (%s) SELECT %s FROM moved', nsp, default_name, cols, nsp, partition_name, cols, cols)
        USING range_start, range_end;
      GET DIAGNOSTICS moved_rows = ROW_COUNT;
    END IF;
    -- Builds the partition's indexes (it has none yet), and checks the default holds nothing of this day.
    EXECUTE format('ALTER TABLE %I.webhook_deliveries ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                   nsp, nsp, partition_name, range_start, range_end);
    EXECUTE format('ALTER TABLE %I.%I ENABLE ROW LEVEL SECURITY', nsp, partition_name);
    RETURN NEXT;
  END LOOP;
END
$$;

-- Drops the partitions whose whole range ends at or before `cutoff` (oldest first, at most
-- `max_partitions` of them; NULL = all), never the default one. Retention keeps an event whose
-- deliveries are unfinished (pending, in flight, paused) whatever its age; its attempt rows in a
-- dropped partition are kept too: copied out first, and put back after the drop, where they land in
-- the default partition (no partition covers their day any more). The copy is driven by the events
-- older than the partition's end that are still in the ledger (those retention keeps, plus any not
-- purged yet), through the event-id indexes: it never scans the partition.
-- Locks: the parent in ACCESS EXCLUSIVE (DROP of a partition needs it) for the drop and the copy back
-- only; callers should SET LOCAL lock_timeout and retry later rather than queue inserts behind it.
-- approx_rows is the planner's estimate (pg_class.reltuples; 0 if never analysed): counting would read the partition.
CREATE FUNCTION drop_expired_attempt_partitions(cutoff timestamptz, max_partitions integer DEFAULT NULL)
RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz, approx_rows bigint, kept_rows bigint)
LANGUAGE plpgsql VOLATILE SET search_path FROM CURRENT SET timezone = 'UTC' AS $$
#variable_conflict use_variable
DECLARE
  nsp text := (SELECT relnamespace::regnamespace::text FROM pg_class WHERE oid = 'webhook_deliveries'::regclass);
  cols text := (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                WHERE attrelid = 'webhook_deliveries'::regclass AND attnum > 0 AND NOT attisdropped);
  p record;
  dropped integer := 0;
  dropped_since bigint;
BEGIN
  IF cutoff IS NULL THEN
    RAISE EXCEPTION 'cutoff must not be NULL';
  END IF;
  PERFORM lock_attempt_partitions();
  FOR p IN SELECT * FROM attempt_partitions() a WHERE NOT a.is_default AND a.range_end <= cutoff ORDER BY a.range_end LOOP
    EXIT WHEN max_partitions IS NOT NULL AND dropped >= max_partitions;
    partition_name := p.partition_name;
    range_start := p.range_start;
    range_end := p.range_end;
    SELECT greatest(c.reltuples, 0)::bigint INTO approx_rows FROM pg_class c
    WHERE c.oid = format('%I.%I', nsp, p.partition_name)::regclass;

    CREATE TEMP TABLE IF NOT EXISTS carteiro_kept_attempts (LIKE webhook_deliveries) ON COMMIT DROP;
    TRUNCATE pg_temp.carteiro_kept_attempts;
    EXECUTE format(
      'INSERT INTO pg_temp.carteiro_kept_attempts (%s) SELECT %s FROM %I.%I a '
      'WHERE a.webhook_event_id IN (SELECT e.id FROM %I.webhook_events e WHERE e.created_at < $1 '
      '  AND EXISTS (SELECT 1 FROM %I.webhook_dispatches d WHERE d.webhook_event_id = e.id '
      '              AND d.status IN (''pending'', ''in_flight'', ''paused'')))',
      cols, cols, nsp, p.partition_name, nsp, nsp) USING p.range_end;
    GET DIAGNOSTICS kept_rows = ROW_COUNT;

    -- Parent first (as every query takes it), then DROP takes the partition and the default.
    LOCK TABLE ONLY webhook_deliveries IN ACCESS EXCLUSIVE MODE;
    IF kept_rows > 0 THEN
      -- An erasure (or another process's purge) may have deleted one of these events since the copy;
      -- with the lock held none can start, so what is gone now stays gone: never bring its rows back.
      DELETE FROM pg_temp.carteiro_kept_attempts k WHERE NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.id = k.webhook_event_id);
      GET DIAGNOSTICS dropped_since = ROW_COUNT;
      kept_rows := kept_rows - dropped_since;
    END IF;
    EXECUTE format('DROP TABLE %I.%I', nsp, p.partition_name);
    IF kept_rows > 0 THEN
      EXECUTE format('INSERT INTO %I.webhook_deliveries (%s) SELECT %s FROM pg_temp.carteiro_kept_attempts', nsp, cols, cols);
    END IF;
    dropped := dropped + 1;
    RETURN NEXT;
  END LOOP;
  DROP TABLE IF EXISTS pg_temp.carteiro_kept_attempts;
END
$$;

-- 4. The old rows: attached as they are, or the old table dropped when it is empty.
DO $legacy$
DECLARE
  newest timestamptz;
  bound timestamptz;   -- the legacy partition covers (MINVALUE, bound): through the current UTC day
  moved bigint := 0;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM webhook_deliveries_legacy) THEN
    DROP TABLE webhook_deliveries_legacy;
    RETURN;
  END IF;
  -- Through the created_at index: no scan.
  SELECT max(created_at) INTO newest FROM webhook_deliveries_legacy;
  bound := date_trunc('day', now(), 'UTC') + interval '1 day';

  -- Rows dated past the current day (a clock ahead) would stretch the legacy range over the days to
  -- come; they are few, so they are moved through the new table instead.
  IF newest >= bound THEN
    CREATE TEMP TABLE carteiro_future_attempts ON COMMIT DROP AS
      SELECT * FROM webhook_deliveries_legacy WHERE created_at >= bound;
    DELETE FROM webhook_deliveries_legacy WHERE created_at >= bound;
    GET DIAGNOSTICS moved = ROW_COUNT;
  END IF;

  -- The primary key on (id, created_at), which the parent's requires of each partition: an index
  -- built beforehand (CONCURRENTLY, see the top of this file) is used as is.
  IF EXISTS (SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = 'webhook_deliveries_legacy'::regclass AND c.relname = 'webhook_deliveries_id_created'
               AND i.indisunique AND i.indisvalid AND i.indpred IS NULL AND i.indexprs IS NULL
               AND i.indkey::text = (SELECT string_agg(attnum::text, ' ' ORDER BY o) FROM unnest(ARRAY['id', 'created_at']) WITH ORDINALITY AS n(col, o)
                                     JOIN pg_attribute a ON a.attrelid = 'webhook_deliveries_legacy'::regclass AND a.attname = n.col)) THEN
    ALTER INDEX webhook_deliveries_id_created RENAME TO webhook_deliveries_legacy_pkey;
  ELSE
    DROP INDEX IF EXISTS webhook_deliveries_id_created;
    CREATE UNIQUE INDEX webhook_deliveries_legacy_pkey ON webhook_deliveries_legacy (id, created_at);
  END IF;
  ALTER TABLE webhook_deliveries_legacy ADD CONSTRAINT webhook_deliveries_legacy_pkey PRIMARY KEY USING INDEX webhook_deliveries_legacy_pkey;

  -- A validated CHECK that implies the partition bound lets ATTACH skip its own scan; once attached,
  -- the partition constraint says the same, so the CHECK goes.
  EXECUTE format('ALTER TABLE webhook_deliveries_legacy ADD CONSTRAINT webhook_deliveries_legacy_bound CHECK (created_at < %L)', bound);
  EXECUTE format('ALTER TABLE webhook_deliveries ATTACH PARTITION webhook_deliveries_legacy FOR VALUES FROM (MINVALUE) TO (%L)', bound);
  ALTER TABLE webhook_deliveries_legacy DROP CONSTRAINT webhook_deliveries_legacy_bound;

  PERFORM ensure_attempt_partitions();
  IF moved > 0 THEN
    INSERT INTO webhook_deliveries SELECT * FROM pg_temp.carteiro_future_attempts;
    DROP TABLE pg_temp.carteiro_future_attempts;
  END IF;
END
$legacy$;

-- 5. Today's partition and the next seven days' (a no-op when step 4 made them).
SELECT ensure_attempt_partitions();
