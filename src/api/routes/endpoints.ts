/**
 * Endpoint management. A new endpoint's secret (and a rotated one) is in the response once and
 * never again: the ledger keeps only its ciphertext.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { idParams, isoDate, pageQuery, parseDate, shortText } from '../schemas.ts';
import { listEndpointAttempts } from '../../ledger/events.ts';
import {
  deleteEndpoint,
  findEndpoint,
  listEndpoints,
  rotateEndpointSecret,
  setEndpointActive,
  recoverEndpointEvents,
  updateEndpoint,
} from '../../ledger/endpoints.ts';
import { generateWebhookSecret } from '../../delivery/signature.ts';
import { NotFoundError, ValidationError } from '../../errors/errors.ts';
import { insertWithinUserQuota } from '../endpoint-quota.ts';
import { endpointPresenter } from '../presenters.ts';
import { includeFieldsSchema } from '../../protection/minimal-payload.ts';
import { contentFilterSchema } from '../../catalog/content-filter.ts';
import { transformationFieldSchemas } from '../endpoint-transformation.ts';
import { batchingFieldSchemas, endpointChanges, endpointInputDeps, newEndpointColumns, type EndpointBody, type EndpointPatch } from '../endpoint-input.ts';
import { deliverySettingSchemas } from '../endpoint-delivery-settings.ts';

/** What this module uses of the API's services. */
type EndpointsRouteDeps = Pick<ApiServices, 'checkDestination' | 'config' | 'dataProtection' | 'ledger' | 'secretBox' | 'transformer' | 'userLimits'>;

const eventFilters = { type: 'array', minItems: 1, maxItems: 100, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 200 } } as const;
const url = { type: 'string', minLength: 8, maxLength: 2048 } as const;
/** An endpoint's writable fields (the portal's routes take the same, less the operator's). */
export const endpointFields = {
  name: shortText,
  url,
  events: eventFilters,
  description: { type: ['string', 'null'], maxLength: 2000 },
  metadata: { type: 'object' },
  rate_limit_per_second: { type: ['integer', 'null'], minimum: 1, maximum: 100_000 },
  max_in_flight: { type: ['integer', 'null'], minimum: 1, maximum: 1000 },
  user_id: { type: ['string', 'null'], minLength: 1, maxLength: 200 },
  include_fields: includeFieldsSchema,
  filter: contentFilterSchema,
  fifo: { type: 'boolean' },
  fifo_on_exhausted: { type: 'string', enum: ['hold', 'skip'] },
  ...batchingFieldSchemas,
  ...transformationFieldSchemas,
  ...deliverySettingSchemas,
} as const;

/** Deliveries one recover call queues at most (it says `truncated`; call again for the rest). */
const RECOVER_LIMIT = 10_000;

export async function endpointRoutes(app: FastifyInstance, services: EndpointsRouteDeps): Promise<void> {
  const { ledger, secretBox } = services;
  const tags = ['endpoints'];
  const inputDeps = endpointInputDeps(services);
  const presentEndpoint = endpointPresenter((sealed) => secretBox.open(sealed));

  async function load(request: FastifyRequest<{ Params: { id: string } }>) {
    const row = await findEndpoint(ledger.sql, request.tenant.readOrganizationId, request.params.id);
    if (!row || row.kind !== 'endpoint') throw new NotFoundError('endpoint', request.params.id);
    return row;
  }

  app.post<{ Body: EndpointBody }>(
    '/endpoints',
    {
      schema: {
        tags,
        body: { type: 'object', required: ['name', 'url'], additionalProperties: false, properties: { ...endpointFields, is_active: { type: 'boolean' } } },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const columns = await newEndpointColumns(b, inputDeps);
      const secret = generateWebhookSecret();
      const row = await insertWithinUserQuota(services, {
        ...columns,
        organizationId: request.tenant.writeOrganizationId,
        userId: b.user_id ?? null,
        secretCiphertext: secretBox.seal(secret),
        kind: 'endpoint',
      });
      reply.code(201);
      return { ...presentEndpoint(row), secret };
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/endpoints',
    { schema: { tags, querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery } } } },
    async (request) => {
      const rows = await listEndpoints(ledger.sql, {
        organizationId: request.tenant.readOrganizationId,
        after: request.query.cursor,
        limit: request.query.limit,
      });
      return { data: rows.map(presentEndpoint), next_cursor: rows.length === request.query.limit ? rows[rows.length - 1]?.id : null };
    },
  );

  app.get<{ Params: { id: string } }>('/endpoints/:id', { schema: { tags, params: idParams } }, async (request) => presentEndpoint(await load(request)));

  app.patch<{ Params: { id: string }; Body: EndpointPatch }>(
    '/endpoints/:id',
    { schema: { tags, params: idParams, body: { type: 'object', minProperties: 1, additionalProperties: false, properties: endpointFields } } },
    async (request) => {
      const current = await load(request);
      const changes = await endpointChanges(request.body, inputDeps, current);
      const row = await updateEndpoint(ledger.sql, request.tenant.readOrganizationId, request.params.id, changes);
      if (!row) throw new NotFoundError('endpoint', request.params.id);
      return presentEndpoint(row);
    },
  );

  app.delete<{ Params: { id: string } }>('/endpoints/:id', { schema: { tags, params: idParams } }, async (request, reply) => {
    await load(request);
    await deleteEndpoint(ledger.sql, request.tenant.readOrganizationId, request.params.id);
    reply.code(204);
  });

  for (const action of ['enable', 'disable'] as const) {
    app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>(
      `/endpoints/:id/${action}`,
      { schema: { tags, params: idParams, body: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 500 } } } } },
      async (request) => {
        await load(request);
        const reason = request.body?.reason ?? 'disabled through the API';
        const row = await setEndpointActive(ledger.sql, request.tenant.readOrganizationId, request.params.id, action === 'enable', reason);
        if (!row) throw new NotFoundError('endpoint', request.params.id);
        return presentEndpoint(row);
      },
    );
  }

  app.post<{ Params: { id: string }; Body: { since: string; until?: string } }>(
    '/endpoints/:id/recover',
    {
      schema: {
        tags,
        params: idParams,
        body: {
          type: 'object',
          required: ['since'],
          additionalProperties: false,
          properties: { since: isoDate, until: isoDate },
        },
      },
    },
    async (request) => {
      await load(request);
      const since = parseDate('since', request.body.since) as Date;
      const until = parseDate('until', request.body.until) ?? null;
      if (until && until <= since) throw new ValidationError('until: must be after since', { field: 'until' });
      const result = await recoverEndpointEvents(ledger.sql, request.tenant.readOrganizationId, request.params.id, { since, until, limit: RECOVER_LIMIT });
      if (!result) throw new NotFoundError('endpoint', request.params.id);
      return result;
    },
  );

  app.post<{ Params: { id: string }; Body: { overlap_seconds?: number } | undefined }>(
    '/endpoints/:id/rotate-secret',
    {
      schema: {
        tags,
        params: idParams,
        body: { type: 'object', additionalProperties: false, properties: { overlap_seconds: { type: 'integer', minimum: 0, maximum: 30 * 24 * 3600 } } },
      },
    },
    async (request) => {
      await load(request);
      const secret = generateWebhookSecret();
      const overlapMs = request.body?.overlap_seconds !== undefined ? request.body.overlap_seconds * 1000 : services.config.keys.rotationOverlapMs;
      const row = await rotateEndpointSecret(ledger.sql, request.tenant.readOrganizationId, request.params.id, secretBox.seal(secret), overlapMs);
      if (!row) throw new NotFoundError('endpoint', request.params.id);
      return { ...presentEndpoint(row), secret };
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string } }>(
    '/endpoints/:id/attempts',
    { schema: { tags, params: idParams, querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery } } } },
    async (request) => {
      const endpoint = await load(request);
      const rows = await listEndpointAttempts(ledger.sql, endpoint.id, request.query.cursor, request.query.limit);
      return { data: rows.map(services.dataProtection.openAttempt), next_cursor: rows.length === request.query.limit ? rows[rows.length - 1]?.id : null };
    },
  );
}
