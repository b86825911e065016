/**
 * One spelling per id. Postgres reads a UUID in either case, but JavaScript compares strings: an
 * organization id in upper case was "another organization" to the tenancy checks, and a key that
 * never matched the ledger's own (lower-case) text broke the idempotency lookup after a commit. So
 * every UUID a client sends (path, query, body, X-Organization-Id) is lower-cased once, at the edge,
 * and nothing behind it ever sees another spelling.
 */
import type { Ajv } from 'ajv';

/** A UUID in either case, as a JSON-schema `pattern` (no flags there) and as the test below. */
export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
const UUID = new RegExp(UUID_PATTERN);

/**
 * The schema keyword that lower-cases a string holding a UUID (and leaves any other string as it is:
 * an n8n workflow id is Carteiro's UUID or n8n's own, case-sensitive, id). An `x-` name, so the API
 * description (OpenAPI) carries it as an extension rather than as an unknown keyword.
 */
export const LOWERCASE_UUID = 'x-lowercase-uuid';

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

/** The id in its one spelling: a UUID in lower case; anything else unchanged. */
export function normalizeId(value: string): string {
  return UUID.test(value) ? value.toLowerCase() : value;
}

/** Teaches a validator the keyword: it rewrites the value in place, in the request's own params, query or body. */
export function addIdNormalization(ajv: Ajv): void {
  ajv.addKeyword({
    keyword: LOWERCASE_UUID,
    type: 'string',
    schemaType: 'boolean',
    modifying: true,
    errors: false,
    validate: (on: boolean, data: string, _schema: unknown, ctx?: { parentData: Record<string | number, unknown>; parentDataProperty: string | number }) => {
      if (on && ctx?.parentData !== undefined) ctx.parentData[ctx.parentDataProperty] = normalizeId(data);
      return true;
    },
  });
}
