/** Queue figures for /stats, read from the ledger: the queue is the dispatch table. */
import type { Sql } from './connection.ts';

export type QueueStats = {
  high_priority: number;
  normal_priority: number;
  retry: number;
  paused: number;
  in_flight: number;
  /** How long the oldest due delivery has waited (0: none due). */
  oldest_due_seconds: number;
};

export async function readQueueStats(sql: Sql, organizationId: string | null): Promise<QueueStats> {
  const [row] = await sql<QueueStats[]>`
    SELECT
      count(*) FILTER (WHERE status = 'pending' AND next_attempt_at <= now() AND priority > 0)::int AS high_priority,
      count(*) FILTER (WHERE status = 'pending' AND next_attempt_at <= now() AND priority = 0)::int AS normal_priority,
      count(*) FILTER (WHERE status = 'pending' AND next_attempt_at > now())::int AS retry,
      count(*) FILTER (WHERE status = 'paused')::int AS paused,
      count(*) FILTER (WHERE status = 'in_flight')::int AS in_flight,
      coalesce(extract(epoch FROM now() - min(next_attempt_at) FILTER (WHERE status = 'pending' AND next_attempt_at <= now())), 0)::float8 AS oldest_due_seconds
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
  const ping = sql`SELECT 1`.then(
    () => true,
    () => false,
  );
  const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref());
  return Promise.race([ping, timeout]);
}

/** The queue across every organization, for metrics: readQueueStats's figures and how late the oldest due work is. */
export type QueueGauges = QueueStats;

/**
 * readQueueStats across every organization. Metrics read it at scrape time through a cache
 * (observability/metrics.ts), so scrapes cannot add up to load.
 */
export function readQueueGauges(sql: Sql): Promise<QueueGauges> {
  return readQueueStats(sql, null);
}

export type FailingEndpoint = {
  id: string;
  organization_id: string;
  kind: string;
  failed_attempts_in_row: number;
  failing_seconds: number;
  is_active: boolean;
};
export type EndpointHealth = { failing: number; disabled: number; top: FailingEndpoint[] };

/**
 * Endpoints whose latest attempts failed: how many, how many are disabled, and the `limit` with the
 * longest run of failed attempts (a bounded set of label values for metrics).
 */
export async function readEndpointHealth(sql: Sql, limit: number): Promise<EndpointHealth> {
  const [counts] = await sql<{ failing: number; disabled: number }[]>`
    SELECT count(*) FILTER (WHERE failed_attempts_in_row > 0)::int AS failing,
           count(*) FILTER (WHERE NOT is_active)::int AS disabled
      FROM webhook_endpoints`;
  const top =
    limit > 0
      ? await sql<FailingEndpoint[]>`
        SELECT id, organization_id, kind, failed_attempts_in_row, is_active,
               coalesce(extract(epoch FROM now() - failing_since), 0)::float8 AS failing_seconds
          FROM webhook_endpoints
         WHERE failed_attempts_in_row > 0
         ORDER BY failed_attempts_in_row DESC, id
         LIMIT ${limit}`
      : [];
  return { failing: counts?.failing ?? 0, disabled: counts?.disabled ?? 0, top: [...top] };
}
