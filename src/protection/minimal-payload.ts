/**
 * Minimal payloads: an endpoint's `include_fields` names the parts of an event's `data` it receives.
 *
 *   include_fields: null                                   everything (the default)
 *   include_fields: ["user_id", "customer.email"]          these paths, for every event type
 *   include_fields: { "order.*": ["order_id", "total"],    per event type: the most specific filter
 *                     "user.registered": ["user_id"],      matching the event's type wins (exact type,
 *                     "*": ["user_id"] }                   then the longest 'prefix.*', then '*');
 *                                                          a type no filter matches gets everything
 *
 * Paths are dotted; a path through an array applies to each of its elements
 * ("items.sku" keeps the sku of every item). A path naming an object keeps the whole object.
 * Pure functions, applied by the worker before signing.
 */
import { isValidEventFilter } from '../catalog/patterns.ts';
import { ValidationError } from '../errors/errors.ts';
import { isRawJson } from '../util/exact-json.ts';
import type { IncludeFields } from '../ledger/claims.ts';

/** Stored with the endpoint, so its shape is the ledger's (ledger/claims.ts); these functions give it meaning. */
export type { IncludeFields };

const PATH = /^[^.\s]{1,100}(\.[^.\s]{1,100}){0,15}$/;
const MAX_PATHS = 200;
const MAX_FILTERS = 100;

/** JSON schema for the API field (shape only; `validateIncludeFields` checks the contents). */
export const includeFieldsSchema = {
  anyOf: [
    { type: 'null' },
    { type: 'array', maxItems: MAX_PATHS, items: { type: 'string', minLength: 1, maxLength: 400 } },
    {
      type: 'object',
      maxProperties: MAX_FILTERS,
      additionalProperties: { type: 'array', maxItems: MAX_PATHS, items: { type: 'string', minLength: 1, maxLength: 400 } },
    },
  ],
} as const;

/** Throws ValidationError for a path or event filter that is not well-formed. */
export function validateIncludeFields(value: IncludeFields | null | undefined): void {
  if (value === null || value === undefined) return;
  const checkPaths = (paths: unknown, where: string) => {
    if (!Array.isArray(paths)) throw new ValidationError(`include_fields${where} must be an array of field paths`, { field: 'include_fields' });
    for (const p of paths) {
      if (typeof p !== 'string' || !PATH.test(p)) {
        throw new ValidationError(`include_fields${where}: "${String(p).slice(0, 100)}" is not a field path (e.g. user_id, customer.email)`, {
          field: 'include_fields',
        });
      }
    }
  };
  if (Array.isArray(value)) return checkPaths(value, '');
  for (const [filter, paths] of Object.entries(value)) {
    if (!isValidEventFilter(filter)) {
      throw new ValidationError(`include_fields: "${filter.slice(0, 100)}" is not an event type or wildcard`, { field: 'include_fields' });
    }
    checkPaths(paths, `["${filter}"]`);
  }
}

/** The paths an event of this type is limited to, or null when it gets all its data. */
export function selectIncludeFields(include: IncludeFields | null | undefined, eventType: string): string[] | null {
  if (include === null || include === undefined) return null;
  if (Array.isArray(include)) return include;
  if (Object.hasOwn(include, eventType)) return include[eventType] as string[];
  let best: string | null = null;
  for (const filter of Object.keys(include)) {
    if (!filter.endsWith('.*')) continue;
    const prefix = filter.slice(0, -1); // keeps the dot: 'order.*' matches 'order.created', not 'orders.x'
    if (eventType.startsWith(prefix) && (best === null || filter.length > best.length)) best = filter;
  }
  if (best !== null) return include[best] as string[];
  return Object.hasOwn(include, '*') ? (include['*'] as string[]) : null;
}

type PathTree = { [key: string]: PathTree | true };

function buildTree(paths: readonly string[]): PathTree {
  const root: PathTree = Object.create(null);
  for (const path of paths) {
    const parts = path.split('.');
    let node = root;
    for (let i = 0; i < parts.length; i++) {
      const part = parts[i] as string;
      const existing = node[part];
      if (existing === true) break; // a shorter path already keeps this whole subtree
      if (i === parts.length - 1) node[part] = true;
      else node = (node[part] = existing ?? Object.create(null)) as PathTree;
    }
  }
  return root;
}

/** A copy of `data` with only the given paths. */
export function pickFields(data: unknown, paths: readonly string[]): Record<string, unknown> {
  const picked = pick(data, buildTree(paths));
  return picked !== undefined && typeof picked === 'object' && picked !== null && !Array.isArray(picked) ? (picked as Record<string, unknown>) : {};
}

function pick(value: unknown, tree: PathTree): unknown {
  if (Array.isArray(value)) return value.map((v) => pick(v, tree)).filter((v) => v !== undefined);
  if (value === null || typeof value !== 'object' || isRawJson(value)) return undefined;
  const out: Record<string, unknown> = {};
  for (const [key, sub] of Object.entries(tree)) {
    if (!Object.hasOwn(value, key)) continue;
    const v = (value as Record<string, unknown>)[key];
    if (sub === true) setOwn(out, key, v);
    else {
      const inner = pick(v, sub);
      if (inner !== undefined) setOwn(out, key, inner);
    }
  }
  return out;
}

/** Assigns even a key named "__proto__" as an own data property (JSON.parse makes such keys). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  else obj[key] = value;
}
