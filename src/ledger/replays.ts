/** Replays: finished dispatches requeued for a fresh round of attempts, and the search a bulk replay pages through. */
import type { Sql } from './connection.ts';
import { refreshEventStatuses } from './outcomes.ts';

/**
 * Requeues an event's finished dispatches (all, or one endpoint's) for a fresh round of attempts.
 * A dispatch sent in a batch leaves it. With `alone` (replaying one event), a batching endpoint gets
 * it by itself (docs/batching.md); otherwise (a bulk replay) it may go in a new batch.
 */
export async function requeueEventDispatches(
  sql: Sql,
  eventId: string,
  opts: { endpointId?: string | undefined; onlyFailed?: boolean; finishedBefore?: Date | undefined; alone?: boolean },
): Promise<number> {
  return sql.begin(async (tx) => {
    const rows = await tx`
      UPDATE webhook_dispatches d
         SET status = CASE WHEN ep.is_active THEN 'pending' ELSE 'paused' END,
             -- In the FIFO queue if the endpoint asks for order now (its oldest: it goes next).
             fifo = CASE WHEN ep.fifo THEN true END,
             batch_id = NULL, unbatched = CASE WHEN ${opts.alone ?? false}::bool AND ep.batch_max_events IS NOT NULL THEN true END,
             round_attempts = 0, next_attempt_at = now(), completed_at = NULL, updated_at = now()
        FROM webhook_endpoints ep
       WHERE d.webhook_event_id = ${eventId} AND ep.id = d.webhook_endpoint_id
         AND (${opts.endpointId ?? null}::uuid IS NULL OR d.webhook_endpoint_id = ${opts.endpointId ?? null}::uuid)
         AND d.status IN ('succeeded', 'failed', 'cancelled')
         AND (NOT ${opts.onlyFailed ?? false} OR d.status IN ('failed', 'cancelled'))
         -- A bulk replay run again (its job retried) must not requeue what it already replayed.
         AND (${opts.finishedBefore ?? null}::timestamptz IS NULL OR coalesce(d.completed_at, d.updated_at) <= ${opts.finishedBefore ?? null}::timestamptz)
      RETURNING d.id`;
    if (rows.length) {
      await tx`SELECT id FROM webhook_events WHERE id = ${eventId} FOR NO KEY UPDATE`;
      await refreshEventStatuses(tx as unknown as Sql, [eventId]);
      await tx`SELECT pg_notify(current_schema() || '_dispatch', '')`;
    }
    return rows.length;
  }) as Promise<number>;
}

/** Ids of events matching a bulk-replay filter, oldest first, a page at a time. */
export async function findEventsToReplay(
  sql: Sql,
  f: {
    organizationId: string | null;
    status: string;
    eventType?: string | undefined;
    since?: Date | undefined;
    until?: Date | undefined;
    after?: string | undefined;
    limit: number;
  },
): Promise<string[]> {
  const rows = await sql<{ id: string }[]>`
    SELECT id FROM webhook_events
    WHERE (${f.organizationId}::uuid IS NULL OR organization_id = ${f.organizationId}::uuid)
      AND status = ${f.status}
      AND (${f.eventType ?? null}::text IS NULL OR event_type = ${f.eventType ?? null})
      AND (${f.since ?? null}::timestamptz IS NULL OR created_at >= ${f.since ?? null})
      AND (${f.until ?? null}::timestamptz IS NULL OR created_at < ${f.until ?? null})
      AND (${f.after ?? null}::uuid IS NULL OR id > ${f.after ?? null}::uuid)
    ORDER BY id LIMIT ${f.limit}`;
  return rows.map((r) => r.id);
}
