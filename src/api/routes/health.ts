/**
 * The seed's monitoring routes. /health is public and answers 503 when the ledger is down, so load
 * balancers take the process out; /stats reads the queue straight from the ledger.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { readHealth, WORKER_FRESH_MS } from '../../observability/health.ts';
import { readQueueStats, readRecentTotals } from '../../ledger/stats.ts';
import { readWorkerLiveness } from '../../ledger/workers.ts';
import { countN8nWorkflows } from '../../ledger/n8n-workflows.ts';

/** What this module uses of the API's services. */
type HealthRouteDeps = Pick<ApiServices, 'catalog' | 'config' | 'dispatcher' | 'healthChecks' | 'ledger' | 'redis'>;

export async function healthRoutes(app: FastifyInstance, services: HealthRouteDeps): Promise<void> {
  const health = async (_req: unknown, reply: import('fastify').FastifyReply) => {
    const report = await readHealth(services);
    reply.code(report.overall_status === 'unhealthy' ? 503 : 200);
    return report;
  };
  app.get('/health', { config: { public: true }, schema: { tags: ['monitoring'], security: [] } }, health);

  app.get('/stats', { schema: { tags: ['monitoring'] } }, async (request) => {
    const org = request.tenant.readOrganizationId;
    const [queues, totals, workers, supported, n8nWorkflows] = await Promise.all([
      readQueueStats(services.ledger.sql, org),
      readRecentTotals(services.ledger.sql, org),
      readWorkerLiveness(services.ledger.sql, WORKER_FRESH_MS, services.config.worker.stallMs),
      services.catalog.list(request.tenant.writeOrganizationId),
      countN8nWorkflows(services.ledger.sql, org),
    ]);
    const { webhookUrl, apiUrl } = services.config.n8n;
    return {
      // `stalled`: a live worker has made no progress while work has been due (see observability/health.ts).
      status: workers.stalled > 0 ? 'stalled' : workers.live > 0 ? 'active' : 'idle',
      queues: { high_priority: queues.high_priority, normal_priority: queues.normal_priority, retry: queues.retry },
      processing_tasks: queues.in_flight,
      supported_events: supported.map((t) => t.name),
      // Registered workflows carry their full URLs: they are delivered to with no N8N_* variable set.
      n8n_integration: webhookUrl || apiUrl || n8nWorkflows.registered > 0 ? 'active' : 'not_configured',
      paused: queues.paused,
      workers: workers.live,
      stalled_workers: workers.stalled,
      last_hour: totals,
      ledger: services.ledger.embedded ? 'pglite' : 'postgres',
    };
  });
}
