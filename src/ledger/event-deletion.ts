/**
 * The one way events leave the ledger (retention, erasure): with their attempts and dispatches, in
 * one statement. The caller's statement defines a CTE `doomed` (the events' ids, locked); these
 * fragments add the deletions and their counts to it.
 */
import type { Sql } from './connection.ts';

/** CTEs deleting `doomed`'s attempts, dispatches and events (to follow `doomed` after a comma). */
export function deleteDoomedEvents(sql: Sql) {
  return sql`
    del_attempts AS (
      DELETE FROM webhook_deliveries WHERE webhook_event_id IN (SELECT id FROM doomed) RETURNING 1
    ), del_dispatches AS (
      DELETE FROM webhook_dispatches WHERE webhook_event_id IN (SELECT id FROM doomed) RETURNING 1
    ), del_events AS (
      DELETE FROM webhook_events WHERE id IN (SELECT id FROM doomed) RETURNING 1
    )`;
}

/** Select-list items counting those deletions: `events`, `dispatches`, `attempts`. */
export function doomedEventCounts(sql: Sql) {
  return sql`
    (SELECT count(*)::int FROM del_events) AS events,
    (SELECT count(*)::int FROM del_dispatches) AS dispatches,
    (SELECT count(*)::int FROM del_attempts) AS attempts`;
}
