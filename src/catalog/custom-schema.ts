/**
 * An organization's event-type schema runs on every event of that type, and the API process is
 * shared by every organization: a schema whose validation takes seconds would stall everyone's
 * requests. JSON Schema has many ways to make validation slow — a `$ref` re-applied through each
 * branch of an `anyOf` doubles the work per level of data (measured: 20 levels took 1.7 s, 22 levels
 * 5.5 s); 535 `anyOf` branches with `contains` over a 300 KB array ran out of a 4 GB heap; `uniqueItems`
 * over objects compares every pair — so no static rule short of banning most of the language can
 * bound it. Instead:
 *
 * - a small *plain* schema (runsInline) runs inline: each part of the data meets at most one part of
 *   the schema and each check is linear in what it looks at, so validation costs O(schema + data),
 *   and compiling it takes milliseconds (compiling is code generation: a plain 62 KB schema took
 *   0.8 s, so size counts too);
 * - any other schema is compiled and run on a separate thread under deadlines and a heap limit
 *   (isolated-validator.ts), so the worst it can do is refuse its own event.
 *
 * Registration refuses only what can never run: `$async` (validation happens as the event arrives),
 * patterns the linear-time engine cannot compile, and schemas over MAX_SCHEMA_BYTES. Every `pattern`
 * and `patternProperties` key runs on RE2 (re2js), linear in its input, so `^(a|a)*$` is harmless;
 * RE2 has no lookaround and no backreferences.
 */
import { RE2JS } from 're2js';
import type { AnySchema, Ajv, CodeOptions, Options, ValidateFunction } from 'ajv';
import { ValidationError } from '../errors/errors.ts';

/** Large enough for any event's description. */
const MAX_SCHEMA_BYTES = 64 * 1024;
/** Plain schemas up to this size compile in a few milliseconds (30 properties: 6 ms). */
const INLINE_SCHEMA_BYTES = 4 * 1024;

/** Keywords whose value is a schema. */
const SCHEMA_VALUED = ['additionalItems', 'additionalProperties', 'contains', 'propertyNames', 'not', 'if', 'then', 'else', 'unevaluatedItems', 'unevaluatedProperties'];
/** Keywords whose value is a list of schemas. */
const SCHEMA_LISTS = ['allOf', 'anyOf', 'oneOf', 'prefixItems'];
/** Keywords whose value maps names to schemas. */
const SCHEMA_MAPS = ['properties', 'patternProperties', '$defs', 'definitions', 'dependentSchemas'];

/**
 * What a plain schema may use: checks of one value each, and applicators that hand each part of the
 * data to at most one subschema (`properties` by name, `additionalProperties` to the other names,
 * `items` to every element). Annotations are listed because they cost nothing; `format` is one
 * (see customSchemaAjvOptions).
 */
const PLAIN_KEYWORDS = new Set([
  'type', 'enum', 'const', 'required', 'properties', 'additionalProperties', 'items',
  'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'multipleOf',
  'minLength', 'maxLength', 'minItems', 'maxItems', 'minProperties', 'maxProperties', 'dependentRequired',
  '$schema', '$id', '$comment', 'title', 'description', 'default', 'examples', 'deprecated', 'readOnly', 'writeOnly', 'format', 'nullable',
]);

/** Ajv's regular-expression engine for custom schemas: RE2, linear in the input's length. */
export const linearRegExp: NonNullable<CodeOptions['regExp']> = Object.assign(
  (pattern: string) => {
    const re = RE2JS.compile(pattern);
    return {
      // JSON Schema patterns are not anchored: a match anywhere in the string counts.
      test: (s: string) => re.matcher(s).find(),
      // ajv shares compiled patterns between schemas by this key: it must tell patterns apart.
      toString: () => `re2:${pattern}`,
    };
  },
  { code: 're2js' },
);

/**
 * One ajv configuration for organizations' schemas, inline or on the validation thread: patterns on
 * the linear-time engine; an `$id` is not registered instance-wide (two organizations may use the
 * same one, and neither learns of the other's); `format` is an annotation, as JSON Schema defines it
 * by default, not a check.
 */
export function customSchemaAjvOptions(): Options {
  return { allErrors: false, strict: false, addUsedSchema: false, validateFormats: false, code: { regExp: linearRegExp } };
}

/**
 * Compiles an organization's schema. Without `$id` instance-wide, ajv resolves a reference to the
 * root (`"$ref": "#"`) only against a root that has an `$id` of its own, so one is lent to it.
 */
export function compileCustomSchema(ajv: Ajv, schema: unknown): ValidateFunction {
  const rooted = schema !== null && typeof schema === 'object' && !Array.isArray(schema) && !('$id' in schema) ? { $id: 'urn:carteiro:event-type', ...schema } : schema;
  return ajv.compile(rooted as AnySchema);
}

/** Throws ValidationError naming the first part of `schema` that can never run. */
export function assertRunnableSchema(schema: unknown, field = 'schema'): void {
  if (Buffer.byteLength(JSON.stringify(schema)) > MAX_SCHEMA_BYTES) {
    throw new ValidationError(`${field} is larger than ${MAX_SCHEMA_BYTES} bytes`, { field });
  }
  forEachSubschema(schema, field, (s, at) => {
    if ('$async' in s) refuse(`${at}.$async`, 'asynchronous schemas are not supported: events are validated as they arrive');
    if (typeof s.pattern === 'string') checkPattern(s.pattern, `${at}.pattern`);
    const patterns = s.patternProperties;
    if (patterns !== null && typeof patterns === 'object' && !Array.isArray(patterns)) {
      for (const p of Object.keys(patterns)) checkPattern(p, `${at}.patternProperties["${p.slice(0, 60)}"]`);
    }
  });
}

/** Whether `schema` is cheap enough to compile and run on the request's thread. */
export function runsInline(schema: unknown): boolean {
  return Buffer.byteLength(JSON.stringify(schema)) <= INLINE_SCHEMA_BYTES && isPlainSchema(schema);
}

/** Whether validating against `schema` costs O(schema + data). */
function isPlainSchema(schema: unknown): boolean {
  let plain = true;
  forEachSubschema(schema, 'schema', (s) => {
    for (const key of Object.keys(s)) if (!PLAIN_KEYWORDS.has(key)) plain = false;
    if (Array.isArray(s.items)) plain = false; // draft-07 tuples come with additionalItems: keep the rule simple
  });
  return plain;
}

/** Calls `visit` with every subschema object (boolean schemas have nothing to check) and its path. */
function forEachSubschema(schema: unknown, at: string, visit: (s: Record<string, unknown>, at: string) => void): void {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema)) return;
  const s = schema as Record<string, unknown>;
  visit(s, at);
  for (const key of SCHEMA_VALUED) if (key in s) forEachSubschema(s[key], `${at}.${key}`, visit);
  for (const key of SCHEMA_LISTS) {
    const list = s[key];
    if (Array.isArray(list)) list.forEach((item, i) => forEachSubschema(item, `${at}.${key}[${i}]`, visit));
  }
  if (Array.isArray(s.items)) s.items.forEach((item, i) => forEachSubschema(item, `${at}.items[${i}]`, visit));
  else if ('items' in s) forEachSubschema(s.items, `${at}.items`, visit);
  for (const key of SCHEMA_MAPS) {
    const map = s[key];
    if (map === null || typeof map !== 'object' || Array.isArray(map)) continue;
    for (const [name, sub] of Object.entries(map)) {
      const simpleName = key === 'properties' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(name);
      forEachSubschema(sub, simpleName ? `${at}.${key}.${name}` : `${at}.${key}["${name.slice(0, 60)}"]`, visit);
    }
  }
  // draft-07's dependencies: a property's value is a schema or a list of property names.
  const deps = s.dependencies;
  if (deps !== null && typeof deps === 'object' && !Array.isArray(deps)) {
    for (const [name, sub] of Object.entries(deps)) if (!Array.isArray(sub)) forEachSubschema(sub, `${at}.dependencies["${name.slice(0, 60)}"]`, visit);
  }
}

function checkPattern(pattern: string, field: string): void {
  try {
    RE2JS.compile(pattern);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    refuse(field, `is not a pattern the linear-time engine (RE2 syntax: no lookaround, no backreferences) can run: ${reason}`);
  }
}

function refuse(field: string, why: string): never {
  throw new ValidationError(`${field}: ${why}`, { field });
}
