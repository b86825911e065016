/**
 * The operator's endpoint tools (`carteiro endpoints test`, `carteiro recover --dry-run`):
 *   POST /endpoints/:id/test             a `webhook.test` event delivered to this endpoint alone → 202
 *   POST /endpoints/:id/recover/preview  {since, until?} → {would_recover, truncated}: what
 *                                        POST /endpoints/:id/recover would queue, nothing written
 */
import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { idParams, isoDate, parseDate } from '../schemas.ts';
import { countRecoverableEvents, insertTestDelivery } from '../../ledger/endpoint-tools.ts';
import { NotFoundError, ValidationError } from '../../errors/errors.ts';

/** What this module uses of the API's services. */
type EndpointToolsRouteDeps = Pick<ApiServices, 'ledger'>;

/** Events one preview counts at most (`truncated` says there are more). */
const PREVIEW_LIMIT = 1_000_000;

export async function endpointToolRoutes(app: FastifyInstance, services: EndpointToolsRouteDeps): Promise<void> {
  const tags = ['endpoints'];
  const { ledger } = services;

  app.post<{ Params: { id: string }; Body: { message?: string } | undefined }>(
    '/endpoints/:id/test',
    {
      schema: {
        tags,
        description: 'Deliver a synthetic webhook.test event to this endpoint only (held while the endpoint is disabled).',
        params: idParams,
        body: { type: 'object', additionalProperties: false, properties: { message: { type: 'string', maxLength: 2000 } } },
      },
    },
    async (request, reply) => {
      const data = { test: true, endpoint_id: request.params.id, message: request.body?.message ?? 'A test delivery from Carteiro' };
      const row = await insertTestDelivery(ledger.sql, request.tenant.readOrganizationId, request.params.id, data);
      if (!row) throw new NotFoundError('endpoint', request.params.id);
      reply.code(202);
      return { ...row, status_url: `/api/webhooks/events/${row.event_id}/status` };
    },
  );

  app.post<{ Params: { id: string }; Body: { since: string; until?: string } }>(
    '/endpoints/:id/recover/preview',
    {
      schema: {
        tags,
        description: 'How many events POST /endpoints/:id/recover would queue over the window (a dry run).',
        params: idParams,
        body: { type: 'object', required: ['since'], additionalProperties: false, properties: { since: isoDate, until: isoDate } },
      },
    },
    async (request) => {
      const since = parseDate('since', request.body.since) as Date;
      const until = parseDate('until', request.body.until) ?? null;
      if (until && until <= since) throw new ValidationError('until: must be after since', { field: 'until' });
      const n = await countRecoverableEvents(ledger.sql, request.tenant.readOrganizationId, request.params.id, { since, until, limit: PREVIEW_LIMIT + 1 });
      if (n === undefined) throw new NotFoundError('endpoint', request.params.id);
      return { would_recover: Math.min(n, PREVIEW_LIMIT), truncated: n > PREVIEW_LIMIT };
    },
  );
}
