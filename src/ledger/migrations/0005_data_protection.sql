-- Data protection and endpoint health (docs/security.md: "Minimal payloads", "Circuit breaker").

-- Minimal payloads: which fields of `data` an endpoint receives. NULL = all of them. Either a JSON
-- array of dotted paths (every event type), or an object from event-type filter (exact type,
-- 'prefix.*' or '*') to such an array; the most specific filter matching the event wins.
ALTER TABLE webhook_endpoints ADD COLUMN include_fields jsonb
  CHECK (include_fields IS NULL OR jsonb_typeof(include_fields) IN ('array', 'object'));

-- Circuit breaker state, kept by the worker's outcome batches:
--   consecutive_failures  deliveries in a row that failed after all their retries (a success resets it)
--   failing_since         first failed attempt since the last successful one (NULL while healthy)
ALTER TABLE webhook_endpoints ADD COLUMN consecutive_failures integer NOT NULL DEFAULT 0;
ALTER TABLE webhook_endpoints ADD COLUMN failing_since timestamptz;

-- Endpoints Carteiro manages itself (never through the API): 'operations' receives operational
-- events such as endpoint.disabled at CARTEIRO_OPERATIONS_WEBHOOK_URL. At most one of each role.
ALTER TABLE webhook_endpoints ADD COLUMN system_role text CHECK (system_role IN ('operations'));
CREATE UNIQUE INDEX webhook_endpoints_system_role ON webhook_endpoints (system_role) WHERE system_role IS NOT NULL;

-- Erasure finds a user's endpoints by user id.
CREATE INDEX webhook_endpoints_user ON webhook_endpoints (user_id) WHERE user_id IS NOT NULL;
