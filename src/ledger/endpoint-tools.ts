/**
 * What the operator's endpoint tools need from the ledger: a test delivery to one endpoint only
 * (`POST /endpoints/:id/test`) and a recover's dry run (`POST /endpoints/:id/recover/preview`).
 */
import { v7 as uuidv7 } from 'uuid';
import type { Sql } from './connection.ts';
import { refreshEventStatuses } from './outcomes.ts';
import { retryOnDeadlock } from './deadlock-retry.ts';
import { PRIORITY } from './events.ts';
import { missedEvents } from './endpoints.ts';

/** The synthetic event type of a test delivery; no endpoint's filters route it anywhere else. */
export const TEST_EVENT_TYPE = 'webhook.test';

export type TestDelivery = { event_id: string; event_type: string; endpoint_id: string; paused: boolean; created_at: Date };

/**
 * Stores a `webhook.test` event with a delivery to this endpoint alone, whatever its filters. The event
 * is written already `processing`, so the fan-out trigger (which routes `pending` events only) adds no
 * other delivery; its status then follows its one delivery as any event's does. A disabled endpoint's
 * delivery is held (`paused`) until it is enabled, as recover's are. Undefined: no such endpoint.
 */
export async function insertTestDelivery(
  sql: Sql,
  organizationId: string | null,
  endpointId: string,
  data: Record<string, unknown>,
  owner?: string,
): Promise<TestDelivery | undefined> {
  const dataJson = JSON.stringify(data);
  return retryOnDeadlock(
    () =>
      sql.begin(async (tx) => {
        const [ep] = await tx<{ id: string; organization_id: string; is_active: boolean; fifo: boolean; batching: boolean }[]>`
      SELECT id, organization_id, is_active, fifo, batch_max_events IS NOT NULL AS batching FROM webhook_endpoints
      WHERE id = ${endpointId} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
        AND (${owner ?? null}::text IS NULL OR user_id = ${owner ?? null}) FOR NO KEY UPDATE`;
        if (!ep) return undefined;
        const id = uuidv7();
        const [event] = await tx<{ id: string; created_at: Date }[]>`
      INSERT INTO webhook_events (id, organization_id, event_type, event_source, data, data_json, priority, status, data_sealed)
      VALUES (${id}, ${ep.organization_id}, ${TEST_EVENT_TYPE}, 'manual', ${dataJson}::jsonb, ${dataJson}, ${PRIORITY.normal}, 'processing', true)
      RETURNING id, created_at`;
        await tx`
      INSERT INTO webhook_dispatches (organization_id, webhook_event_id, webhook_endpoint_id, priority, status, fifo, unbatched)
      VALUES (${ep.organization_id}, ${id}, ${ep.id}, ${PRIORITY.normal}, ${ep.is_active ? 'pending' : 'paused'}, ${ep.fifo ? true : null},
              ${ep.batching ? true : null})`; // a test event goes alone, at once, even to a batching endpoint
        await refreshEventStatuses(tx as unknown as Sql, [id]);
        if (ep.is_active) await tx`SELECT pg_notify(current_schema() || '_dispatch', '')`;
        const row = event as { id: string; created_at: Date };
        return { event_id: row.id, event_type: TEST_EVENT_TYPE, endpoint_id: ep.id, paused: !ep.is_active, created_at: row.created_at };
      }) as Promise<TestDelivery | undefined>,
  );
}

/**
 * How many events `recoverEndpointEvents` would queue for this endpoint over the window, counting at
 * most `limit` (the same selection, nothing written). Undefined: no such endpoint.
 */
export async function countRecoverableEvents(
  sql: Sql,
  organizationId: string | null,
  id: string,
  window: { since: Date; until: Date | null; limit: number },
): Promise<number | undefined> {
  const [ep] = await sql<{ id: string }[]>`
    SELECT id FROM webhook_endpoints WHERE id = ${id} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)`;
  if (!ep) return undefined;
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM (
      SELECT 1 ${missedEvents(sql, id, window)}
      LIMIT ${window.limit}
    ) matching`;
  return row?.n ?? 0;
}
