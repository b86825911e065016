/**
 * Supabase Database Webhooks in: a row change Supabase POSTs becomes the same event the seed's
 * trigger would have written (mapped by the same SQL), then goes through the normal intake, so it is
 * validated against the catalog, stored, fanned out and delivered with retries like any API event.
 *
 * Authentication is a shared secret in a header (Supabase's webhook form lets you add headers), not
 * an API key: the sender is a database, configured once. No secret configured = the ingress is off.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Sql } from '../../ledger/connection.ts';
import type { IngestService, IngestTrace } from '../../ingest/ingest-service.ts';
import type { InsertResult } from '../../ledger/events.ts';
import type { SupabaseEventMap } from '../../config/config.ts';
import { mapCapturedRow } from '../../ledger/table-capture.ts';
import { FeatureDisabledError, UnauthorizedError, UnmappedTableError } from '../../errors/errors.ts';
import { checkPayloadShape, type SupabasePayload } from './supabase-payload.ts';
import { buildEventRoutes, describeRoutes, findRoute } from './supabase-event-map.ts';

export const SUPABASE_SECRET_HEADER = 'x-supabase-webhook-secret';

export type SupabaseIngress = {
  /** Throws FeatureDisabledError when no secret is configured, UnauthorizedError when the header is wrong. */
  authenticate(headerValue: unknown): void;
  /** The stored event, or null when the change makes no event (e.g. an integration update that changes nothing). */
  accept(payload: SupabasePayload, opts?: { idempotencyKey?: string | undefined; trace?: IngestTrace | undefined }): Promise<InsertResult | null>;
};

export type SupabaseIngressDeps = { sql: Sql; ingest: IngestService; secret: string | undefined; eventMap: SupabaseEventMap };

export function createSupabaseIngress(deps: SupabaseIngressDeps): SupabaseIngress {
  const routes = buildEventRoutes(deps.eventMap);
  const expected = deps.secret === undefined ? null : digest(deps.secret);

  return {
    authenticate(headerValue) {
      if (!expected) throw new FeatureDisabledError('the Supabase ingress is off: set SUPABASE_WEBHOOK_SECRET to turn it on');
      if (typeof headerValue !== 'string' || !timingSafeEqual(expected, digest(headerValue))) {
        throw new UnauthorizedError(`missing or wrong ${SUPABASE_SECRET_HEADER} header`);
      }
    },

    async accept(payload, opts = {}) {
      checkPayloadShape(payload);
      const route = findRoute(routes, payload.schema, payload.table, payload.type);
      if (!route) throw new UnmappedTableError(`${payload.schema}.${payload.table}`, payload.type, describeRoutes(routes));
      const mapped = await mapCapturedRow(deps.sql, {
        mapping: route.mapping,
        eventType: route.eventType,
        operation: payload.type,
        record: payload.record,
        oldRecord: payload.old_record,
      });
      if (!mapped) return null;
      return deps.ingest.ingest(
        mapped.organization_id,
        {
          event_type: mapped.event_type,
          data: JSON.parse(mapped.data_json) as Record<string, unknown>,
          user_id: mapped.user_id ?? undefined,
          record_id: mapped.record_id ?? undefined,
          table_name: payload.table,
          event_source: 'supabase',
          idempotency_key: opts.idempotencyKey,
        },
        opts.trace,
      );
    },
  };
}

/** Hashing first gives equal-length inputs, so the comparison is constant-time whatever was sent. */
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}
