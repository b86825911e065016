/**
 * POST /supabase: Supabase Database Webhooks in (integrations/supabase/supabase-ingress.ts). Public as far as API
 * keys go, authenticated instead by the X-Supabase-Webhook-Secret header, checked before the body is
 * even read: a wrong secret is 401 whatever the body. Answers 202 with the stored event, or 200 with
 * `ignored: true` for a change that makes no event.
 */
import type { FastifyInstance } from 'fastify';
import type { ApiServices } from '../api-services.ts';
import { createSupabaseIngress, SUPABASE_SECRET_HEADER } from '../../integrations/supabase/supabase-ingress.ts';
import { SUPABASE_PAYLOAD_SCHEMA, type SupabasePayload } from '../../integrations/supabase/supabase-payload.ts';
import { ValidationError } from '../../errors/errors.ts';

/** What this module uses of the API's services. */
type SupabaseRouteDeps = Pick<ApiServices, 'config' | 'ingest' | 'ledger'>;

export async function supabaseRoutes(app: FastifyInstance, services: SupabaseRouteDeps): Promise<void> {
  const ingress = createSupabaseIngress({
    sql: services.ledger.sql,
    ingest: services.ingest,
    secret: services.config.supabase.webhookSecret,
    eventMap: services.config.supabase.eventMap,
  });

  app.post<{ Body: SupabasePayload }>(
    '/supabase',
    {
      config: { public: true, ingest: true },
      schema: { tags: ['supabase'], security: [], body: SUPABASE_PAYLOAD_SCHEMA },
      onRequest: async (request) => ingress.authenticate(request.headers[SUPABASE_SECRET_HEADER]),
    },
    async (request, reply) => {
      const key = request.headers['idempotency-key'];
      if (key !== undefined && (typeof key !== 'string' || key.length === 0 || key.length > 200)) {
        throw new ValidationError('Idempotency-Key must be 1 to 200 characters', { field: 'headers.idempotency-key' });
      }
      const result = await ingress.accept(request.body, { idempotencyKey: key, trace: request.ingestTrace });
      if (!result) return { event_id: null, ignored: true, reason: `this ${request.body.type} on ${request.body.table} makes no event` };
      reply.code(202);
      return {
        event_id: result.id,
        event_type: result.event_type,
        status: result.status,
        created_at: result.created_at,
        duplicate: result.duplicate,
        status_url: `/api/webhooks/events/${result.id}/status`,
      };
    },
  );
}
