/**
 * Erasure on request (LGPD art. 18): everything the ledger holds about one user id, within an
 * organization (or across all of them for the admin), is deleted:
 *   - the user's events (webhook_events.user_id), with their payloads, dispatches and attempt rows
 *     (response bodies included); unfinished deliveries of those events are cancelled by this;
 *   - the user's own endpoints (webhook_endpoints.user_id, kind 'endpoint'), with their attempt rows;
 *     other events' unfinished deliveries to them are cancelled first so those events settle;
 *   - endpoints of other kinds (n8n workflow links) only lose the link (user_id set to NULL), since
 *     the n8n integration owns them;
 *   - audit log entries about the user (their subject_user field, migration 0017; only entries from
 *     before it hold a user id in clear) keep who did what and when, but name the user only by a
 *     pseudonym the caller gives (protection/erasure-pseudonym.ts). No other entry is touched.
 * Events are deleted a batch at a time (one short transaction each).
 */
import type { Sql } from './connection.ts';
import { deleteDoomedEvents, doomedEventCounts } from './event-deletion.ts';
import { retryOnDeadlock } from './deadlock-retry.ts';
import { refreshEventStatuses } from './outcomes.ts';
import { pseudonymizeAuditEntries } from './audit-log.ts';

export type ErasureCounts = {
  events_deleted: number;
  deliveries_cancelled: number;
  dispatches_deleted: number;
  attempts_deleted: number;
  endpoints_deleted: number;
  endpoints_unlinked: number;
  audit_entries_pseudonymized: number;
};

export type ErasureResult = ErasureCounts & {
  /** Events and endpoints that had an attempt in flight: a worker may still record it (see scrubLateAttempts). */
  inFlightEventIds: string[];
  inFlightEndpointIds: string[];
};

export async function eraseUserData(
  sql: Sql,
  organizationId: string | null,
  userId: string,
  opts: { auditPseudonym: string; batchSize?: number },
): Promise<ErasureResult> {
  const limit = opts.batchSize ?? 1000;
  const r: ErasureResult = {
    events_deleted: 0,
    deliveries_cancelled: 0,
    dispatches_deleted: 0,
    attempts_deleted: 0,
    endpoints_deleted: 0,
    endpoints_unlinked: 0,
    audit_entries_pseudonymized: 0,
    inFlightEventIds: [],
    inFlightEndpointIds: [],
  };

  for (;;) {
    type Row = { events: number; dispatches: number; attempts: number; cancelled: number; in_flight: string[] };
    const rows: Row[] = await retryOnDeadlock(
      () => sql<Row[]>`
      WITH doomed AS (
        SELECT id FROM webhook_events
        WHERE user_id = ${userId} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
        ORDER BY id LIMIT ${limit}
        FOR UPDATE
      ), unfinished AS (
        SELECT webhook_event_id, status FROM webhook_dispatches
        WHERE webhook_event_id IN (SELECT id FROM doomed) AND status IN ('pending', 'in_flight', 'paused')
      ), ${deleteDoomedEvents(sql)}
      SELECT ${doomedEventCounts(sql)},
             (SELECT count(*)::int FROM unfinished) AS cancelled,
             ARRAY(SELECT DISTINCT webhook_event_id::text FROM unfinished WHERE status = 'in_flight') AS in_flight`,
    );
    const b = rows[0] as Row;
    r.events_deleted += b.events;
    r.dispatches_deleted += b.dispatches;
    r.attempts_deleted += b.attempts;
    r.deliveries_cancelled += b.cancelled;
    r.inFlightEventIds.push(...b.in_flight);
    if (b.events < limit) break;
  }

  const endpoints = await sql<{ id: string }[]>`
    SELECT id FROM webhook_endpoints
    WHERE user_id = ${userId} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
      AND kind = 'endpoint' AND system_role IS NULL`;
  const endpointIds = endpoints.map((e) => e.id);
  if (endpointIds.length) {
    const counts = await retryOnDeadlock(() =>
      sql.begin(async (tx) => {
        // Lock order as the worker's: dispatches, then endpoints, then events.
        const cancelled = await tx<{ webhook_event_id: string; webhook_endpoint_id: string; was: string }[]>`
        UPDATE webhook_dispatches d
           SET status = 'cancelled', last_error = 'cancelled: the endpoint was erased with its user''s data',
               lease_expires_at = NULL, leased_by = NULL, completed_at = now(), updated_at = now()
          FROM (SELECT id, status AS was FROM webhook_dispatches
                WHERE webhook_endpoint_id = ANY(${endpointIds}::uuid[]) AND status IN ('pending', 'in_flight', 'paused')
                FOR UPDATE) o
         WHERE d.id = o.id
        RETURNING d.webhook_event_id, d.webhook_endpoint_id, o.was`;
        await tx`SELECT id FROM webhook_endpoints WHERE id = ANY(${endpointIds}::uuid[]) ORDER BY id FOR UPDATE`;
        const eventIds = [...new Set(cancelled.map((c) => c.webhook_event_id))].sort();
        if (eventIds.length) {
          await tx`SELECT id FROM webhook_events WHERE id = ANY(${eventIds}::uuid[]) ORDER BY id FOR NO KEY UPDATE`;
          await refreshEventStatuses(tx as unknown as Sql, eventIds);
        }
        const [dispatches] = await tx<{ n: number }[]>`
        SELECT count(*)::int AS n FROM webhook_dispatches WHERE webhook_endpoint_id = ANY(${endpointIds}::uuid[])`;
        const attempts = await tx`DELETE FROM webhook_deliveries WHERE webhook_endpoint_id = ANY(${endpointIds}::uuid[]) RETURNING 1`;
        const deleted = await tx`DELETE FROM webhook_endpoints WHERE id = ANY(${endpointIds}::uuid[]) RETURNING 1`;
        return {
          cancelled: cancelled.length,
          inFlight: [...new Set(cancelled.filter((c) => c.was === 'in_flight').map((c) => c.webhook_endpoint_id))],
          dispatches: dispatches?.n ?? 0,
          attempts: attempts.length,
          endpoints: deleted.length,
        };
      }),
    );
    r.deliveries_cancelled += counts.cancelled;
    r.dispatches_deleted += counts.dispatches;
    r.attempts_deleted += counts.attempts;
    r.endpoints_deleted += counts.endpoints;
    r.inFlightEndpointIds.push(...counts.inFlight);
  }

  const unlinked = await sql`
    UPDATE webhook_endpoints SET user_id = NULL, updated_at = now()
    WHERE user_id = ${userId} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
    RETURNING 1`;
  r.endpoints_unlinked = unlinked.length;
  // The user's portal sessions (their tokens stop working at once) and limit overrides name them too
  // (migration 0024). Audit entries of a portal session keep only the session's id as their actor.
  await sql`DELETE FROM portal_sessions WHERE user_id = ${userId} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)`;
  await sql`DELETE FROM user_limits WHERE user_id = ${userId} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)`;
  r.audit_entries_pseudonymized = await pseudonymizeAuditEntries(sql, organizationId, userId, opts.auditPseudonym);
  return r;
}

/**
 * Deletes attempt rows a worker recorded after the erasure for deliveries that were in flight during
 * it (run once their lease has surely ended). Returns how many.
 */
export async function scrubLateAttempts(sql: Sql, eventIds: string[], endpointIds: string[]): Promise<number> {
  if (eventIds.length === 0 && endpointIds.length === 0) return 0;
  const rows = await sql`
    DELETE FROM webhook_deliveries
    WHERE (webhook_event_id = ANY(${eventIds}::uuid[]) AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.id = webhook_event_id))
       OR (webhook_endpoint_id = ANY(${endpointIds}::uuid[]) AND NOT EXISTS (SELECT 1 FROM webhook_endpoints ep WHERE ep.id = webhook_endpoint_id))
    RETURNING 1`;
  return rows.length;
}
