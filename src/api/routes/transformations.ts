/**
 * Transformations (docs/transformations.md) beyond an endpoint's own fields:
 *   GET  /transformation-templates                 the ready presets, with their code
 *   POST /endpoints/:id/transformation/preview     what the endpoint would be sent for a stored event
 *        ({event_id}) or a sample ({event_type, data}), through its transformation or through
 *        unsaved code ({transformation}); nothing is delivered or written.
 *
 * Given only what it uses (not the whole Services bag), so it needs no exception to the layers.
 */
import type { FastifyInstance } from 'fastify';
import { v7 as uuidv7 } from 'uuid';
import type { Config } from '../../config/config.ts';
import type { Ledger } from '../../ledger/connection.ts';
import { findEndpoint } from '../../ledger/endpoints.ts';
import { getEvent } from '../../ledger/events.ts';
import type { DataProtection } from '../../protection/data-protection.ts';
import type { SecretBox } from '../../crypto/secret-box.ts';
import { openStaticHeaders } from '../endpoint-delivery-settings.ts';
import { buildEnvelope } from '../../delivery/envelope.ts';
import { TEMPLATES, presentTemplate } from '../../delivery/templates/catalog.ts';
import type { TransformationEvent, TransformedRequest } from '../../delivery/transformation/contract.ts';
import { TRANSFORMATION_MAX_CHARS, type Transformer } from '../../delivery/transformation/transformer.ts';
import { NotFoundError, TransformationBusyError, TransformationFailedError, ValidationError } from '../../errors/errors.ts';
import { eventTypeName, idParams, uuid } from '../schemas.ts';

export type TransformationRouteDeps = {
  config: Config;
  ledger: Ledger;
  transformer: Transformer;
  dataProtection: DataProtection;
  secretBox: Pick<SecretBox, 'open'>;
};

type PreviewBody = { event_id?: string; event_type?: string; data?: Record<string, unknown>; transformation?: string };

export async function transformationRoutes(app: FastifyInstance, deps: TransformationRouteDeps): Promise<void> {
  const tags = ['transformations'];

  app.get('/transformation-templates', { schema: { tags } }, async () => ({ data: TEMPLATES.map(presentTemplate) }));

  app.post<{ Params: { id: string }; Body: PreviewBody }>(
    '/endpoints/:id/transformation/preview',
    {
      schema: {
        tags,
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          properties: {
            event_id: uuid,
            event_type: eventTypeName,
            data: { type: 'object' },
            transformation: { type: 'string', maxLength: TRANSFORMATION_MAX_CHARS },
          },
        },
      },
    },
    async (request) => {
      const organizationId = request.tenant.readOrganizationId;
      const endpoint = await findEndpoint(deps.ledger.sql, organizationId, request.params.id);
      if (!endpoint || endpoint.kind !== 'endpoint') throw new NotFoundError('endpoint', request.params.id);
      const b = request.body;

      let event: Omit<TransformationEvent, 'dataJson'>;
      let data: { text: string; sealed: boolean };
      if (b.event_id !== undefined) {
        if (b.event_type !== undefined || b.data !== undefined) {
          throw new ValidationError('event_id: give either event_id (a stored event) or event_type with data (a sample), not both', { field: 'event_id' });
        }
        const stored = await getEvent(deps.ledger.sql, organizationId, b.event_id);
        // The endpoint's own organization only, even for the admin key: an event goes to its organization's endpoints.
        if (!stored || stored.organization_id !== endpoint.organization_id) throw new NotFoundError('event', b.event_id);
        event = { id: stored.id, type: stored.event_type, createdAt: stored.created_at };
        data = { text: JSON.stringify(stored.data), sealed: stored.data_sealed };
      } else if (b.event_type !== undefined) {
        event = { id: uuidv7(), type: b.event_type, createdAt: new Date() };
        // A sample is not sealed: a value in it that looks sealed is the caller's text, not ours to open.
        data = { text: JSON.stringify(b.data ?? {}), sealed: false };
      } else {
        throw new ValidationError('event_id: give event_id (a stored event) or event_type with data (a sample)', { field: 'event_id' });
      }
      // The data as the worker would hand it over: the endpoint's allow-list applied, sealed fields opened.
      const dataJson = deps.dataProtection.prepareDispatchData({
        event_type: event.type,
        data_text: data.text,
        data_sealed: data.sealed,
        include_fields: endpoint.include_fields,
      });
      if (b.transformation !== undefined) await deps.transformer.check(b.transformation);
      const source = b.transformation ?? endpoint.transformation;
      // The endpoint's static headers go with every request, under a transformation's own.
      const fixed = openStaticHeaders(endpoint.headers, (sealed) => deps.secretBox.open(sealed));
      if (!source) {
        const body = buildEnvelope(event.id, event.type, event.createdAt, dataJson);
        return present({ url: endpoint.url, headers: {}, body }, fixed, false, 0);
      }
      const result = await deps.transformer.apply(endpoint.id, source, { ...event, dataJson }, endpoint.url);
      switch (result.kind) {
        case 'busy':
          throw new TransformationBusyError();
        case 'failed':
          throw new TransformationFailedError(result.reason.replace(/^transformation /, ''), { kind: result.failure, line: result.line });
        case 'cancel':
          return { transformed: true, cancelled: true, request: null, duration_ms: round(result.durationMs) };
        default:
          return present(result.request, fixed, true, result.durationMs);
      }
    },
  );

  /** The request as it would be sent, less the signature headers, which are made at sending time. */
  function present(r: TransformedRequest, fixed: Record<string, string | null> | null, transformed: boolean, durationMs: number) {
    return {
      transformed,
      cancelled: false,
      request: {
        method: 'POST',
        url: r.url,
        headers: { ...fixed, ...r.headers, 'content-type': 'application/json', 'user-agent': deps.config.delivery.userAgent },
        body: JSON.parse(r.body) as unknown,
      },
      duration_ms: round(durationMs),
    };
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;
