-- Carteiro ledger, version 4: tenancy.
--   api_keys              an organization's keys: only a SHA-256 of each key is kept
--   audit_log             every management action: who (which key), what, when, from where
--   organization_members  who acts for an organization inside Postgres: Supabase users and database roles
--   row level security    on every table that holds an organization's rows (see docs/security.md)
--
-- Row level security is the second wall. The first is in the queries: every ledger query filters by
-- the caller's organization. Carteiro's own connections own these tables, and Postgres does not apply
-- RLS to a table's owner (no FORCE here on purpose: the worker claims work across all organizations),
-- so the policies below bind every OTHER role: a tenant role used by a backend, Supabase's
-- `authenticated` and `anon`, a reporting role. Policies are for PUBLIC, so they need no role to exist.

CREATE TABLE api_keys (
  id               uuid PRIMARY KEY DEFAULT uuid_v7(),
  organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  name             text NOT NULL,
  key_hash         text NOT NULL UNIQUE,   -- hex SHA-256 of the whole key; the key is shown once, never stored
  prefix           text NOT NULL,          -- its first characters, so people can tell their keys apart
  created_at       timestamptz NOT NULL DEFAULT now(),
  last_used_at     timestamptz,            -- written at most about once a minute per key
  revoked_at       timestamptz
);
CREATE INDEX api_keys_org ON api_keys (organization_id, id);

-- Append-only by intent: nothing in Carteiro updates a row. No foreign keys: the trail outlives what
-- it describes (a deleted endpoint, a removed organization).
CREATE TABLE audit_log (
  id                     uuid PRIMARY KEY DEFAULT uuid_v7(),
  organization_id        uuid,            -- the organization acted on, when known
  actor_kind             text NOT NULL CHECK (actor_kind IN ('admin', 'organization')),
  actor_key_id           uuid,            -- the organization key used; null for the admin key
  actor_organization_id  uuid,
  action                 text NOT NULL,   -- e.g. endpoints.create, endpoints.rotate-secret, organizations.keys.delete
  method                 text NOT NULL,
  route                  text NOT NULL,   -- the route pattern, e.g. /api/webhooks/endpoints/:id
  path                   text NOT NULL,   -- the path asked for, without the query string
  target_id              text,            -- the resource acted on (from the path, or the id of what was created)
  status_code            integer NOT NULL,
  ip                     text,
  user_agent             text,
  request_id             text,
  created_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_log_org ON audit_log (organization_id, id DESC);
CREATE INDEX audit_log_actor ON audit_log (actor_key_id, id DESC) WHERE actor_key_id IS NOT NULL;
CREATE INDEX audit_log_created ON audit_log (created_at);

-- Who, inside Postgres, acts for an organization. Managed with SQL (docs/security.md):
--   user_id        a Supabase auth user (auth.uid(), the JWT's `sub`), or any user id a backend puts there
--   database_role  a Postgres role that sees only this organization, whatever settings it makes
CREATE TABLE organization_members (
  id               uuid PRIMARY KEY DEFAULT uuid_v7(),
  organization_id  uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  user_id          text,
  database_role    text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((user_id IS NULL) <> (database_role IS NULL))
);
CREATE UNIQUE INDEX organization_members_user ON organization_members (user_id, organization_id) WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX organization_members_role ON organization_members (database_role, organization_id) WHERE database_role IS NOT NULL;

-- current_organization_ids(): the organizations the current database session may see.
--   1. a login role listed in organization_members.database_role: its organizations, and nothing it
--      SETs changes that. It is matched on session_user, the role that logged in: inside this
--      SECURITY DEFINER function current_user is the owner, and a later SET ROLE does not move
--      session_user, so the login role cannot step out of its organization;
--   2. else the setting carteiro.organization_id (SET LOCAL by a trusted backend for one transaction);
--   3. else Supabase's JWT claims (request.jwt.claims, set by PostgREST from a verified token):
--      app_metadata.organization_id (only the service role can write app_metadata), or the
--      organizations whose members include the token's `sub` — the very value auth.uid() returns;
--   4. else none: the session sees no row.
-- SECURITY DEFINER so the membership lookup is not itself filtered by RLS; search_path is pinned.
-- A malformed uuid in a setting or claim raises an error: it fails closed.
CREATE OR REPLACE FUNCTION current_organization_ids() RETURNS uuid[]
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path FROM CURRENT AS $$
DECLARE
  ids uuid[];
  setting text;
  claims jsonb;
BEGIN
  SELECT array_agg(DISTINCT m.organization_id) INTO ids
    FROM organization_members m WHERE m.database_role = session_user::text;
  IF ids IS NOT NULL THEN
    RETURN ids;
  END IF;
  setting := nullif(current_setting('carteiro.organization_id', true), '');
  IF setting IS NOT NULL THEN
    RETURN ARRAY[setting::uuid];
  END IF;
  claims := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
  IF claims IS NULL THEN
    RETURN '{}';
  END IF;
  IF nullif(claims -> 'app_metadata' ->> 'organization_id', '') IS NOT NULL THEN
    RETURN ARRAY[(claims -> 'app_metadata' ->> 'organization_id')::uuid];
  END IF;
  SELECT coalesce(array_agg(DISTINCT m.organization_id), '{}') INTO ids
    FROM organization_members m WHERE m.user_id = claims ->> 'sub';
  RETURN ids;
END
$$;

-- The organization's data: its role may read and change its own rows, for every command.
-- `(SELECT current_organization_ids())` is evaluated once per statement (an InitPlan), not once per row.
DO $rls$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['webhook_endpoints', 'webhook_events', 'webhook_dispatches', 'webhook_deliveries',
                           'n8n_workflows', 'event_types'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON %I USING (organization_id = ANY ((SELECT current_organization_ids())::uuid[])) '
                   'WITH CHECK (organization_id = ANY ((SELECT current_organization_ids())::uuid[]))', t || '_tenant', t);
  END LOOP;
END
$rls$;

-- Who may act, and the record of what was done: readable by the organization, written only by
-- Carteiro (the owner). With no INSERT/UPDATE/DELETE policy those commands match no row for any other
-- role: a tenant cannot mint its own API keys, edit its audit trail, rename itself, or map another
-- role or user into organization_members (which would change what THEY see).
ALTER TABLE organizations ENABLE ROW LEVEL SECURITY;
CREATE POLICY organizations_tenant_read ON organizations FOR SELECT
  USING (id = ANY ((SELECT current_organization_ids())::uuid[]));

DO $rls$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['api_keys', 'audit_log', 'organization_members'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON %I FOR SELECT USING (organization_id = ANY ((SELECT current_organization_ids())::uuid[]))',
                   t || '_tenant_read', t);
  END LOOP;
END
$rls$;
