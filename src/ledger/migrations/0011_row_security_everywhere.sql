-- Row level security on the three tables migration 0004 left without it.
--
-- docs/security.md tells an operator to `GRANT … ON ALL TABLES IN SCHEMA` to a tenant role, and that
-- grant reached these too. Through it, one organization's role could read every organization's table
-- captures and rewrite them (pointing another organization's captured table at its own organization
-- would hand it that table's rows as events), fake or delete worker heartbeats, and delete the
-- migration history (the next start would re-run migrations over a live schema).
--
-- Carteiro's own connection owns these tables, so none of this changes what it sees (0004 enables
-- RLS without FORCE), and the capture triggers run as that owner (SECURITY DEFINER, migration 0002).

-- Captures are attached by the owner only (`carteiro triggers add`); an organization may read its own.
-- Captures with no organization (routed by each row's organization_id column) stay the owner's.
ALTER TABLE table_captures ENABLE ROW LEVEL SECURITY;
CREATE POLICY table_captures_tenant_read ON table_captures FOR SELECT
  USING (organization_id = ANY ((SELECT current_organization_ids())::uuid[]));

-- Carteiro's own bookkeeping: no policy, so no other role sees or changes a row.
ALTER TABLE worker_heartbeats ENABLE ROW LEVEL SECURITY;
ALTER TABLE schema_migrations ENABLE ROW LEVEL SECURITY;
