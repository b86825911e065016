/**
 * The seed's health report: {overall_status, services: {webhook_manager, redis, supabase, n8n}, timestamp}.
 * "supabase" is the ledger (Postgres or embedded PGlite); "webhook_manager" is whether any worker has
 * shown a heartbeat recently, wherever it runs.
 */
import type { Services } from './services.ts';
import { pingLedger } from '../ledger/stats.ts';
import { countLiveWorkers } from '../ledger/workers.ts';
import { pingRedis } from '../conveyor/redis.ts';

const CHECK_TIMEOUT_MS = 2_000;
const WORKER_FRESH_MS = 30_000;

export type ServiceState = 'healthy' | 'unhealthy' | 'not_configured' | 'configured' | 'reachable' | 'unreachable' | 'no_workers';

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
  const workers = ledgerUp ? await countLiveWorkers(services.ledger.sql, WORKER_FRESH_MS).catch(() => 0) : 0;
  const redis: ServiceState = services.redis ? ((await pingRedis(services.redis, CHECK_TIMEOUT_MS)) ? 'healthy' : 'unhealthy') : 'not_configured';
  const report: HealthReport['services'] = {
    webhook_manager: workers > 0 || services.dispatcher ? 'healthy' : 'no_workers',
    redis,
    supabase: ledgerUp ? 'healthy' : 'unhealthy',
    n8n: services.config.n8n.webhookUrl || services.config.n8n.apiUrl ? 'configured' : 'not_configured',
  };
  for (const contribute of healthContributors) Object.assign(report, await contribute(services).catch(() => ({})));
  const overall = !ledgerUp ? 'unhealthy' : report.webhook_manager !== 'healthy' || redis === 'unhealthy' ? 'degraded' : 'healthy';
  return { overall_status: overall, services: report, ledger: services.ledger.embedded ? 'pglite' : 'postgres', timestamp: new Date().toISOString() };
}
