/**
 * Endpoint health in the ledger: the circuit breaker that disables an endpoint failing for a
 * sustained period, the `endpoint.disabled` operational event, and the operations endpoint that
 * receives it. The breaker's counters (consecutive_failures, failing_since) are kept by
 * recordOutcomes (outcomes.ts) in the same statement as the endpoint's success/failure counters;
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
  /** Cool-off before the first half-open probe of an endpoint it disabled (0 = never probed). */
  probeCooloffMs?: number;
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
export const ENDPOINT_FAILING_EVENT = 'endpoint.failing';
export const ENDPOINT_ENABLED_EVENT = 'endpoint.enabled';
/** What the operations endpoint is subscribed to. */
export const OPERATIONAL_EVENTS = [ENDPOINT_DISABLED_EVENT, ENDPOINT_FAILING_EVENT, ENDPOINT_ENABLED_EVENT];
/** The longest cool-off between two probes of a disabled endpoint. */
const MAX_PROBE_INTERVAL_HOURS = 24;

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
       SET is_active = false, updated_at = now(), probes = 0,
           probe_at = CASE WHEN ${policy.probeCooloffMs ?? 0}::int > 0 THEN now() + ${policy.probeCooloffMs ?? 0}::int * interval '1 millisecond' END,
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
 * Warns before disabling: marks the endpoints among `endpointIds` whose failed attempts in a row just
 * reached `threshold` (once per run of failures; a success clears the mark) and records one
 * `endpoint.failing` event each for the operations endpoint, in the same statement. Pipelinable.
 */
export function emitEndpointFailing(tx: Db, endpointIds: string[], threshold: number) {
  return tx`
    WITH marked AS (
      UPDATE webhook_endpoints
         SET failing_notified_at = now()
       WHERE id = ANY(${endpointIds}::uuid[]) AND is_active AND system_role IS NULL
         AND failing_notified_at IS NULL AND failed_attempts_in_row >= ${threshold}::int
      RETURNING id, organization_id, name, url, failed_attempts_in_row, consecutive_failures, failing_since
    )
    INSERT INTO webhook_events (organization_id, event_type, event_source, data, priority, data_sealed)
    SELECT ${OPERATIONS_ORGANIZATION_ID}::uuid, ${ENDPOINT_FAILING_EVENT}, 'system',
           jsonb_build_object('endpoint_id', id, 'organization_id', organization_id, 'endpoint_name', name, 'url', url,
                              'failed_attempts_in_row', failed_attempts_in_row, 'consecutive_failures', consecutive_failures,
                              'failing_since', failing_since, 'failing_at', now()),
           1, true -- Carteiro's own operational data
    FROM marked`;
}

/**
 * Self-healing: an endpoint the circuit breaker disabled (it has a probe time) and that just answered
 * a probe with success is enabled again, its failure state cleared, and the deliveries it held
 * (paused) are due again. One `endpoint.enabled` event each for the operations endpoint. Endpoints
 * disabled by hand or by 410 Gone have no probe time and are never re-enabled here. Pipelinable.
 */
export function reenableProbedEndpoints(tx: Db, endpointIds: string[]) {
  return tx`
    WITH enabled AS (
      UPDATE webhook_endpoints
         SET is_active = true, disabled_reason = NULL, probe_at = NULL, probes = 0, consecutive_failures = 0,
             failed_attempts_in_row = 0, failing_since = NULL, failing_notified_at = NULL, updated_at = now()
       WHERE id = ANY(${endpointIds}::uuid[]) AND NOT is_active AND probe_at IS NOT NULL
      RETURNING id, organization_id, name, url
    ), resumed AS (
      UPDATE webhook_dispatches d SET status = 'pending', next_attempt_at = now(), updated_at = now()
        FROM enabled WHERE d.webhook_endpoint_id = enabled.id AND d.status = 'paused'
      RETURNING d.id
    )
    INSERT INTO webhook_events (organization_id, event_type, event_source, data, priority, data_sealed)
    SELECT ${OPERATIONS_ORGANIZATION_ID}::uuid, ${ENDPOINT_ENABLED_EVENT}, 'system',
           jsonb_build_object('endpoint_id', id, 'organization_id', organization_id, 'endpoint_name', name, 'url', url,
                              'reason', 'a probe delivery succeeded', 'resumed_deliveries', (SELECT count(*) FROM resumed), 'enabled_at', now()),
           1, true
    FROM enabled`;
}

/**
 * Half-open probing: for endpoints the circuit breaker disabled whose probe time has come, takes one
 * delivery each (the oldest it holds paused, else its latest failed one, sent again with the same
 * webhook-id) and leases it to `workerId` like a claim. The next probe is scheduled at once, the
 * cool-off doubling each time (up to a day), so a probe lost in a crash is only late. Returns the
 * dispatch ids; the caller claims them by id. A success re-enables the endpoint (recordOutcomes).
 */
export async function takeProbeDeliveries(tx: Db, cooloffMs: number, limit = 10): Promise<string[]> {
  const rows = await tx<{ id: string }[]>`
    WITH due AS (
      SELECT id FROM webhook_endpoints
       WHERE probe_at IS NOT NULL AND NOT is_active AND probe_at <= now()
       ORDER BY probe_at LIMIT ${limit}
       FOR UPDATE SKIP LOCKED
    ), rescheduled AS (
      UPDATE webhook_endpoints ep
         SET probes = ep.probes + 1,
             probe_at = now() + LEAST(${cooloffMs}::float8 * power(2, ep.probes + 1), ${MAX_PROBE_INTERVAL_HOURS} * 3600000.0) * interval '1 millisecond'
        FROM due WHERE ep.id = due.id
      RETURNING ep.id
    )
    SELECT p.id FROM rescheduled r CROSS JOIN LATERAL (
      SELECT id FROM (
        (SELECT d.id FROM webhook_dispatches d WHERE d.webhook_endpoint_id = r.id AND d.status = 'paused' ORDER BY d.created_at LIMIT 1)
        UNION ALL
        (SELECT d.id FROM webhook_dispatches d WHERE d.webhook_endpoint_id = r.id AND d.status = 'failed' ORDER BY d.updated_at DESC LIMIT 1)
      ) x LIMIT 1
    ) p`;
  return rows.map((r) => r.id);
}

/**
 * Creates or updates the operations endpoint (in the operations organization, subscribed to
 * endpoint.disabled). Safe when several processes start at once.
 */
export async function upsertOperationsEndpoint(sql: Db, e: { url: string; secretCiphertext: string | null }): Promise<{ id: string }> {
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO webhook_endpoints (organization_id, name, url, events, secret, kind, description, system_role)
    VALUES (${OPERATIONS_ORGANIZATION_ID}, 'Carteiro operations', ${e.url}, ${OPERATIONAL_EVENTS}::text[], ${e.secretCiphertext}, 'endpoint',
            'Operational events (CARTEIRO_OPERATIONS_WEBHOOK_URL); managed by Carteiro, changes are overwritten at start', 'operations')
    ON CONFLICT (system_role) WHERE system_role IS NOT NULL
    DO UPDATE SET url = excluded.url, secret = excluded.secret, events = excluded.events, organization_id = excluded.organization_id, updated_at = now()
    RETURNING id`;
  return row as { id: string };
}
