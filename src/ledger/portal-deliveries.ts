/**
 * What a portal session reads and changes beyond its endpoints (docs/portal.md): the deliveries to
 * its user's endpoints (one per event and endpoint: webhook_dispatches) and their attempts, and the
 * endpoint quota. Every query is narrowed to the organization AND the owner (the endpoint's user_id)
 * in the statement itself, so an id of another user's delivery simply finds nothing.
 */
import type { Sql } from './connection.ts';
import type { AttemptRow } from './events.ts';
import { insertEndpoint, type EndpointRow, type NewEndpoint } from './endpoints.ts';

export type PortalDeliveryRow = {
  id: string;
  event_id: string;
  event_type: string;
  endpoint_id: string;
  status: string;
  attempts: number;
  last_status_code: number | null;
  last_error: string | null;
  next_attempt_at: Date;
  created_at: Date;
  completed_at: Date | null;
};

export type PortalDeliveryFilter = {
  organizationId: string;
  owner: string;
  endpointId?: string | undefined;
  eventId?: string | undefined;
  status?: string | undefined;
  /** Exclusive upper bound on id: ids are time-ordered, so this pages newest first. */
  before?: string | undefined;
  limit: number;
};

export async function listOwnedDeliveries(sql: Sql, f: PortalDeliveryFilter): Promise<PortalDeliveryRow[]> {
  return sql<PortalDeliveryRow[]>`
    SELECT d.id, d.webhook_event_id AS event_id, e.event_type, d.webhook_endpoint_id AS endpoint_id, d.status, d.attempts,
           d.last_status_code, d.last_error, d.next_attempt_at, d.created_at, d.completed_at
    FROM webhook_dispatches d
    JOIN webhook_endpoints ep ON ep.id = d.webhook_endpoint_id
    JOIN webhook_events e ON e.id = d.webhook_event_id
    WHERE ep.organization_id = ${f.organizationId} AND ep.user_id = ${f.owner} AND ep.kind = 'endpoint'
      AND (${f.endpointId ?? null}::uuid IS NULL OR d.webhook_endpoint_id = ${f.endpointId ?? null}::uuid)
      AND (${f.eventId ?? null}::uuid IS NULL OR d.webhook_event_id = ${f.eventId ?? null}::uuid)
      AND (${f.status ?? null}::text IS NULL OR d.status = ${f.status ?? null})
      AND (${f.before ?? null}::uuid IS NULL OR d.id < ${f.before ?? null}::uuid)
    ORDER BY d.id DESC LIMIT ${f.limit}`;
}

export async function findOwnedDelivery(sql: Sql, organizationId: string, owner: string, id: string): Promise<PortalDeliveryRow | undefined> {
  const [row] = await sql<PortalDeliveryRow[]>`
    SELECT d.id, d.webhook_event_id AS event_id, e.event_type, d.webhook_endpoint_id AS endpoint_id, d.status, d.attempts,
           d.last_status_code, d.last_error, d.next_attempt_at, d.created_at, d.completed_at
    FROM webhook_dispatches d
    JOIN webhook_endpoints ep ON ep.id = d.webhook_endpoint_id
    JOIN webhook_events e ON e.id = d.webhook_event_id
    WHERE d.id = ${id} AND ep.organization_id = ${organizationId} AND ep.user_id = ${owner} AND ep.kind = 'endpoint'`;
  return row;
}

/** The attempts of one delivery (its event to its endpoint), oldest first. */
export async function listDeliveryAttempts(sql: Sql, eventId: string, endpointId: string): Promise<(AttemptRow & { webhook_event_id: string })[]> {
  return sql<(AttemptRow & { webhook_event_id: string })[]>`
    SELECT id, webhook_event_id, webhook_endpoint_id, attempt_number, success, status_code, response_body, response_sealed, delivery_duration_ms, error, batch_id, created_at
    FROM webhook_deliveries WHERE webhook_event_id = ${eventId} AND webhook_endpoint_id = ${endpointId} ORDER BY id`;
}

export type QuotaRefusal = { overQuota: true; limit: number; owned: number };

/**
 * Inserts an endpoint owned by `e.userId` unless that user already owns `maxPerUser` endpoints of the
 * organization. A transaction-scoped advisory lock per (organization, user) makes concurrent creations
 * count one after another, so the quota cannot be overrun by racing requests.
 */
export async function insertEndpointWithinQuota(sql: Sql, e: NewEndpoint & { userId: string }, maxPerUser: number): Promise<EndpointRow | QuotaRefusal> {
  return sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(hashtextextended('carteiro.endpoint-quota:' || ${e.organizationId} || ':' || ${e.userId}, 0))`;
    const [row] = await tx<{ n: number }[]>`
      SELECT count(*)::int AS n FROM webhook_endpoints WHERE organization_id = ${e.organizationId} AND user_id = ${e.userId} AND kind = 'endpoint'`;
    const owned = row?.n ?? 0;
    if (owned >= maxPerUser) return { overQuota: true, limit: maxPerUser, owned } as const;
    return insertEndpoint(tx, e);
  }) as Promise<EndpointRow | QuotaRefusal>;
}
