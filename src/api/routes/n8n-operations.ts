/**
 * n8n operations beside the workflow registry (n8n.ts), docs/n8n.md:
 *   /n8n/workflows/seed       the seed's seven workflows at N8N_WEBHOOK_URL (admin)
 *   /n8n/sync                 the seed's direct send to one workflow, by path, through the ledger
 *   /n8n/discover             read n8n's API and bring the registry in line (admin)
 */
import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { requireAdmin } from '../plugins/admin-only.ts';
import { idempotencyKey } from '../idempotency-key.ts';
import { productionUrl } from '../../integrations/n8n/routing.ts';
import { checkSeedPaths, seedN8nWorkflows } from '../../integrations/n8n/seed.ts';
import { syncToWorkflow } from '../../integrations/n8n/sync.ts';
import { discoverN8nWorkflows } from '../../integrations/n8n/discovery.ts';
import { workflowSecretsOf } from '../../integrations/n8n/integration.ts';
import { webhookPath } from './n8n.ts';

/** What this module uses of the API's services. */
type N8nOperationRouteDeps = Pick<ApiServices, 'checkDestination' | 'config' | 'dataProtection' | 'ledger' | 'liveBus' | 'log' | 'secretBox'>;

export async function n8nOperationRoutes(app: FastifyInstance, services: N8nOperationRouteDeps): Promise<void> {
  const { ledger, config } = services;
  const tags = ['n8n'];
  const secrets = workflowSecretsOf(services);

  app.post<{ Body: { base_url?: string } | undefined }>(
    '/n8n/workflows/seed',
    {
      // With N8N_API_URL it first pages through n8n's workflow list (each call bounded by N8N_API_TIMEOUT_MS).
      config: { answerDeadlineMs: false },
      preHandler: requireAdmin,
      schema: { tags, body: { type: 'object', additionalProperties: false, properties: { base_url: { type: 'string', minLength: 8, maxLength: 2048 } } } },
    },
    async (request) => {
      const baseUrl = request.body?.base_url ?? config.n8n.webhookUrl;
      // Every seed URL shares this host: one check covers the seven.
      if (baseUrl) await services.checkDestination(productionUrl(baseUrl, 'user-registration'), 'base_url');
      const served = baseUrl ? await checkSeedPaths(config, baseUrl) : null;
      return { data: await seedN8nWorkflows(ledger.sql, { organizationId: request.tenant.writeOrganizationId, baseUrl, secrets, served }) };
    },
  );

  app.post<{ Body: { sync_type: string; data?: Record<string, unknown>; wait_ms?: number } }>(
    '/n8n/sync',
    {
      // Data, not a management action: left out of the audit trail like event ingestion. It waits for
      // its delivery by design (wait_ms, up to a minute): no answer deadline.
      config: { audit: false, answerDeadlineMs: false },
      schema: {
        tags,
        body: {
          type: 'object',
          required: ['sync_type'],
          additionalProperties: false,
          properties: { sync_type: webhookPath, data: { type: 'object' }, wait_ms: { type: 'integer', minimum: 0, maximum: 60_000 } },
        },
      },
    },
    async (request, reply) => {
      const result = await syncToWorkflow(services, {
        organizationId: request.tenant.writeOrganizationId,
        syncType: request.body.sync_type,
        data: request.body.data ?? {},
        idempotencyKey: idempotencyKey(request),
        waitMs: request.body.wait_ms ?? config.n8n.syncWaitMs,
      });
      reply.code(result.status === 'delivered' || result.status === 'failed' ? 200 : 202);
      return result;
    },
  );

  app.post<{ Body: { page_size?: number } | undefined }>(
    '/n8n/discover',
    {
      // Pages through n8n's API, each call bounded by N8N_API_TIMEOUT_MS: no answer deadline.
      config: { answerDeadlineMs: false },
      preHandler: requireAdmin,
      schema: { tags, body: { type: 'object', additionalProperties: false, properties: { page_size: { type: 'integer', minimum: 1, maximum: 250 } } } },
    },
    async (request) => {
      const organizationId = request.tenant.writeOrganizationId;
      const result = await discoverN8nWorkflows({ sql: ledger.sql, config, secrets, log: services.log }, { organizationId, pageSize: request.body?.page_size });
      return { organization_id: organizationId, ...result };
    },
  );
}
