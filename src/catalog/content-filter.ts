/**
 * Content filters (docs/filters.md): beyond its event types, an endpoint may ask only for the events
 * whose `data` satisfies a condition, written in a small JSON language:
 *
 *   { "amount": { "gte": 1000 } }                       a comparison (eq, ne, gt, gte, lt, lte)
 *   { "provider": "whatsapp" }                          a bare value: equality
 *   { "provider": { "in": ["whatsapp", "telegram"] } }  one of a list
 *   { "user.plan": { "exists": true } }                 present (even as null) or absent
 *   { "and": [ … ] }, { "or": [ … ] }, { "not": { … } } combinations; several keys in one object: all
 *
 * Paths are dotted ("user.plan"). A path through an array reaches each element, and a condition holds
 * when any value there satisfies it (`{"tags": "vip"}` matches `"tags": ["new", "vip"]`).
 *
 * Fan-out happens in SQL, so a filter is compiled once, when the endpoint is written, to a Postgres
 * jsonpath predicate applied there with jsonb_path_match(data, jsonpath, vars). Every value the client
 * gave is a variable ($v1, $v2…) whose value is in `vars`, never a literal in the jsonpath text, so no
 * string can change what the predicate means; field names are quoted jsonpath strings with their `"`
 * and `\` escaped. Each comparison is `exists(path ? (@ op $v))`, true or false (never unknown): a
 * field that is missing, or of another type than the value, does not match, and `not` is plain negation.
 *
 * Fields sealed at rest (CARTEIRO_PII_FIELDS) hold ciphertext in the database, where the filter runs,
 * so a filter naming one is refused. Every refusal is an InvalidFilterError (422) naming the part of
 * the filter that is wrong (`filter.amount.gte`, `filter.or[1].provider.in[0]`).
 */
import { InvalidFilterError } from '../errors/errors.ts';
import type { EndpointFilterColumns } from '../ledger/endpoints.ts';

type Scalar = string | number | boolean | null;

/** Bounds on a filter: nesting of and/or/not, conditions in all, list and text sizes. */
export const FILTER_LIMITS = {
  depth: 5,
  conditions: 50,
  branches: 20,
  inValues: 100,
  stringLength: 1000,
  pathSegments: 16,
  segmentLength: 100,
} as const;

const OPERATORS = ['eq', 'ne', 'in', 'gt', 'gte', 'lt', 'lte', 'exists'] as const;
type Operator = (typeof OPERATORS)[number];
const COMPARISON: Record<'eq' | 'gt' | 'gte' | 'lt' | 'lte', string> = { eq: '==', gt: '>', gte: '>=', lt: '<', lte: '<=' };
const COMBINATORS = new Set(['and', 'or', 'not']);
// No dot (it separates segments), no whitespace or control character.
const SEGMENT = /^[^.\s\p{Cc}]+$/u;

/**
 * JSON schema for the API field. Untyped on purpose: `compileContentFilter` checks everything, so that
 * any filter it cannot apply, a string as much as an unknown operator, is the same 422 naming the part.
 */
export const contentFilterSchema = {
  description: "Content filter over the event's data (docs/filters.md): an object of conditions, or null for none.",
  examples: [{ amount: { gte: 1000 } }, { provider: { in: ['whatsapp', 'telegram'] } }],
} as const;

export type CompiledFilter = { jsonpath: string; vars: Record<string, Scalar | Scalar[]> };

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const isScalar = (v: unknown): v is Scalar => v === null || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)) || typeof v === 'string';

/** A field name as a jsonpath string literal: quoted, with `\` and `"` escaped (nothing else may appear, see SEGMENT). */
function quoteKey(segment: string): string {
  return `"${segment.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/**
 * Compiles a filter to its jsonpath predicate and variables. `sealedFields`: the lower-cased names
 * sealed at rest (DataProtection.piiFields), refused at any depth of a path.
 */
export function compileContentFilter(filter: unknown, sealedFields: ReadonlySet<string>): CompiledFilter {
  const vars: Record<string, Scalar | Scalar[]> = {};
  let conditions = 0;

  const variable = (value: Scalar | Scalar[]): string => {
    const name = `v${Object.keys(vars).length + 1}`;
    vars[name] = value;
    return `$${name}`;
  };

  function path(key: string, field: string): string {
    const segments = key.split('.');
    if (segments.length > FILTER_LIMITS.pathSegments) throw new InvalidFilterError(field, `a path has at most ${FILTER_LIMITS.pathSegments} segments`);
    for (const s of segments) {
      if (s.length === 0 || s.length > FILTER_LIMITS.segmentLength || !SEGMENT.test(s)) {
        throw new InvalidFilterError(
          field,
          `"${key.slice(0, 100)}" is not a field path: dotted names (e.g. amount, user.plan) of 1 to ${FILTER_LIMITS.segmentLength} characters without spaces`,
        );
      }
      if (sealedFields.has(s.toLowerCase())) {
        throw new InvalidFilterError(
          field,
          `"${s}" is sealed at rest (CARTEIRO_PII_FIELDS): the database, where filters run, holds only its ciphertext, so no filter can read it. Filter on another field`,
        );
      }
    }
    return `$.${segments.map(quoteKey).join('.')}`;
  }

  function scalar(value: unknown, field: string, what: string): Scalar {
    if (!isScalar(value)) throw new InvalidFilterError(field, `must be ${what}`);
    if (typeof value === 'string' && value.length > FILTER_LIMITS.stringLength) {
      throw new InvalidFilterError(field, `a string in a filter has at most ${FILTER_LIMITS.stringLength} characters`);
    }
    // Postgres's jsonb holds no NUL character, so no event's data could equal such a string.
    if (typeof value === 'string' && value.includes('\u0000'))
      throw new InvalidFilterError(field, 'a string in a filter cannot hold a NUL character (\\u0000)');
    return value;
  }

  function condition(p: string, op: Operator, value: unknown, field: string): string {
    if (++conditions > FILTER_LIMITS.conditions) throw new InvalidFilterError(field, `a filter has at most ${FILTER_LIMITS.conditions} conditions`);
    switch (op) {
      case 'exists':
        if (typeof value !== 'boolean') throw new InvalidFilterError(field, 'must be true or false');
        return value ? `exists(${p})` : `!(exists(${p}))`;
      case 'in': {
        if (!Array.isArray(value) || value.length === 0 || value.length > FILTER_LIMITS.inValues) {
          throw new InvalidFilterError(field, `must be a list of 1 to ${FILTER_LIMITS.inValues} values`);
        }
        const values = value.map((v, i) => scalar(v, `${field}[${i}]`, 'a string, number, boolean or null'));
        return `exists(${p} ? (@ == ${variable(values)}))`;
      }
      case 'ne': {
        const v = variable(scalar(value, field, 'a string, number, boolean or null'));
        return `(exists(${p}) && !(exists(${p} ? (@ == ${v}))))`;
      }
      case 'gt':
      case 'gte':
      case 'lt':
      case 'lte':
        if (typeof value !== 'number' && typeof value !== 'string') throw new InvalidFilterError(field, 'must be a number or a string');
        return `exists(${p} ? (@ ${COMPARISON[op]} ${variable(scalar(value, field, 'a number or a string'))}))`;
      default:
        return `exists(${p} ? (@ == ${variable(scalar(value, field, 'a string, number, boolean or null'))}))`;
    }
  }

  function fieldConditions(key: string, spec: unknown, field: string): string {
    const p = path(key, field);
    if (Array.isArray(spec)) throw new InvalidFilterError(field, 'a list is not a value to compare with: for one of several values write {"in": [...]}');
    if (!isObject(spec)) return condition(p, 'eq', scalar(spec, field, 'a value or an object of operators'), field);
    const ops = Object.keys(spec);
    if (ops.length === 0) throw new InvalidFilterError(field, `needs at least one operator (${OPERATORS.join(', ')})`);
    const parts = ops.map((op) => {
      const at = `${field}.${op}`;
      if (!(OPERATORS as readonly string[]).includes(op)) {
        throw new InvalidFilterError(at, `unknown operator "${op.slice(0, 100)}" (the operators are ${OPERATORS.join(', ')})`);
      }
      return condition(p, op as Operator, spec[op], at);
    });
    return all(parts);
  }

  function node(value: unknown, field: string, depth: number): string {
    if (depth > FILTER_LIMITS.depth) throw new InvalidFilterError(field, `and/or/not nest at most ${FILTER_LIMITS.depth} deep`);
    if (!isObject(value)) throw new InvalidFilterError(field, 'must be an object of conditions (e.g. {"amount": {"gte": 1000}})');
    const keys = Object.keys(value);
    if (keys.length === 0) throw new InvalidFilterError(field, 'must hold at least one condition (to remove a filter, set it to null)');
    return all(
      keys.map((key) => {
        const at = `${field}.${key}`;
        const v = value[key];
        if (!COMBINATORS.has(key)) return fieldConditions(key, v, at);
        if (key === 'not') return `!(${node(v, at, depth + 1)})`;
        if (!Array.isArray(v) || v.length === 0 || v.length > FILTER_LIMITS.branches) {
          throw new InvalidFilterError(at, `must be a list of 1 to ${FILTER_LIMITS.branches} filters`);
        }
        const branches = v.map((b, i) => node(b, `${at}[${i}]`, depth + 1));
        return branches.length === 1 ? (branches[0] as string) : `(${branches.join(key === 'and' ? ' && ' : ' || ')})`;
      }),
    );
  }

  const jsonpath = node(filter, 'filter', 0);
  return { jsonpath, vars };
}

function all(parts: string[]): string {
  return parts.length === 1 ? (parts[0] as string) : `(${parts.join(' && ')})`;
}

/**
 * The endpoint columns for an API request's `filter`: none when it is absent (nothing to change), all
 * three null for null (no filter), else the filter with its compiled form.
 */
export function contentFilterColumns(filter: unknown, sealedFields: ReadonlySet<string>): Partial<EndpointFilterColumns> {
  if (filter === undefined) return {};
  if (filter === null) return { filter: null, filter_jsonpath: null, filter_vars: null };
  const compiled = compileContentFilter(filter, sealedFields);
  return { filter: filter as Record<string, unknown>, filter_jsonpath: compiled.jsonpath, filter_vars: compiled.vars };
}
