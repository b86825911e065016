-- An organization of its own for Carteiro's operational events.
--
-- `endpoint.disabled` events describe endpoints of every organization (id, name, URL with its query,
-- organization, reason). They were recorded in the default organization, where the operations
-- endpoint lived; the default organization is also an ordinary tenant, so any key issued for it could
-- list those events and subscribe an endpoint to them, and so learn about every other organization's
-- endpoints. They now live in this organization, which takes no API keys (the API refuses them): only
-- the admin key reads it, and only the operations endpoint receives its events.
--
-- Events and attempts recorded before this stay where they are, and go with retention.
INSERT INTO organizations (id, name) VALUES ('00000000-0000-7000-8000-00000000000f', 'Carteiro operations')
  ON CONFLICT (id) DO NOTHING;

UPDATE webhook_endpoints SET organization_id = '00000000-0000-7000-8000-00000000000f', updated_at = now()
 WHERE system_role = 'operations';

-- Keys and database roles act for one organization and see all of it: none may act for this one.
ALTER TABLE api_keys ADD CONSTRAINT api_keys_not_for_operations CHECK (organization_id <> '00000000-0000-7000-8000-00000000000f');
ALTER TABLE organization_members ADD CONSTRAINT organization_members_not_for_operations CHECK (organization_id <> '00000000-0000-7000-8000-00000000000f');
