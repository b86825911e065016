-- Carteiro ledger, version 24: the customer portal and limits per user (docs/portal.md).
--   portal_sessions       short-lived tokens a SaaS backend issues for one of its users; only a SHA-256
--                         of each token is kept, as for API keys
--   organization_limits   an organization's defaults for its users: endpoints each may own, events per
--                         second (and burst) ingested for each user id
--   user_limits           one user's overrides of those defaults
--   audit_log             a portal session is an actor of its own
--   row level security    a database session acting for a portal user (carteiro.portal_user_id) sees
--                         only that user's endpoints, their deliveries and attempts, the events routed to
--                         them and the catalog; nothing else
--
-- An endpoint's owner is its existing user_id column (migration 0001): the portal creates endpoints
-- with it set to the session's user, and finds them by it.

CREATE TABLE portal_sessions (
  id                 uuid PRIMARY KEY DEFAULT uuid_v7(),
  organization_id    uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  user_id            text NOT NULL,
  token_hash         text NOT NULL UNIQUE,  -- hex SHA-256 of the whole token; the token is shown once, never stored
  prefix             text NOT NULL,         -- its first characters, so sessions can be told apart
  scope              text NOT NULL CHECK (scope IN ('read', 'manage')),
  features           text[] NOT NULL DEFAULT '{}',
  created_by_key_id  uuid,                  -- the organization key that issued it; null for the admin key
  created_at         timestamptz NOT NULL DEFAULT now(),
  expires_at         timestamptz NOT NULL,
  revoked_at         timestamptz,
  CHECK (expires_at > created_at)
);
CREATE INDEX portal_sessions_user ON portal_sessions (organization_id, user_id, id);

-- Null columns: the server's defaults (CARTEIRO_MAX_ENDPOINTS_PER_USER, CARTEIRO_USER_EVENTS_PER_SECOND,
-- CARTEIRO_USER_EVENTS_BURST). events_per_second 0 means no limit per user.
CREATE TABLE organization_limits (
  organization_id         uuid PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
  max_endpoints_per_user  integer CHECK (max_endpoints_per_user >= 0),
  user_events_per_second  integer CHECK (user_events_per_second >= 0),
  user_events_burst       integer CHECK (user_events_burst >= 0),
  updated_at              timestamptz NOT NULL DEFAULT now()
);

-- Null columns: the organization's default for that limit.
CREATE TABLE user_limits (
  organization_id    uuid NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  user_id            text NOT NULL,
  max_endpoints      integer CHECK (max_endpoints >= 0),
  events_per_second  integer CHECK (events_per_second >= 0),
  events_burst       integer CHECK (events_burst >= 0),
  updated_at         timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (organization_id, user_id)
);

-- The quota counts a user's endpoints by owner.
CREATE INDEX IF NOT EXISTS webhook_endpoints_owner ON webhook_endpoints (organization_id, user_id) WHERE user_id IS NOT NULL;

-- Portal actions are audited with the session as the actor (actor_key_id holds the session's id).
ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_actor_kind_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_actor_kind_check CHECK (actor_kind IN ('admin', 'organization', 'portal'));

-- ---- Row level security -------------------------------------------------------------------------------
-- The new tables: readable by their organization's role, written only by Carteiro (the owner), like
-- api_keys: a tenant role cannot mint a portal token or raise its own limits.
DO $rls$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['portal_sessions', 'organization_limits', 'user_limits'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('CREATE POLICY %I ON %I FOR SELECT USING (organization_id = ANY ((SELECT current_organization_ids())::uuid[]))',
                   t || '_tenant_read', t);
  END LOOP;
END
$rls$;

-- The portal user a database session acts for: the setting carteiro.portal_user_id (SET LOCAL by a
-- trusted backend, next to carteiro.organization_id), or null when the session is not a portal session.
CREATE OR REPLACE FUNCTION current_portal_user_id() RETURNS text
LANGUAGE sql STABLE SET search_path FROM CURRENT AS $$
  SELECT nullif(current_setting('carteiro.portal_user_id', true), '')
$$;

-- RESTRICTIVE policies are ANDed with the organization policies of 0004/0006/0011: a portal session
-- sees a subset of its organization's rows. `(SELECT current_portal_user_id())` runs once per statement.
CREATE POLICY webhook_endpoints_portal ON webhook_endpoints AS RESTRICTIVE
  USING ((SELECT current_portal_user_id()) IS NULL OR user_id = (SELECT current_portal_user_id()))
  WITH CHECK ((SELECT current_portal_user_id()) IS NULL OR user_id = (SELECT current_portal_user_id()));

-- Deliveries and attempts: those to the user's endpoints (the subquery is itself filtered by the policy above).
CREATE POLICY webhook_dispatches_portal ON webhook_dispatches AS RESTRICTIVE
  USING ((SELECT current_portal_user_id()) IS NULL OR webhook_endpoint_id IN (SELECT id FROM webhook_endpoints WHERE user_id = (SELECT current_portal_user_id())));
CREATE POLICY webhook_deliveries_portal ON webhook_deliveries AS RESTRICTIVE
  USING ((SELECT current_portal_user_id()) IS NULL OR webhook_endpoint_id IN (SELECT id FROM webhook_endpoints WHERE user_id = (SELECT current_portal_user_id())));

-- Events: only those routed to one of the user's endpoints; a portal session never writes one.
CREATE POLICY webhook_events_portal ON webhook_events AS RESTRICTIVE
  USING ((SELECT current_portal_user_id()) IS NULL OR EXISTS (
    SELECT 1 FROM webhook_dispatches d JOIN webhook_endpoints ep ON ep.id = d.webhook_endpoint_id
    WHERE d.webhook_event_id = webhook_events.id AND ep.user_id = (SELECT current_portal_user_id())));

-- The catalog is readable (to pick event types), not writable.
CREATE POLICY event_types_portal_insert ON event_types AS RESTRICTIVE FOR INSERT WITH CHECK ((SELECT current_portal_user_id()) IS NULL);
CREATE POLICY event_types_portal_update ON event_types AS RESTRICTIVE FOR UPDATE USING ((SELECT current_portal_user_id()) IS NULL);
CREATE POLICY event_types_portal_delete ON event_types AS RESTRICTIVE FOR DELETE USING ((SELECT current_portal_user_id()) IS NULL);

-- Everything else is the organization's, never a portal user's.
DO $rls$
DECLARE
  t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['organizations', 'api_keys', 'audit_log', 'organization_members', 'n8n_workflows', 'table_captures',
                           'portal_sessions', 'organization_limits', 'user_limits'] LOOP
    EXECUTE format('CREATE POLICY %I ON %I AS RESTRICTIVE USING ((SELECT current_portal_user_id()) IS NULL)', t || '_portal', t);
  END LOOP;
END
$rls$;
