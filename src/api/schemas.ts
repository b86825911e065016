/** JSON-schema pieces shared by the routes. */
import { EVENT_TYPE_NAME_PATTERN } from '../catalog/builtin-event-types.ts';
import { MAX_USER_ID_LENGTH } from '../ingest/ingest-service.ts';
import { LOWERCASE_UUID, UUID_PATTERN } from './id-normalization.ts';

/** Either case is accepted, and the value is lower-cased as it is validated (api/id-normalization.ts). */
export const uuid = {
  type: 'string',
  pattern: UUID_PATTERN,
  [LOWERCASE_UUID]: true,
} as const;
export const idParams = { type: 'object', required: ['id'], properties: { id: uuid }, additionalProperties: false } as const;
export const eventTypeName = { type: 'string', minLength: 3, maxLength: 200, pattern: EVENT_TYPE_NAME_PATTERN } as const;
export const shortText = { type: 'string', minLength: 1, maxLength: 200 } as const;
export const priority = { type: 'string', enum: ['high', 'normal'] } as const;
export const isoDate = { type: 'string', minLength: 4, maxLength: 40 } as const;
export const pageQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 500, default: 50 },
  cursor: uuid,
} as const;

export const triggerBody = {
  type: 'object',
  required: ['event_type', 'data'],
  additionalProperties: false,
  properties: {
    event_type: eventTypeName,
    data: { type: 'object' },
    user_id: { ...shortText, maxLength: MAX_USER_ID_LENGTH },
    organization_id: uuid,
    priority,
    idempotency_key: shortText,
  },
} as const;

import { ValidationError } from '../errors/errors.ts';

/** Parses an ISO-8601 timestamp from a query or body field, naming the field when it is not one. */
export function parseDate(field: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) throw new ValidationError(`${field} must be an ISO-8601 timestamp`, { field });
  // JavaScript dates reach ±275760; past year 9999 they are written "+099999-…", which Postgres refuses.
  const year = d.getUTCFullYear();
  if (year < 1 || year > 9999) throw new ValidationError(`${field} must be between years 0001 and 9999`, { field });
  return d;
}
