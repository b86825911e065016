-- Carteiro ledger, version 27: delivery settings per endpoint (README, "Delivery settings per endpoint").
-- NULL in any of them means the service's own setting, so every existing endpoint keeps its behaviour.
--
-- webhook_endpoints.headers              static headers sent with every delivery to the endpoint, as an
--                                        object of header name to value. They often carry the receiver's
--                                        credentials (an Authorization header), so each value is sealed
--                                        like the endpoint's secret (`enc:v1:…`, crypto/secret-box.ts);
--                                        the names stay readable. NULL: none.
-- webhook_endpoints.timeout_ms           the deadline of one whole exchange with the endpoint (NULL:
--                                        WEBHOOK_TIMEOUT_MS, which is also its ceiling).
-- webhook_endpoints.max_retries          retries after the first attempt before a delivery fails for good
--                                        (NULL: WEBHOOK_MAX_RETRIES, also its ceiling).
-- webhook_endpoints.retry_base_delay_ms  the first retry's delay; later ones grow by the service's factor,
--                                        capped and jittered as the service's (NULL: WEBHOOK_RETRY_BASE_DELAY_MS).
--
-- The API holds them to the configured bounds (api/endpoint-input.ts); the checks here only keep out
-- what no configuration allows.
ALTER TABLE webhook_endpoints ADD COLUMN headers jsonb;
ALTER TABLE webhook_endpoints ADD COLUMN timeout_ms integer;
ALTER TABLE webhook_endpoints ADD COLUMN max_retries integer;
ALTER TABLE webhook_endpoints ADD COLUMN retry_base_delay_ms integer;
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_headers_object CHECK (headers IS NULL OR jsonb_typeof(headers) = 'object');
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_timeout_ms_positive CHECK (timeout_ms > 0);
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_max_retries_not_negative CHECK (max_retries >= 0);
ALTER TABLE webhook_endpoints ADD CONSTRAINT webhook_endpoints_retry_base_delay_ms_not_negative CHECK (retry_base_delay_ms >= 0);
