/**
 * n8n workflows as destinations (docs/n8n.md):
 *   /n8n/workflows            CRUD; each workflow is delivered to through its own endpoint of kind 'n8n'
 *   /n8n/workflows/:id/rotate-secret  a new secret of its own, shown once (as for endpoints)
 *   (seeding, sync and discovery: n8n-operations.ts)
 * A workflow is addressed by Carteiro's id (uuid) or by its n8n workflow id.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { pageQuery, shortText } from '../schemas.ts';
import {
  createN8nWorkflow,
  deleteN8nWorkflow,
  findN8nWorkflow,
  listN8nWorkflows,
  n8nTestUrl,
  n8nWorkflowActive,
  updateN8nWorkflow,
  type N8nWorkflowChanges,
  type N8nWorkflowRow,
} from '../../ledger/n8n-workflows.ts';
import { listEndpointAttempts } from '../../ledger/events.ts';
import { isValidEventFilter } from '../../catalog/patterns.ts';
import { generateWebhookSecret } from '../../delivery/signature.ts';
import { ConflictError, NotFoundError, ValidationError } from '../../errors/errors.ts';
import { pathOfUrl, productionUrl } from '../../integrations/n8n/routing.ts';
import { isUuid, LOWERCASE_UUID } from '../id-normalization.ts';
import { workflowSecretsOf } from '../../integrations/n8n/integration.ts';
import { rotateEndpointSecret } from '../../ledger/endpoints.ts';

/** What this module uses of the API's services. */
type N8nRouteDeps = Pick<ApiServices, 'checkDestination' | 'config' | 'dataProtection' | 'ledger' | 'secretBox'>;

/** Carteiro's id (a UUID, lower-cased like every other) or n8n's own workflow id (kept as sent). */
const workflowParams = {
  type: 'object',
  required: ['id'],
  additionalProperties: false,
  properties: { id: { type: 'string', minLength: 1, maxLength: 200, [LOWERCASE_UUID]: true } },
} as const;
export const webhookPath = { type: 'string', minLength: 1, maxLength: 500, pattern: '^[A-Za-z0-9_~.-][A-Za-z0-9_~./-]*$' } as const;
const workflowFields = {
  workflow_id: { type: 'string', minLength: 1, maxLength: 200 },
  name: shortText,
  webhook_url: { type: 'string', minLength: 8, maxLength: 2048 },
  path: webhookPath,
  event_types: { type: 'array', maxItems: 100, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 200 } },
  is_active: { type: 'boolean' },
  use_test_url: { type: 'boolean' },
  secret: { type: ['string', 'null'], minLength: 8, maxLength: 500 },
  generate_secret: { type: 'boolean' },
} as const;

type WorkflowBody = Partial<{
  workflow_id: string;
  name: string;
  webhook_url: string;
  path: string;
  event_types: string[];
  is_active: boolean;
  use_test_url: boolean;
  secret: string | null;
  generate_secret: boolean;
}>;

export function presentN8nWorkflow(w: N8nWorkflowRow) {
  const active = n8nWorkflowActive(w);
  return {
    id: w.id,
    organization_id: w.organization_id,
    workflow_id: w.workflow_id,
    name: w.name,
    path: w.path,
    webhook_url: w.webhook_url,
    test_url: n8nTestUrl(w.webhook_url),
    use_test_url: w.use_test_url,
    delivery_url: w.delivery_url,
    event_types: w.event_types,
    is_active: active,
    inactive_reason: active ? null : w.disabled_reason,
    state: w.state,
    state_changed_at: w.state_changed_at,
    last_error: w.last_error,
    last_error_at: w.last_error_at,
    success_count: Number(w.success_count),
    failure_count: Number(w.failure_count),
    signing: w.has_secret ? 'workflow_secret' : 'webhook_secret',
    source: w.source,
    webhook_endpoint_id: w.webhook_endpoint_id,
    last_discovered_at: w.last_discovered_at,
    confirmed: w.confirmed,
    confirmation_note: w.confirmation_note,
    confirmed_at: w.confirmed_at,
    created_at: w.created_at,
    updated_at: w.updated_at,
  };
}

function checkEventTypes(list: string[] | undefined): void {
  const bad = list?.find((e) => !isValidEventFilter(e));
  if (bad !== undefined)
    throw new ValidationError(`event_types: "${bad}" is not an event type or wildcard (e.g. user.registered, integration.*)`, { field: 'event_types' });
}

export async function n8nRoutes(app: FastifyInstance, services: N8nRouteDeps): Promise<void> {
  const { ledger, config } = services;
  const tags = ['n8n'];
  const secrets = workflowSecretsOf(services);

  async function load(request: FastifyRequest<{ Params: { id: string } }>): Promise<N8nWorkflowRow> {
    const id = request.params.id;
    const row = await findN8nWorkflow(ledger.sql, request.tenant.readOrganizationId, isUuid(id) ? { id } : { workflowId: id });
    if (!row) throw new NotFoundError('n8n workflow', id);
    return row;
  }

  /**
   * The secret a body asks for: undefined = unchanged, null = WEBHOOK_SECRET, else the plain secret
   * (`shown`: generated here, so it goes in the answer, once).
   */
  function requestedSecret(b: WorkflowBody): { secret: string | null | undefined; shown: boolean } {
    if (b.generate_secret && b.secret !== undefined) throw new ValidationError('send secret or generate_secret, not both', { field: 'secret' });
    // Without WEBHOOK_SECRET a workflow without its own secret would be delivered to unsigned.
    if (b.secret === null && !secrets.sharedSecretSet) {
      throw new ValidationError('secret: null would leave the workflow unsigned, since WEBHOOK_SECRET is not set; rotate its secret instead', {
        field: 'secret',
      });
    }
    return b.generate_secret ? { secret: generateWebhookSecret(), shown: true } : { secret: b.secret, shown: false };
  }

  function checkTestUrl(webhookUrl: string, useTestUrl: boolean | undefined): void {
    if (useTestUrl && !n8nTestUrl(webhookUrl)) {
      throw new ValidationError('use_test_url needs an n8n production URL (…/webhook/<path>) to derive the test URL (…/webhook-test/<path>) from', {
        field: 'use_test_url',
      });
    }
  }

  app.post<{ Body: WorkflowBody }>(
    '/n8n/workflows',
    { schema: { tags, body: { type: 'object', required: ['workflow_id', 'name'], additionalProperties: false, properties: workflowFields } } },
    async (request, reply) => {
      const b = request.body;
      checkEventTypes(b.event_types);
      let webhookUrl = b.webhook_url;
      if (!webhookUrl) {
        if (!b.path) throw new ValidationError('give webhook_url, or path (with N8N_WEBHOOK_URL set)', { field: 'webhook_url' });
        if (!config.n8n.webhookUrl) throw new ValidationError('path alone needs N8N_WEBHOOK_URL set; give webhook_url instead', { field: 'webhook_url' });
        webhookUrl = productionUrl(config.n8n.webhookUrl, b.path);
      }
      checkTestUrl(webhookUrl, b.use_test_url);
      const path = b.path ?? pathOfUrl(webhookUrl);
      await services.checkDestination(webhookUrl, 'webhook_url');
      const requested = requestedSecret(b);
      // No secret asked for: WEBHOOK_SECRET signs, or (unset) the workflow gets one of its own, shown now.
      const own = requested.secret === undefined || requested.secret === null ? secrets.forNewWorkflow() : null;
      const secret = own?.secret ?? requested.secret ?? null;
      const shown = requested.shown || own !== null;
      let row: N8nWorkflowRow;
      try {
        row = await createN8nWorkflow(ledger.sql, {
          organizationId: request.tenant.writeOrganizationId,
          workflowId: b.workflow_id as string,
          name: b.name as string,
          webhookUrl,
          path,
          eventTypes: b.event_types ?? [],
          isActive: b.is_active ?? true,
          inactiveReason: 'disabled through the API',
          source: 'api',
          secretCiphertext: own?.ciphertext ?? (secret ? services.secretBox.seal(secret) : null),
          useTestUrl: b.use_test_url ?? false,
        });
      } catch (err) {
        if ((err as { code?: string }).code === '23505')
          throw new ConflictError(`an n8n workflow with workflow_id ${b.workflow_id} already exists in this organization`);
        throw err;
      }
      reply.code(201);
      return { ...presentN8nWorkflow(row), ...(shown ? { secret } : {}) };
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/n8n/workflows',
    { schema: { tags, querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery } } } },
    async (request) => {
      const rows = await listN8nWorkflows(ledger.sql, {
        organizationId: request.tenant.readOrganizationId,
        after: request.query.cursor,
        limit: request.query.limit,
      });
      return { data: rows.map(presentN8nWorkflow), next_cursor: rows.length === request.query.limit ? rows[rows.length - 1]?.id : null };
    },
  );

  app.get<{ Params: { id: string } }>('/n8n/workflows/:id', { schema: { tags, params: workflowParams } }, async (request) =>
    presentN8nWorkflow(await load(request)),
  );

  app.patch<{ Params: { id: string }; Body: WorkflowBody }>(
    '/n8n/workflows/:id',
    { schema: { tags, params: workflowParams, body: { type: 'object', minProperties: 1, additionalProperties: false, properties: workflowFields } } },
    async (request) => {
      const current = await load(request);
      const b = request.body;
      checkEventTypes(b.event_types);
      const webhookUrl = b.webhook_url ?? (b.path && config.n8n.webhookUrl ? productionUrl(config.n8n.webhookUrl, b.path) : undefined);
      if (b.path && !webhookUrl && !b.webhook_url)
        throw new ValidationError('path alone needs N8N_WEBHOOK_URL set; give webhook_url instead', { field: 'webhook_url' });
      if (webhookUrl) await services.checkDestination(webhookUrl, 'webhook_url');
      checkTestUrl(webhookUrl ?? current.webhook_url, b.use_test_url ?? current.use_test_url);
      const { secret, shown } = requestedSecret(b);
      const changes: N8nWorkflowChanges = {};
      if (b.workflow_id !== undefined) changes.workflowId = b.workflow_id;
      if (b.name !== undefined) changes.name = b.name;
      if (webhookUrl !== undefined) {
        changes.webhookUrl = webhookUrl;
        changes.path = b.path ?? pathOfUrl(webhookUrl);
      }
      if (b.event_types !== undefined) changes.eventTypes = b.event_types;
      if (b.use_test_url !== undefined) changes.useTestUrl = b.use_test_url;
      if (secret !== undefined) changes.secretCiphertext = secret === null ? null : services.secretBox.seal(secret);
      if (b.is_active !== undefined && b.is_active !== n8nWorkflowActive(current))
        changes.active = { isActive: b.is_active, reason: 'disabled through the API' };
      let row: N8nWorkflowRow | undefined;
      try {
        row = await updateN8nWorkflow(ledger.sql, request.tenant.readOrganizationId, current.id, changes);
      } catch (err) {
        if ((err as { code?: string }).code === '23505')
          throw new ConflictError(`an n8n workflow with workflow_id ${b.workflow_id} already exists in this organization`);
        throw err;
      }
      if (!row) throw new NotFoundError('n8n workflow', request.params.id);
      return { ...presentN8nWorkflow(row), ...(shown ? { secret } : {}) };
    },
  );

  // As for an endpoint: a new secret, in this answer only; the old one keeps signing alongside for the
  // overlap (default CARTEIRO_SECRET_ROTATION_OVERLAP_MS), so n8n can be switched over without a gap.
  app.post<{ Params: { id: string }; Body: { overlap_seconds?: number } | undefined }>(
    '/n8n/workflows/:id/rotate-secret',
    {
      schema: {
        tags,
        params: workflowParams,
        body: { type: 'object', additionalProperties: false, properties: { overlap_seconds: { type: 'integer', minimum: 0, maximum: 30 * 24 * 3600 } } },
      },
    },
    async (request) => {
      const current = await load(request);
      if (!current.webhook_endpoint_id)
        throw new ConflictError('this workflow has lost its delivery endpoint; update it (PATCH) to make a new one, then rotate');
      const fresh = secrets.generate();
      const overlapMs = request.body?.overlap_seconds !== undefined ? request.body.overlap_seconds * 1000 : config.keys.rotationOverlapMs;
      const rotated = await rotateEndpointSecret(ledger.sql, request.tenant.readOrganizationId, current.webhook_endpoint_id, fresh.ciphertext, overlapMs);
      const row = rotated && (await findN8nWorkflow(ledger.sql, request.tenant.readOrganizationId, { id: current.id }));
      if (!row) throw new NotFoundError('n8n workflow', request.params.id);
      return { ...presentN8nWorkflow(row), secret: fresh.secret };
    },
  );

  app.delete<{ Params: { id: string } }>('/n8n/workflows/:id', { schema: { tags, params: workflowParams } }, async (request, reply) => {
    const row = await load(request);
    await deleteN8nWorkflow(ledger.sql, request.tenant.readOrganizationId, row.id);
    reply.code(204);
  });

  for (const action of ['enable', 'disable'] as const) {
    app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>(
      `/n8n/workflows/:id/${action}`,
      {
        schema: {
          tags,
          params: workflowParams,
          body: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 500 } } },
        },
      },
      async (request) => {
        const current = await load(request);
        const active = action === 'enable';
        const row = await updateN8nWorkflow(ledger.sql, request.tenant.readOrganizationId, current.id, {
          active: { isActive: active, reason: request.body?.reason ?? 'disabled through the API' },
        });
        if (!row) throw new NotFoundError('n8n workflow', request.params.id);
        return presentN8nWorkflow(row);
      },
    );
  }

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string } }>(
    '/n8n/workflows/:id/attempts',
    { schema: { tags, params: workflowParams, querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery } } } },
    async (request) => {
      const w = await load(request);
      const rows = w.webhook_endpoint_id ? await listEndpointAttempts(ledger.sql, w.webhook_endpoint_id, request.query.cursor, request.query.limit) : [];
      return { data: rows.map(services.dataProtection.openAttempt), next_cursor: rows.length === request.query.limit ? rows[rows.length - 1]?.id : null };
    },
  );
}
