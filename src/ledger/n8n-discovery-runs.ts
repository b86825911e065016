/**
 * The last n8n discovery of each organization (migration 0026): what it found, or why n8n's API said
 * no. Written by every discovery (job, CLI, API); read by /health.
 */
import type { Sql } from './connection.ts';

export type N8nDiscoveryRun = { organization_id: string; finished_at: Date; ok: boolean; result: Record<string, unknown> | null; error: string | null };

export async function recordN8nDiscoveryRun(
  sql: Sql,
  organizationId: string,
  run: { ok: true; result: Record<string, number> } | { ok: false; error: string },
): Promise<void> {
  const result = run.ok ? JSON.stringify(run.result) : null;
  const error = run.ok ? null : run.error;
  await sql`
    INSERT INTO n8n_discovery_runs (organization_id, finished_at, ok, result, error)
    VALUES (${organizationId}, now(), ${run.ok}, ${result}::text::jsonb, ${error})
    ON CONFLICT (organization_id) DO UPDATE SET finished_at = now(), ok = EXCLUDED.ok, result = EXCLUDED.result, error = EXCLUDED.error`;
}

/** The most recent run in any organization, or undefined when discovery never ran. */
export async function readLastN8nDiscoveryRun(sql: Sql): Promise<N8nDiscoveryRun | undefined> {
  const [row] = await sql<N8nDiscoveryRun[]>`
    SELECT organization_id, finished_at, ok, result, error FROM n8n_discovery_runs ORDER BY finished_at DESC LIMIT 1`;
  return row;
}
