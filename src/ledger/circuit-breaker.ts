/**
 * Endpoint health in the ledger: the circuit breaker that disables an endpoint failing for a
 * sustained period, the `endpoint.disabled` operational event, and the operations endpoint that
 * receives it. The breaker's counters (consecutive_failures, failing_since) are kept by
 * recordOutcomes (dispatches.ts) in the same statement as the endpoint's success/failure counters;
 * the functions here run inside that same transaction.
 */
import type { Sql, TxSql } from './connection.ts';
import { OPERATIONS_ORGANIZATION_ID } from './organizations.ts';

type Db = Sql | TxSql;

export type CircuitBreakerPolicy = {
  /** Deliveries in a row that failed all their retries before the endpoint is disabled (0 = off). */
  consecutiveFailures: number;
  /** Hours of nothing but failed attempts before the endpoint is disabled (0 = off). */
  failingHours: number;
};

export type DisabledEndpoint = {
  id: string;
  organization_id: string;
  name: string;
  url: string;
  reason: string;
  consecutive_failures: number;
  failing_since: Date | null;
};

export const ENDPOINT_DISABLED_EVENT = 'endpoint.disabled';

/**
 * Disables, among `endpointIds` (endpoints that just failed), the active ones past a threshold, and
 * holds their pending deliveries (status 'paused', as a manual disable does). Carteiro's own
 * endpoints and n8n workflow endpoints (whose state the n8n integration manages) are exempt.
 */
export async function tripCircuitBreakers(tx: Db, endpointIds: string[], policy: CircuitBreakerPolicy): Promise<DisabledEndpoint[]> {
  const n = policy.consecutiveFailures;
  const hours = policy.failingHours;
  if (endpointIds.length === 0 || (n <= 0 && hours <= 0)) return [];
  const tripped = await tx<DisabledEndpoint[]>`
    UPDATE webhook_endpoints
       SET is_active = false, updated_at = now(),
           disabled_reason = CASE
             WHEN ${n}::int > 0 AND consecutive_failures >= ${n}::int
               THEN 'circuit breaker: ' || consecutive_failures || ' deliveries in a row failed after all retries'
             ELSE 'circuit breaker: every attempt failed for ' || ${hours}::float8 || ' h (since ' || to_char(failing_since AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ')'
           END
     WHERE id = ANY(${endpointIds}::uuid[]) AND is_active AND kind = 'endpoint' AND system_role IS NULL
       AND ((${n}::int > 0 AND consecutive_failures >= ${n}::int)
         OR (${hours}::float8 > 0 AND failing_since <= now() - ${hours}::float8 * interval '1 hour'))
    RETURNING id, organization_id, name, url, disabled_reason AS reason, consecutive_failures, failing_since`;
  if (tripped.length) {
    await tx`
      UPDATE webhook_dispatches SET status = 'paused', updated_at = now()
      WHERE webhook_endpoint_id = ANY(${tripped.map((t) => t.id)}::uuid[]) AND status = 'pending'`;
  }
  return tripped;
}

/**
 * Records one `endpoint.disabled` event per disabled endpoint (event_source 'system') in the
 * operations organization, so it is delivered, signed and retried like any webhook to the operations
 * endpoint. Not in the disabled endpoint's organization's sight nor any other's: the event names
 * endpoints of every organization.
 */
export async function emitEndpointDisabled(tx: Db, disabled: DisabledEndpoint[]): Promise<void> {
  if (disabled.length === 0) return;
  const data = disabled.map((d) =>
    JSON.stringify({
      endpoint_id: d.id,
      organization_id: d.organization_id,
      endpoint_name: d.name,
      url: d.url,
      reason: d.reason,
      consecutive_failures: d.consecutive_failures,
      failing_since: d.failing_since ? new Date(d.failing_since).toISOString() : null,
      disabled_at: new Date().toISOString(),
      enable_path: `/api/webhooks/endpoints/${d.id}/enable`,
    }),
  );
  await tx`
    INSERT INTO webhook_events (organization_id, event_type, event_source, data, data_json, priority, data_sealed)
    SELECT ${OPERATIONS_ORGANIZATION_ID}::uuid, ${ENDPOINT_DISABLED_EVENT}, 'system', d::jsonb, d, 1, true -- Carteiro's own operational data
    FROM unnest(${data}::text[]) AS t(d)`;
}

/**
 * Creates or updates the operations endpoint (in the operations organization, subscribed to
 * endpoint.disabled). Safe when several processes start at once.
 */
export async function upsertOperationsEndpoint(sql: Db, e: { url: string; secretCiphertext: string | null }): Promise<{ id: string }> {
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO webhook_endpoints (organization_id, name, url, events, secret, kind, description, system_role)
    VALUES (${OPERATIONS_ORGANIZATION_ID}, 'Carteiro operations', ${e.url}, ${[ENDPOINT_DISABLED_EVENT]}::text[], ${e.secretCiphertext}, 'endpoint',
            'Operational events (CARTEIRO_OPERATIONS_WEBHOOK_URL); managed by Carteiro, changes are overwritten at start', 'operations')
    ON CONFLICT (system_role) WHERE system_role IS NOT NULL
    DO UPDATE SET url = excluded.url, secret = excluded.secret, organization_id = excluded.organization_id, updated_at = now()
    RETURNING id`;
  return row as { id: string };
}
