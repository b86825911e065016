/**
 * The portal's API: what a portal session token may do, for its user within its organization
 * (docs/portal.md). Every route here is marked `config.portal` with the scope it needs, and only a
 * portal session is served (an organization or admin key gets 403: they have their own routes).
 *
 * Ownership is checked in the statements themselves (the `owner` of ledger/endpoints.ts, and
 * ledger/portal-deliveries.ts): another user's endpoint, delivery or event is "not found", exactly
 * as another organization's is. Row level security (migration 0024) is the second wall for database
 * sessions acting for a portal user.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Ledger } from '../../ledger/connection.ts';
import type { Config } from '../../config/config.ts';
import type { SecretBox } from '../../crypto/secret-box.ts';
import type { Catalog } from '../../catalog/catalog.ts';
import type { DataProtection } from '../../protection/data-protection.ts';
import type { UserLimitsReader } from '../../tenancy/user-limits.ts';
import type { PortalPrincipal } from '../../tenancy/portal-principal.ts';
import { idParams, isoDate, pageQuery, parseDate, uuid } from '../schemas.ts';
import {
  deleteEndpoint,
  findEndpoint,
  listEndpoints,
  recoverEndpointEvents,
  rotateEndpointSecret,
  setEndpointActive,
  updateEndpoint,
} from '../../ledger/endpoints.ts';
import { insertTestDelivery } from '../../ledger/endpoint-tools.ts';
import { listEndpointAttempts } from '../../ledger/events.ts';
import { requeueEventDispatches } from '../../ledger/replays.ts';
import { findOwnedDelivery, listDeliveryAttempts, listOwnedDeliveries } from '../../ledger/portal-deliveries.ts';
import { generateWebhookSecret } from '../../delivery/signature.ts';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../errors/errors.ts';
import { endpointPresenter } from '../presenters.ts';
import { insertWithinUserQuota } from '../endpoint-quota.ts';
import { endpointFields } from './endpoints.ts';
import { endpointChanges, endpointInputDeps, newEndpointColumns, type EndpointBody, type EndpointPatch } from '../endpoint-input.ts';
import type { Transformer } from '../../delivery/transformation/transformer.ts';
import { TEMPLATES, presentTemplate } from '../../delivery/templates/catalog.ts';

/** What a portal user may set on its endpoints: the operator's fields (owner, in-flight cap) stay the operator's. */
const { user_id: _owner, max_in_flight: _cap, ...portalEndpointFields } = endpointFields;

type PortalEndpointBody = Omit<EndpointBody, 'user_id' | 'max_in_flight'>;

const RECOVER_LIMIT = 10_000;
const DELIVERY_STATUSES = ['pending', 'in_flight', 'paused', 'succeeded', 'failed', 'cancelled'];

/** The portal session behind a request; any other caller is refused (the portal routes are the session's). */
function sessionOf(request: FastifyRequest): PortalPrincipal {
  const principal = request.tenant.principal;
  if (principal.kind !== 'portal') throw new ForbiddenError('the portal routes need a portal session token (POST /api/webhooks/portal/sessions)');
  return principal;
}

/** What the portal's routes need of the process's services (narrower than the Services bag). */
type PortalRouteDeps = {
  ledger: Pick<Ledger, 'sql'>;
  /** Seals new secrets and static header values; opens header values for their owner. */
  secretBox: Pick<SecretBox, 'seal' | 'open'>;
  config: Pick<Config, 'keys' | 'delivery'>;
  catalog: Pick<Catalog, 'list'>;
  dataProtection: Pick<DataProtection, 'openAttempt' | 'piiFields'>;
  checkDestination: (url: string, field?: string) => Promise<void>;
  userLimits: UserLimitsReader;
  /** Compiles and checks a transformation before it is stored, as for an organization key. */
  transformer: Transformer;
};

export async function portalRoutes(app: FastifyInstance, services: PortalRouteDeps): Promise<void> {
  const tags = ['portal'];
  const { ledger, secretBox } = services;
  const inputDeps = endpointInputDeps(services);
  const presentEndpoint = endpointPresenter((sealed) => secretBox.open(sealed));
  const read = { portal: 'read' } as const;
  const manage = { portal: 'manage' } as const;

  async function ownedEndpoint(request: FastifyRequest<{ Params: { id: string } }>) {
    const s = sessionOf(request);
    const row = await findEndpoint(ledger.sql, s.organizationId, request.params.id, s.userId);
    if (!row || row.kind !== 'endpoint') throw new NotFoundError('endpoint', request.params.id);
    return row;
  }

  async function ownedDelivery(request: FastifyRequest<{ Params: { id: string } }>) {
    const s = sessionOf(request);
    const row = await findOwnedDelivery(ledger.sql, s.organizationId, s.userId, request.params.id);
    if (!row) throw new NotFoundError('delivery', request.params.id);
    return row;
  }

  app.get('/portal/session', { config: read, schema: { tags } }, async (request) => {
    const s = sessionOf(request);
    const limits = await services.userLimits.fresh(s.organizationId, s.userId);
    return {
      session_id: s.sessionId,
      organization_id: s.organizationId,
      user_id: s.userId,
      scope: s.scope,
      theme: s.theme ?? null,
      limits: { max_endpoints: limits.max_endpoints, events_per_second: limits.events_per_second, events_burst: limits.events_burst },
    };
  });

  app.get('/portal/event-types', { config: read, schema: { tags } }, async (request) => ({
    data: await services.catalog.list(sessionOf(request).organizationId),
  }));

  // The transformation templates, as GET /transformation-templates lists them: the page's template
  // picker fills an endpoint's transformation with one's code.
  app.get('/portal/transformation-templates', { config: read, schema: { tags } }, async (request) => {
    sessionOf(request);
    return { data: TEMPLATES.map(presentTemplate) };
  });

  // ---- Endpoints ---------------------------------------------------------------------------------
  app.post<{ Body: PortalEndpointBody }>(
    '/portal/endpoints',
    {
      config: manage,
      schema: {
        tags,
        body: {
          type: 'object',
          required: ['name', 'url'],
          additionalProperties: false,
          properties: { ...portalEndpointFields, is_active: { type: 'boolean' } },
        },
      },
    },
    async (request, reply) => {
      const s = sessionOf(request);
      const columns = await newEndpointColumns(request.body, inputDeps);
      const secret = generateWebhookSecret();
      const row = await insertWithinUserQuota(services, {
        ...columns,
        organizationId: s.organizationId,
        // The owner is the session's user, always: the body has no user_id to name another.
        userId: s.userId,
        secretCiphertext: secretBox.seal(secret),
        kind: 'endpoint',
      });
      reply.code(201);
      return { ...presentEndpoint(row), secret };
    },
  );

  app.get<{ Querystring: { limit: number; cursor?: string } }>(
    '/portal/endpoints',
    { config: read, schema: { tags, querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery } } } },
    async (request) => {
      const s = sessionOf(request);
      const rows = await listEndpoints(ledger.sql, {
        organizationId: s.organizationId,
        owner: s.userId,
        after: request.query.cursor,
        limit: request.query.limit,
      });
      return { data: rows.map(presentEndpoint), next_cursor: rows.length === request.query.limit ? rows[rows.length - 1]?.id : null };
    },
  );

  app.get<{ Params: { id: string } }>('/portal/endpoints/:id', { config: read, schema: { tags, params: idParams } }, async (request) =>
    presentEndpoint(await ownedEndpoint(request)),
  );

  app.patch<{ Params: { id: string }; Body: Omit<EndpointPatch, 'user_id' | 'max_in_flight'> }>(
    '/portal/endpoints/:id',
    {
      config: manage,
      schema: { tags, params: idParams, body: { type: 'object', minProperties: 1, additionalProperties: false, properties: portalEndpointFields } },
    },
    async (request) => {
      const s = sessionOf(request);
      const current = await ownedEndpoint(request);
      const changes = await endpointChanges(request.body, inputDeps, current);
      const row = await updateEndpoint(ledger.sql, s.organizationId, request.params.id, changes, s.userId);
      if (!row) throw new NotFoundError('endpoint', request.params.id);
      return presentEndpoint(row);
    },
  );

  app.delete<{ Params: { id: string } }>('/portal/endpoints/:id', { config: manage, schema: { tags, params: idParams } }, async (request, reply) => {
    const s = sessionOf(request);
    await ownedEndpoint(request);
    if (!(await deleteEndpoint(ledger.sql, s.organizationId, request.params.id, s.userId))) throw new NotFoundError('endpoint', request.params.id);
    reply.code(204);
  });

  for (const action of ['enable', 'disable'] as const) {
    app.post<{ Params: { id: string }; Body: { reason?: string } | undefined }>(
      `/portal/endpoints/:id/${action}`,
      {
        config: manage,
        schema: { tags, params: idParams, body: { type: 'object', additionalProperties: false, properties: { reason: { type: 'string', maxLength: 500 } } } },
      },
      async (request) => {
        const s = sessionOf(request);
        await ownedEndpoint(request);
        const reason = request.body?.reason ?? 'paused in the portal';
        const row = await setEndpointActive(ledger.sql, s.organizationId, request.params.id, action === 'enable', reason, s.userId);
        if (!row) throw new NotFoundError('endpoint', request.params.id);
        return presentEndpoint(row);
      },
    );
  }

  app.post<{ Params: { id: string } }>('/portal/endpoints/:id/rotate-secret', { config: manage, schema: { tags, params: idParams } }, async (request) => {
    const s = sessionOf(request);
    await ownedEndpoint(request);
    const secret = generateWebhookSecret();
    const row = await rotateEndpointSecret(
      ledger.sql,
      s.organizationId,
      request.params.id,
      secretBox.seal(secret),
      services.config.keys.rotationOverlapMs,
      s.userId,
    );
    if (!row) throw new NotFoundError('endpoint', request.params.id);
    return { ...presentEndpoint(row), secret };
  });

  app.post<{ Params: { id: string }; Body: { message?: string } | undefined }>(
    '/portal/endpoints/:id/test',
    {
      config: manage,
      schema: { tags, params: idParams, body: { type: 'object', additionalProperties: false, properties: { message: { type: 'string', maxLength: 2000 } } } },
    },
    async (request, reply) => {
      const s = sessionOf(request);
      const data = { test: true, endpoint_id: request.params.id, message: request.body?.message ?? 'A test delivery from Carteiro' };
      const row = await insertTestDelivery(ledger.sql, s.organizationId, request.params.id, data, s.userId);
      if (!row) throw new NotFoundError('endpoint', request.params.id);
      reply.code(202);
      return { ...row, deliveries_url: `/api/webhooks/portal/deliveries?event_id=${row.event_id}` };
    },
  );

  app.post<{ Params: { id: string }; Body: { since: string; until?: string } }>(
    '/portal/endpoints/:id/recover',
    {
      config: manage,
      schema: {
        tags,
        params: idParams,
        body: { type: 'object', required: ['since'], additionalProperties: false, properties: { since: isoDate, until: isoDate } },
      },
    },
    async (request) => {
      const s = sessionOf(request);
      await ownedEndpoint(request);
      const since = parseDate('since', request.body.since) as Date;
      const until = parseDate('until', request.body.until) ?? null;
      if (until && until <= since) throw new ValidationError('until: must be after since', { field: 'until' });
      const result = await recoverEndpointEvents(ledger.sql, s.organizationId, request.params.id, { since, until, limit: RECOVER_LIMIT }, s.userId);
      if (!result) throw new NotFoundError('endpoint', request.params.id);
      return result;
    },
  );

  app.get<{ Params: { id: string }; Querystring: { limit: number; cursor?: string } }>(
    '/portal/endpoints/:id/attempts',
    { config: read, schema: { tags, params: idParams, querystring: { type: 'object', additionalProperties: false, properties: { ...pageQuery } } } },
    async (request) => {
      const endpoint = await ownedEndpoint(request);
      const rows = await listEndpointAttempts(ledger.sql, endpoint.id, request.query.cursor, request.query.limit);
      return { data: rows.map(services.dataProtection.openAttempt), next_cursor: rows.length === request.query.limit ? rows[rows.length - 1]?.id : null };
    },
  );

  // ---- Deliveries (one per event and endpoint) and their attempts ----------------------------------
  app.get<{ Querystring: { endpoint_id?: string; event_id?: string; status?: string; limit: number; cursor?: string } }>(
    '/portal/deliveries',
    {
      config: read,
      schema: {
        tags,
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { endpoint_id: uuid, event_id: uuid, status: { type: 'string', enum: DELIVERY_STATUSES }, ...pageQuery },
        },
      },
    },
    async (request) => {
      const s = sessionOf(request);
      const q = request.query;
      const rows = await listOwnedDeliveries(ledger.sql, {
        organizationId: s.organizationId,
        owner: s.userId,
        endpointId: q.endpoint_id,
        eventId: q.event_id,
        status: q.status,
        before: q.cursor,
        limit: q.limit,
      });
      return { data: rows, next_cursor: rows.length === q.limit ? rows[rows.length - 1]?.id : null };
    },
  );

  app.get<{ Params: { id: string } }>('/portal/deliveries/:id', { config: read, schema: { tags, params: idParams } }, async (request) =>
    ownedDelivery(request),
  );

  app.get<{ Params: { id: string } }>('/portal/deliveries/:id/attempts', { config: read, schema: { tags, params: idParams } }, async (request) => {
    const d = await ownedDelivery(request);
    return { data: (await listDeliveryAttempts(ledger.sql, d.event_id, d.endpoint_id)).map(services.dataProtection.openAttempt) };
  });

  app.post<{ Params: { id: string } }>('/portal/deliveries/:id/replay', { config: manage, schema: { tags, params: idParams } }, async (request, reply) => {
    const d = await ownedDelivery(request);
    const requeued = await requeueEventDispatches(ledger.sql, d.event_id, { endpointId: d.endpoint_id, alone: true });
    if (requeued === 0) throw new ConflictError('nothing to replay: the delivery is not finished (it may still be in progress)');
    reply.code(202);
    return { delivery_id: d.id, requeued };
  });
}
