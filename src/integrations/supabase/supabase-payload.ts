/**
 * The body Supabase Database Webhooks (pg_net) POST for a row change:
 *   INSERT {type, table, schema, record, old_record: null}
 *   UPDATE {type, table, schema, record, old_record}
 *   DELETE {type, table, schema, record: null, old_record}
 * The JSON schema checks types (Fastify turns a violation into 400); `checkPayloadShape` checks what a
 * schema cannot say simply: which of record/old_record each operation needs.
 */
import { ValidationError } from '../../errors/errors.ts';
import type { CaptureOperation } from '../../ledger/table-capture.ts';

export type SupabasePayload = {
  type: CaptureOperation;
  table: string;
  schema: string;
  record: Record<string, unknown> | null;
  old_record: Record<string, unknown> | null;
};

const rowOrNull = { anyOf: [{ type: 'object' }, { type: 'null' }] } as const;
const identifier = { type: 'string', minLength: 1, maxLength: 63 } as const;

/** Open to extra fields: Supabase may add some, and they change nothing here. */
export const SUPABASE_PAYLOAD_SCHEMA = {
  type: 'object',
  required: ['type', 'table', 'schema'],
  properties: {
    type: { type: 'string', enum: ['INSERT', 'UPDATE', 'DELETE'] },
    table: identifier,
    schema: identifier,
    record: rowOrNull,
    old_record: rowOrNull,
  },
} as const;

export function checkPayloadShape(p: SupabasePayload): void {
  const needsRecord = p.type !== 'DELETE';
  const needsOld = p.type !== 'INSERT';
  if (needsRecord && !isRow(p.record)) throw new ValidationError(`a ${p.type} payload needs "record" to be the row`, { field: 'body.record' });
  if (needsOld && !isRow(p.old_record)) throw new ValidationError(`a ${p.type} payload needs "old_record" to be the row`, { field: 'body.old_record' });
}

function isRow(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
