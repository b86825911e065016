-- Carteiro ledger, version 26: whether n8n confirms a registered workflow's webhook path, and the last
-- discovery run per organization (shown by /health and `carteiro n8n list`).
--
-- n8n_workflows.confirmed        true: n8n's API listed a workflow with a POST Webhook at this path (at
--                                seeding or the last discovery); false: it was checked and not found, or
--                                the check failed (confirmation_note says which); NULL: never checked
--                                (no N8N_API_URL). A seeded path n8n does not have would otherwise take
--                                every event of its types through all its attempts to a 404.
-- n8n_workflows.confirmation_note why it is not confirmed (NULL when it is).
-- n8n_workflows.confirmed_at     when that was last checked.
ALTER TABLE n8n_workflows ADD COLUMN confirmed boolean;
ALTER TABLE n8n_workflows ADD COLUMN confirmation_note text;
ALTER TABLE n8n_workflows ADD COLUMN confirmed_at timestamptz;

-- One row per organization: the last discovery's outcome, a failed one (n8n's API said no) included.
CREATE TABLE n8n_discovery_runs (
  organization_id  uuid PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
  finished_at      timestamptz NOT NULL DEFAULT now(),
  ok               boolean NOT NULL,
  result           jsonb,
  error            text
);

-- Like n8n_workflows: the organization's own rows, never a portal user's (migrations 0004, 0024).
ALTER TABLE n8n_discovery_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY n8n_discovery_runs_tenant ON n8n_discovery_runs
  USING (organization_id = ANY ((SELECT current_organization_ids())::uuid[]))
  WITH CHECK (organization_id = ANY ((SELECT current_organization_ids())::uuid[]));
CREATE POLICY n8n_discovery_runs_portal ON n8n_discovery_runs AS RESTRICTIVE USING ((SELECT current_portal_user_id()) IS NULL);
