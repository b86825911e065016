/**
 * Retention: events older than the cutoff whose deliveries are all finished are deleted, with their
 * dispatches and attempts, in small batches. Each batch is one statement in its own transaction and
 * skips rows another transaction holds (a worker recording outcomes), so the purge never holds locks
 * for long or waits on live work. Events with unfinished deliveries (pending, in flight or paused)
 * are kept whatever their age; attempts whose event is already gone (erasure, a deleted endpoint's
 * history) are swept by age.
 * The retention job drops whole expired days of the attempt log first (attempt-partitions.ts), so
 * by the time this runs most old attempt rows are gone; what is left for these DELETEs is the last
 * partial day, the default partition, and the rows of events created just before a day boundary.
 */
import type { Sql } from './connection.ts';
import { deleteDoomedEvents, doomedEventCounts } from './event-deletion.ts';

export type PurgeCounts = { events: number; dispatches: number; attempts: number; orphan_attempts: number; batches: number };
export type PurgeOptions = {
  cutoff: Date;
  batchSize?: number;
  /** Pause between batches, leaving room for the live workload. */
  pauseMs?: number;
  onBatch?: (soFar: PurgeCounts) => Promise<void> | void;
};

// created_at travels as text: a JS Date would drop the microseconds and re-read the last row.
type Cursor = { created_at: string; id: string } | null;

export async function purgeExpired(sql: Sql, opts: PurgeOptions): Promise<PurgeCounts> {
  const limit = opts.batchSize ?? 1000;
  const counts: PurgeCounts = { events: 0, dispatches: 0, attempts: 0, orphan_attempts: 0, batches: 0 };
  const pause = () => (opts.pauseMs ? new Promise((r) => setTimeout(r, opts.pauseMs)) : Promise.resolve());

  // Events (and their dispatches and attempts), oldest first. The cursor moves past events that are
  // kept (unfinished work), so no batch re-reads them.
  let cursor: Cursor = null;
  for (;;) {
    type Row = { events: number; dispatches: number; attempts: number; last_created_at: string | null; last_id: string | null; scanned: number };
    const rows: Row[] = await sql<Row[]>`
      WITH scanned AS (
        SELECT e.id, e.created_at FROM webhook_events e
        WHERE e.created_at < ${opts.cutoff}
          AND (${cursor?.created_at ?? null}::timestamptz IS NULL OR (e.created_at, e.id) > (${cursor?.created_at ?? null}::timestamptz, ${cursor?.id ?? null}::uuid))
        ORDER BY e.created_at, e.id
        LIMIT ${limit}
      ), doomed AS (
        SELECT e.id FROM webhook_events e
        WHERE e.id IN (SELECT id FROM scanned)
          AND NOT EXISTS (SELECT 1 FROM webhook_dispatches d
                          WHERE d.webhook_event_id = e.id AND d.status IN ('pending', 'in_flight', 'paused'))
        FOR UPDATE SKIP LOCKED
      ), ${deleteDoomedEvents(sql)}, last AS (
        SELECT created_at, id FROM scanned ORDER BY created_at DESC, id DESC LIMIT 1
      )
      SELECT ${doomedEventCounts(sql)},
             (SELECT count(*)::int FROM scanned) AS scanned,
             (SELECT created_at::text FROM last) AS last_created_at,
             (SELECT id FROM last) AS last_id`;
    const r = rows[0];
    if (!r || r.scanned === 0) break;
    counts.events += r.events;
    counts.dispatches += r.dispatches;
    counts.attempts += r.attempts;
    counts.batches++;
    await opts.onBatch?.(counts);
    if (r.scanned < limit || !r.last_id) break;
    cursor = { created_at: r.last_created_at as string, id: r.last_id };
    await pause();
  }

  // Old attempts whose event no longer exists.
  let after: Cursor = null;
  for (;;) {
    type Row = { deleted: number; scanned: number; last_created_at: string | null; last_id: string | null };
    const rows: Row[] = await sql<Row[]>`
      WITH scanned AS (
        SELECT a.id, a.created_at, a.webhook_event_id FROM webhook_deliveries a
        WHERE a.created_at < ${opts.cutoff}
          AND (${after?.created_at ?? null}::timestamptz IS NULL OR (a.created_at, a.id) > (${after?.created_at ?? null}::timestamptz, ${after?.id ?? null}::uuid))
        ORDER BY a.created_at, a.id
        LIMIT ${limit}
      ), deleted AS (
        DELETE FROM webhook_deliveries
        WHERE id IN (SELECT s.id FROM scanned s WHERE NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.id = s.webhook_event_id))
        RETURNING 1
      ), last AS (
        SELECT created_at, id FROM scanned ORDER BY created_at DESC, id DESC LIMIT 1
      )
      SELECT (SELECT count(*)::int FROM deleted) AS deleted, (SELECT count(*)::int FROM scanned) AS scanned,
             (SELECT created_at::text FROM last) AS last_created_at, (SELECT id FROM last) AS last_id`;
    const r = rows[0];
    if (!r || r.scanned === 0) break;
    counts.orphan_attempts += r.deleted;
    counts.batches++;
    await opts.onBatch?.(counts);
    if (r.scanned < limit || !r.last_id) break;
    after = { created_at: r.last_created_at as string, id: r.last_id };
    await pause();
  }
  return counts;
}
