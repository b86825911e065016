-- Carteiro ledger, version 1.
-- Runs with search_path set to Carteiro's schema (default "webhooks"); names are unqualified on purpose
-- so the schema stays configurable. Functions pin their search_path FROM CURRENT for the same reason.

-- Time-ordered UUIDs (version 7): 48 bits of Unix milliseconds, then randomness. Postgres 15 has no
-- built-in uuidv7(), and time order keeps the primary-key indexes append-mostly.
CREATE OR REPLACE FUNCTION uuid_v7() RETURNS uuid
LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_byte(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      6, (floor(random() * 16)::int | 112)),
    'hex')::uuid
$$;

CREATE TABLE organizations (
  id          uuid PRIMARY KEY DEFAULT uuid_v7(),
  name        text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The organization the admin key acts for when a request names none.
INSERT INTO organizations (id, name) VALUES ('00000000-0000-7000-8000-000000000000', 'default');

-- Seed table. `secret` holds ciphertext (AES-256-GCM), never the secret itself.
CREATE TABLE webhook_endpoints (
  id                          uuid PRIMARY KEY DEFAULT uuid_v7(),
  organization_id             uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  user_id                     text,
  name                        text NOT NULL,
  url                         text NOT NULL,
  events                      text[] NOT NULL DEFAULT '{*}',
  secret                      text,
  previous_secret             text,
  previous_secret_expires_at  timestamptz,
  kind                        text NOT NULL DEFAULT 'endpoint' CHECK (kind IN ('endpoint', 'n8n')),
  is_active                   boolean NOT NULL DEFAULT true,
  disabled_reason             text,
  description                 text,
  metadata                    jsonb NOT NULL DEFAULT '{}',
  rate_limit_per_second       integer CHECK (rate_limit_per_second > 0),
  success_count               bigint NOT NULL DEFAULT 0,
  failure_count               bigint NOT NULL DEFAULT 0,
  created_at                  timestamptz NOT NULL DEFAULT now(),
  updated_at                  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_org ON webhook_endpoints (organization_id, id);
-- Fan-out looks endpoints up by the patterns an event type matches (exact, prefix.*, *).
CREATE INDEX webhook_endpoints_events ON webhook_endpoints USING gin (events) WHERE is_active;

-- Seed table. user_id and record_id are text: the seed's own examples use ids like "test-user-123".
CREATE TABLE webhook_events (
  id               uuid PRIMARY KEY DEFAULT uuid_v7(),
  organization_id  uuid NOT NULL,
  event_type       text NOT NULL,
  event_source     text NOT NULL DEFAULT 'api'
                   CHECK (event_source IN ('supabase', 'api', 'manual', 'n8n', 'system')),
  table_name       text,
  record_id        text,
  user_id          text,
  data             jsonb NOT NULL,
  priority         smallint NOT NULL DEFAULT 0,
  status           text NOT NULL DEFAULT 'pending'
                   CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
  retry_count      integer NOT NULL DEFAULT 0,
  error_message    text,
  idempotency_key  text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  processed_at     timestamptz
)
-- Room on each page for the status update every event gets: no indexed column changes, so the new
-- row version stays on its page (a HOT update) and none of the five indexes is touched.
WITH (fillfactor = 85);
CREATE UNIQUE INDEX webhook_events_idempotency ON webhook_events (organization_id, idempotency_key)
  WHERE idempotency_key IS NOT NULL;
CREATE INDEX webhook_events_org_id ON webhook_events (organization_id, id DESC);
CREATE INDEX webhook_events_user ON webhook_events (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX webhook_events_created ON webhook_events (created_at);

-- One row per (event, endpoint): the delivery's state. This table IS the queue: workers claim due
-- pending rows with FOR UPDATE SKIP LOCKED, under a lease that expires if the worker dies.
CREATE TABLE webhook_dispatches (
  id                   uuid PRIMARY KEY DEFAULT uuid_v7(),
  organization_id      uuid NOT NULL,
  webhook_event_id     uuid NOT NULL REFERENCES webhook_events(id) ON DELETE CASCADE,
  webhook_endpoint_id  uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  status               text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'in_flight', 'succeeded', 'failed', 'cancelled', 'paused')),
  priority             smallint NOT NULL DEFAULT 0,
  attempts             integer NOT NULL DEFAULT 0,   -- every attempt ever (numbers the attempt log)
  round_attempts       integer NOT NULL DEFAULT 0,   -- attempts since the last (re)queue: drives backoff
  next_attempt_at      timestamptz NOT NULL DEFAULT now(),
  lease_expires_at     timestamptz,
  leased_by            text,
  last_status_code     integer,
  last_error           text,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  completed_at         timestamptz,
  UNIQUE (webhook_event_id, webhook_endpoint_id)
);
CREATE INDEX webhook_dispatches_due ON webhook_dispatches (priority DESC, next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_dispatches_leases ON webhook_dispatches (lease_expires_at) WHERE status = 'in_flight';
CREATE INDEX webhook_dispatches_endpoint ON webhook_dispatches (webhook_endpoint_id, status);

-- Seed table: one row per attempt. No foreign keys on purpose: this is the hottest insert path, and
-- retention and erasure delete by event id explicitly.
CREATE TABLE webhook_deliveries (
  id                    uuid PRIMARY KEY DEFAULT uuid_v7(),
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
  created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (webhook_event_id);
CREATE INDEX webhook_deliveries_created ON webhook_deliveries (created_at);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (webhook_endpoint_id, id DESC);

-- Seed table. Each workflow is delivered to through a linked endpoint of kind 'n8n', so it shares the
-- ledger, retries and attempt log of any endpoint.
CREATE TABLE n8n_workflows (
  id                   uuid PRIMARY KEY DEFAULT uuid_v7(),
  organization_id      uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  workflow_id          text NOT NULL,
  name                 text NOT NULL,
  webhook_url          text NOT NULL,
  event_types          text[] NOT NULL DEFAULT '{}',
  is_active            boolean NOT NULL DEFAULT true,
  success_count        bigint NOT NULL DEFAULT 0,
  failure_count        bigint NOT NULL DEFAULT 0,
  webhook_endpoint_id  uuid REFERENCES webhook_endpoints(id) ON DELETE SET NULL,
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now(),
  UNIQUE (organization_id, workflow_id)
);

-- Event types users add to the catalog beside the built-in ones.
CREATE TABLE event_types (
  organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name             text NOT NULL,
  description      text,
  schema           jsonb NOT NULL DEFAULT '{"type":"object"}',
  priority         text NOT NULL DEFAULT 'normal' CHECK (priority IN ('high', 'normal')),
  created_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, name)
);

-- The patterns an event type matches: '*', itself, and every prefix wildcard ('a.*', 'a.b.*').
CREATE OR REPLACE FUNCTION event_type_patterns(event_type text) RETURNS text[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT ARRAY['*', event_type] || ARRAY(
    SELECT array_to_string(p.parts[1:n], '.') || '.*'
    FROM (SELECT string_to_array(event_type, '.') AS parts) p, generate_series(1, cardinality(p.parts) - 1) AS n)
$$;

-- Fan-out lives in the database so every way an event arrives (the API's batched inserts, table
-- triggers, Supabase ingress, replays) gets it in the same transaction as the event itself.
--   in:   new_events, the rows the INSERT statement added (ON CONFLICT skips are not in it);
--         only 'pending' ones are routed (a capture may store an event already failed)
--   does: one webhook_dispatches row per (event, active endpoint whose filters match);
--         events no endpoint wants are completed at once;
--         NOTIFY <schema>_dispatch when anything became deliverable, so workers wake on commit.
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
    WHERE e.status = 'pending'
    RETURNING webhook_event_id
  ), unrouted AS (
    UPDATE webhook_events w
       SET status = 'completed', processed_at = now(), updated_at = now()
     WHERE w.id IN (SELECT id FROM new_events WHERE status = 'pending' EXCEPT SELECT webhook_event_id FROM ins)
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM unrouted) INTO dispatched, completed;
  -- A commit that notifies holds Postgres's global notify lock through its WAL flush, so notifying
  -- commits run one at a time (measured here: 510 vs 5,400 single-row commits/s). Writers that can
  -- notify after their commit instead (the API's intake) set carteiro.defer_notify for the transaction.
  IF dispatched > 0 AND coalesce(current_setting('carteiro.defer_notify', true), '') <> 'on' THEN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_dispatch', '');
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER webhook_events_fan_out
  AFTER INSERT ON webhook_events
  REFERENCING NEW TABLE AS new_events
  FOR EACH STATEMENT EXECUTE FUNCTION fan_out_new_events();

-- Liveness of delivery workers, for /health: each worker touches its row every few seconds.
CREATE TABLE worker_heartbeats (
  worker_id     text PRIMARY KEY,
  hostname      text NOT NULL,
  pid           integer NOT NULL,
  started_at    timestamptz NOT NULL DEFAULT now(),
  last_seen_at  timestamptz NOT NULL DEFAULT now()
);
