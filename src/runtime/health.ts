/**
 * The seed's health report: {overall_status, services: {webhook_manager, redis, supabase, n8n}, timestamp}.
 * "supabase" is the ledger (Postgres or embedded PGlite); "webhook_manager" is whether any worker has
 * shown a heartbeat recently, wherever it runs.
 */
import type { Services } from './services.ts';
import { pingLedger } from '../ledger/stats.ts';
import { readWorkerLiveness } from '../ledger/workers.ts';
import { pingRedis } from '../conveyor/redis.ts';

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
  ledger: 'postgres' | 'pglite';
  timestamp: string;
};

/**
 * Extra checks other parts register (n8n reachability). Registered once per module, they are handed
 * the services of the process (or test instance) being reported on.
 */
export type HealthContributor = (services: Services) => Promise<Partial<HealthReport['services']>>;
export const healthContributors: HealthContributor[] = [];

export async function readHealth(services: Services): Promise<HealthReport> {
  const ledgerUp = await pingLedger(services.ledger.sql, CHECK_TIMEOUT_MS);
  const workers = ledgerUp
    ? await readWorkerLiveness(services.ledger.sql, WORKER_FRESH_MS, services.config.worker.stallMs).catch(() => ({ live: 0, stalled: 0 }))
    : { live: 0, stalled: 0 };
  const redis: ServiceState = services.redis ? ((await pingRedis(services.redis, CHECK_TIMEOUT_MS)) ? 'healthy' : 'unhealthy') : 'not_configured';
  const report: HealthReport['services'] = {
    webhook_manager: workers.stalled > 0 ? 'stalled' : workers.live > 0 || services.dispatcher ? 'healthy' : 'no_workers',
    redis,
    supabase: ledgerUp ? 'healthy' : 'unhealthy',
    n8n: services.config.n8n.webhookUrl || services.config.n8n.apiUrl ? 'configured' : 'not_configured',
  };
  for (const contribute of healthContributors) Object.assign(report, await contribute(services).catch(() => ({})));
  const overall = !ledgerUp ? 'unhealthy' : report.webhook_manager !== 'healthy' || redis === 'unhealthy' ? 'degraded' : 'healthy';
  return { overall_status: overall, services: report, ledger: services.ledger.embedded ? 'pglite' : 'postgres', timestamp: new Date().toISOString() };
}
