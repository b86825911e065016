/** Queue figures for /stats, read from the ledger: the queue is the dispatch table. */
import type { Sql } from './connection.ts';

export type QueueStats = {
  high_priority: number;
  normal_priority: number;
  retry: number;
  paused: number;
  in_flight: number;
};

export async function readQueueStats(sql: Sql, organizationId: string | null): Promise<QueueStats> {
  const [row] = await sql<QueueStats[]>`
    SELECT
      count(*) FILTER (WHERE status = 'pending' AND next_attempt_at <= now() AND priority > 0)::int AS high_priority,
      count(*) FILTER (WHERE status = 'pending' AND next_attempt_at <= now() AND priority = 0)::int AS normal_priority,
      count(*) FILTER (WHERE status = 'pending' AND next_attempt_at > now())::int AS retry,
      count(*) FILTER (WHERE status = 'paused')::int AS paused,
      count(*) FILTER (WHERE status = 'in_flight')::int AS in_flight
    FROM webhook_dispatches
    WHERE status IN ('pending', 'in_flight', 'paused')
      AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)`;
  return row as QueueStats;
}

export type DeliveryTotals = { events: number; delivered: number; failed_attempts: number };

/** Totals over the last hour, for the dashboard and /stats. */
export async function readRecentTotals(sql: Sql, organizationId: string | null): Promise<DeliveryTotals> {
  const [row] = await sql<DeliveryTotals[]>`
    SELECT
      (SELECT count(*)::int FROM webhook_events
        WHERE created_at > now() - interval '1 hour'
          AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)) AS events,
      count(*) FILTER (WHERE success)::int AS delivered,
      count(*) FILTER (WHERE NOT success)::int AS failed_attempts
    FROM webhook_deliveries
    WHERE created_at > now() - interval '1 hour'
      AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)`;
  return row as DeliveryTotals;
}

export async function pingLedger(sql: Sql, timeoutMs: number): Promise<boolean> {
  const ping = sql`SELECT 1`.then(() => true, () => false);
  const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref());
  return Promise.race([ping, timeout]);
}
