-- n8n workflows as destinations (docs/n8n.md).
-- Each n8n_workflows row (migration 0001) is delivered to through a linked webhook_endpoints row of kind
-- 'n8n' (webhook_endpoint_id): its `events` are the workflow's event_types, its `url` the workflow's
-- production URL (or test URL, see use_test_url), its `secret` NULL (signed with WEBHOOK_SECRET) unless
-- the workflow has a secret of its own. ledger/n8n-workflows.ts keeps the two rows in step, in one
-- transaction; fan-out, retries, the attempt log and the counters are the endpoint machinery's.
--
--   path                the Webhook node's path: production URL <base>/webhook/<path>, and the seed's sync_type
--   use_test_url        deliver to <base>/webhook-test/<path> instead (only served while n8n's editor listens)
--   source              who made the row: 'api', 'seed' (carteiro n8n seed) or 'discovery' (read from n8n's API);
--                       discovery deactivates its own rows when their workflow disappears from n8n
--   state               what Carteiro last saw of the workflow in n8n: 'unknown', 'active' (a delivery
--                       succeeded, or n8n's API reports it active), 'inactive' (404 from its webhook URL:
--                       not registered, i.e. the workflow is not active; or n8n's API reports it inactive)
--   last_error          the last failed attempt's error (cleared by a successful one), and when
--   last_discovered_at  the last discovery that listed it
ALTER TABLE n8n_workflows ADD COLUMN path text;
ALTER TABLE n8n_workflows ADD COLUMN use_test_url boolean NOT NULL DEFAULT false;
ALTER TABLE n8n_workflows ADD COLUMN source text NOT NULL DEFAULT 'api' CHECK (source IN ('api', 'seed', 'discovery'));
ALTER TABLE n8n_workflows ADD COLUMN state text NOT NULL DEFAULT 'unknown' CHECK (state IN ('unknown', 'active', 'inactive'));
ALTER TABLE n8n_workflows ADD COLUMN state_changed_at timestamptz;
ALTER TABLE n8n_workflows ADD COLUMN last_error text;
ALTER TABLE n8n_workflows ADD COLUMN last_error_at timestamptz;
ALTER TABLE n8n_workflows ADD COLUMN last_discovered_at timestamptz;

-- The worker's outcome batches update a workflow's counters and state by its linked endpoint.
CREATE UNIQUE INDEX n8n_workflows_endpoint ON n8n_workflows (webhook_endpoint_id) WHERE webhook_endpoint_id IS NOT NULL;
-- POST /n8n/sync finds a workflow by path.
CREATE INDEX n8n_workflows_path ON n8n_workflows (organization_id, path);
