/**
 * Ingestion and event queries. Every write answers 202 only after the event and its fan-out are
 * committed; an Idempotency-Key (header or field) returns the first event for a repeated request.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { idParams, isoDate, pageQuery, parseDate, shortText, triggerBody, uuid } from '../schemas.ts';
import { BUILTIN_EVENT_TYPES, kebabName } from '../../catalog/builtin-event-types.ts';
import { getEvent, getEventAttempts, getEventDispatches, listEvents, type InsertResult } from '../../ledger/events.ts';
import { requeueEventDispatches } from '../../ledger/replays.ts';
import { findEndpoint } from '../../ledger/endpoints.ts';
import { ConflictError, ForbiddenError, NotFoundError, ValidationError } from '../../errors/errors.ts';
import type { EventInput } from '../../ingest/ingest-service.ts';
import type { Sql } from '../../ledger/connection.ts';
import { organizationExists } from '../../tenancy/organization-check.ts';
import { presentEvent, presentEventStatus } from '../presenters.ts';
import { idempotencyKey } from '../idempotency-key.ts';

/** What this module uses of the API's services. */
type EventsRouteDeps = Pick<ApiServices, 'catalog' | 'dataProtection' | 'ingest' | 'ledger'>;

const MAX_BATCH_EVENTS = 1000;
const BUILTIN_BY_KEBAB = new Map(BUILTIN_EVENT_TYPES.map((t) => [kebabName(t.name), t.name]));

/** The organization an event is written to: the tenant's, or for the admin the one the body names. */
async function writeOrganization(request: FastifyRequest, bodyOrg: string | undefined, sql: Sql): Promise<string> {
  const t = request.tenant;
  if (!bodyOrg) return t.writeOrganizationId;
  if (t.principal.kind === 'admin') {
    // An event for an organization that does not exist would be stored for no one.
    if (!(await organizationExists(sql, bodyOrg))) throw new NotFoundError('organization', bodyOrg);
    return bodyOrg;
  }
  if (bodyOrg !== t.writeOrganizationId) throw new ForbiddenError('organization_id must be your own organization');
  return bodyOrg;
}

function accepted(r: InsertResult) {
  return {
    event_id: r.id,
    event_type: r.event_type,
    status: r.status,
    created_at: r.created_at,
    duplicate: r.duplicate,
    status_url: `/api/webhooks/events/${r.id}/status`,
  };
}

export async function eventRoutes(app: FastifyInstance, services: EventsRouteDeps): Promise<void> {
  const { ingest, ledger } = services;
  // Personal fields are sealed at rest; authorised callers see them opened (docs/security.md). Only
  // data Carteiro sealed is opened: an enc:v1 value in other data was put there by someone else.
  const reveal = <E extends { data: unknown; data_sealed: boolean }>(e: E): E => (e.data_sealed ? { ...e, data: services.dataProtection.reveal(e.data) } : e);

  app.post<{ Body: EventInput }>('/trigger', { config: { ingest: true }, schema: { tags: ['events'], body: triggerBody } }, async (request, reply) => {
    const body = request.body;
    const result = await ingest.ingest(
      await writeOrganization(request, body.organization_id, ledger.sql),
      {
        ...body,
        idempotency_key: idempotencyKey(request, body.idempotency_key),
      },
      request.ingestTrace,
    );
    reply.code(202);
    return accepted(result);
  });

  app.post<{ Body: { events: EventInput[] } }>(
    '/events/batch',
    {
      config: { ingest: true },
      schema: {
        tags: ['events'],
        body: {
          type: 'object',
          required: ['events'],
          additionalProperties: false,
          properties: { events: { type: 'array', minItems: 1, maxItems: MAX_BATCH_EVENTS, items: triggerBody } },
        },
      },
    },
    async (request, reply) => {
      // A retried batch with one key for the whole request would look idempotent and store every
      // event again: each event carries its own idempotency_key instead.
      if (request.headers['idempotency-key'] !== undefined) {
        throw new ValidationError('Idempotency-Key does not apply to a batch: give each event its own idempotency_key', { field: 'headers.idempotency-key' });
      }
      const orgs = await Promise.all(request.body.events.map((e) => writeOrganization(request, e.organization_id, ledger.sql)));
      if (new Set(orgs).size > 1) throw new ValidationError('a batch must belong to one organization', { field: 'events.organization_id' });
      const results = await ingest.ingestMany(orgs[0] as string, request.body.events, request.ingestTrace);
      reply.code(202);
      return { events: results.map(accepted) };
    },
  );

  // The seed's per-type routes: POST /events/user-registered with the event's data as the body.
  app.post<{ Params: { name: string }; Body: Record<string, unknown> }>(
    '/events/:name',
    {
      config: { ingest: true },
      schema: {
        tags: ['events'],
        params: { type: 'object', required: ['name'], properties: { name: { type: 'string', pattern: '^[a-z][a-z0-9-]{0,199}$' } } },
        body: { type: 'object' },
      },
    },
    async (request, reply) => {
      const org = request.tenant.writeOrganizationId;
      let eventType = BUILTIN_BY_KEBAB.get(request.params.name);
      if (!eventType) {
        const custom = (await services.catalog.list(org)).find((t) => !t.builtin && kebabName(t.name) === request.params.name);
        if (!custom) throw new NotFoundError('event type', request.params.name, { known: [...BUILTIN_BY_KEBAB.keys()] });
        eventType = custom.name;
      }
      const result = await ingest.ingest(
        org,
        {
          event_type: eventType,
          data: request.body,
          idempotency_key: idempotencyKey(request, undefined),
        },
        request.ingestTrace,
      );
      reply.code(202);
      return accepted(result);
    },
  );

  app.get<{ Querystring: { event_type?: string; status?: string; user_id?: string; since?: string; until?: string; limit: number; cursor?: string } }>(
    '/events',
    {
      schema: {
        tags: ['events'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            event_type: shortText,
            status: { type: 'string', enum: ['pending', 'processing', 'completed', 'failed'] },
            user_id: shortText,
            since: isoDate,
            until: isoDate,
            ...pageQuery,
          },
        },
      },
    },
    async (request) => {
      const q = request.query;
      const rows = await listEvents(ledger.sql, {
        organizationId: request.tenant.readOrganizationId,
        eventType: q.event_type,
        status: q.status,
        userId: q.user_id,
        since: parseDate('since', q.since),
        until: parseDate('until', q.until),
        before: q.cursor,
        limit: q.limit,
      });
      return { data: rows.map((e) => presentEvent(reveal(e))), next_cursor: rows.length === q.limit ? rows[rows.length - 1]?.id : null };
    },
  );

  async function loadEvent(request: FastifyRequest<{ Params: { id: string } }>) {
    const event = await getEvent(ledger.sql, request.tenant.readOrganizationId, request.params.id);
    if (!event) throw new NotFoundError('event', request.params.id);
    return event;
  }

  app.get<{ Params: { id: string } }>('/events/:id', { schema: { tags: ['events'], params: idParams } }, async (request) =>
    presentEvent(reveal(await loadEvent(request))),
  );

  app.get<{ Params: { id: string } }>('/events/:id/status', { schema: { tags: ['events'], params: idParams } }, async (request) => {
    const event = await loadEvent(request);
    return presentEventStatus(event, await getEventDispatches(ledger.sql, event.id));
  });

  app.get<{ Params: { id: string } }>('/events/:id/attempts', { schema: { tags: ['events'], params: idParams } }, async (request) => {
    const event = await loadEvent(request);
    return { data: (await getEventAttempts(ledger.sql, event.id)).map(services.dataProtection.openAttempt) };
  });

  app.post<{ Params: { id: string }; Body: { endpoint_id?: string } | undefined }>(
    '/events/:id/replay',
    {
      schema: {
        tags: ['events'],
        params: idParams,
        body: { type: 'object', additionalProperties: false, properties: { endpoint_id: uuid } },
      },
    },
    async (request, reply) => {
      const event = await loadEvent(request);
      const endpointId = request.body?.endpoint_id;
      // An endpoint that is not the event's organization's is as unknown as one that does not exist.
      if (endpointId && !(await findEndpoint(ledger.sql, event.organization_id, endpointId))) {
        throw new NotFoundError('endpoint_id: endpoint', endpointId, { field: 'endpoint_id' });
      }
      const requeued = await requeueEventDispatches(ledger.sql, event.id, { endpointId, alone: true });
      if (requeued === 0) throw new ConflictError('nothing to replay: the event has no finished deliveries (they may still be in progress)');
      reply.code(202);
      return { event_id: event.id, requeued };
    },
  );
}
