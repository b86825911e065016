/**
 * The seed's health report: {overall_status, services: {webhook_manager, redis, supabase, n8n}, timestamp}.
 * "supabase" is the ledger (Postgres or embedded PGlite); "webhook_manager" is whether any worker has
 * shown a heartbeat recently, wherever it runs.
 *
 * `n8n` beside it says what Carteiro knows of n8n: the workflows registered (in every organization:
 * numbers only, /health is public), whether n8n's API is configured and answering, and the last
 * discovery. "services.n8n" is 'configured' when workflows are registered, even with no N8N_* variable
 * set (each row carries its full URL), so it never reads not_configured while deliveries go to n8n.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../config/config.ts';
import type { Ledger } from '../ledger/connection.ts';
import { pingLedger } from '../ledger/stats.ts';
import { readWorkerLiveness } from '../ledger/workers.ts';
import { pingRedis } from '../coordination/redis.ts';
import { countN8nWorkflows } from '../ledger/n8n-workflows.ts';
import { readLastN8nDiscoveryRun, type N8nDiscoveryRun } from '../ledger/n8n-discovery-runs.ts';

const CHECK_TIMEOUT_MS = 2_000;
export const WORKER_FRESH_MS = 30_000;

/**
 * `stalled` (webhook_manager): deliveries have been due for longer than CARTEIRO_WORKER_STALL_MS and a
 * live worker has neither claimed nor recorded in that time (its heartbeat goes on, its work does not).
 */
export type ServiceState = 'healthy' | 'unhealthy' | 'not_configured' | 'configured' | 'reachable' | 'unreachable' | 'no_workers' | 'stalled';

export type HealthReport = {
  overall_status: 'healthy' | 'degraded' | 'unhealthy';
  services: { webhook_manager: ServiceState; redis: ServiceState; supabase: ServiceState; n8n: ServiceState };
  n8n: N8nHealth;
  ledger: 'postgres' | 'pglite';
  timestamp: string;
};

export type N8nHealth = {
  /** N8N_API_URL: its probe's answer (reachable, unreachable, unhealthy: the key refused), or not_configured. */
  api: ServiceState;
  webhook_url: 'configured' | 'not_configured';
  /** null when the ledger could not be read. `unconfirmed`: n8n's API did not list their path when last asked. */
  workflows: { registered: number; active: number; unconfirmed: number } | null;
  /**
   * The most recent run in any organization: when, whether it worked, its counts. Not which
   * organization, nor n8n's error text (it names n8n's internal address): /health is public; the error
   * is in the log and in the answer to whoever ran the discovery.
   */
  last_discovery: Pick<N8nDiscoveryRun, 'finished_at' | 'ok' | 'result'> | null;
};

/**
 * A check beside the core's (n8n's reachability): the integrations that run in a process hand theirs
 * to it when it is composed (runtime/compose.ts), and its answer overrides the core's for its lines.
 */
export type HealthCheck = () => Promise<Partial<HealthReport['services']>>;

/** What the report reads: the ledger, Redis, this process's worker (if any), and the extra checks. */
export type HealthDeps = {
  config: Pick<Config, 'worker' | 'n8n'>;
  ledger: Pick<Ledger, 'sql' | 'embedded'>;
  redis: Redis | null;
  /** The worker running in this process, if any: it counts as alive before its first heartbeat. */
  dispatcher: object | null;
  healthChecks: readonly HealthCheck[];
};

export async function readHealth(services: HealthDeps): Promise<HealthReport> {
  const ledgerUp = await pingLedger(services.ledger.sql, CHECK_TIMEOUT_MS);
  const workers = ledgerUp
    ? await readWorkerLiveness(services.ledger.sql, WORKER_FRESH_MS, services.config.worker.stallMs).catch(() => ({ live: 0, stalled: 0 }))
    : { live: 0, stalled: 0 };
  const redis: ServiceState = services.redis ? ((await pingRedis(services.redis, CHECK_TIMEOUT_MS)) ? 'healthy' : 'unhealthy') : 'not_configured';
  const [workflows, lastDiscovery] = ledgerUp
    ? await Promise.all([countN8nWorkflows(services.ledger.sql).catch(() => null), readLastN8nDiscoveryRun(services.ledger.sql).catch(() => undefined)])
    : [null, undefined];
  const { apiUrl, webhookUrl } = services.config.n8n;
  const report: HealthReport['services'] = {
    webhook_manager: workers.stalled > 0 ? 'stalled' : workers.live > 0 || services.dispatcher ? 'healthy' : 'no_workers',
    redis,
    supabase: ledgerUp ? 'healthy' : 'unhealthy',
    n8n: webhookUrl || apiUrl || (workflows?.registered ?? 0) > 0 ? 'configured' : 'not_configured',
  };
  for (const check of services.healthChecks) Object.assign(report, await check().catch(() => ({})));
  const n8n: N8nHealth = {
    api: apiUrl ? report.n8n : 'not_configured',
    webhook_url: webhookUrl ? 'configured' : 'not_configured',
    workflows,
    last_discovery: lastDiscovery ? { finished_at: lastDiscovery.finished_at, ok: lastDiscovery.ok, result: lastDiscovery.result } : null,
  };
  const overall = !ledgerUp ? 'unhealthy' : report.webhook_manager !== 'healthy' || redis === 'unhealthy' ? 'degraded' : 'healthy';
  return { overall_status: overall, services: report, n8n, ledger: services.ledger.embedded ? 'pglite' : 'postgres', timestamp: new Date().toISOString() };
}
