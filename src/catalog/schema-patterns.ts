/**
 * Regular expressions in an organization's event-type schema run on every event of that type, inside
 * the API process. A pattern with nested quantifiers (`(a+)+$`) can take exponential time on a crafted
 * string, so such schemas are refused when registered, naming where the pattern is. Checked with
 * safe-regex2 (star height ≤ 1), the check Fastify's router uses for its own route patterns.
 */
import safeRegex from 'safe-regex2';
import { ValidationError } from '../errors/errors.ts';

/** Throws ValidationError for the first unsafe or invalid `pattern` / `patternProperties` key. */
export function assertSafePatterns(schema: unknown, path = 'schema'): void {
  if (Array.isArray(schema)) {
    schema.forEach((item, i) => assertSafePatterns(item, `${path}[${i}]`));
    return;
  }
  if (schema === null || typeof schema !== 'object') return;
  for (const [key, value] of Object.entries(schema)) {
    const at = `${path}.${key}`;
    if (key === 'pattern' && typeof value === 'string') check(value, at);
    if (key === 'patternProperties' && value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const p of Object.keys(value)) check(p, `${at}["${p.slice(0, 60)}"]`);
    }
    assertSafePatterns(value, at);
  }
}

function check(pattern: string, field: string): void {
  let ok: boolean;
  try {
    ok = safeRegex(new RegExp(pattern, 'u'));
  } catch {
    throw new ValidationError(`${field} is not a valid regular expression`, { field });
  }
  if (!ok) throw new ValidationError(`${field} could take exponential time on some inputs (nested quantifiers); rewrite it without them`, { field });
}
