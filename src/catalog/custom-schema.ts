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
import { Ajv, type AnySchema, type CodeOptions, type Options, type ValidateFunction } from 'ajv';
import { ValidationError } from '../errors/errors.ts';

/** Large enough for any event's description. */
const MAX_SCHEMA_BYTES = 64 * 1024;
/** Plain schemas up to this size compile in a few milliseconds (30 properties: 6 ms). */
const INLINE_SCHEMA_BYTES = 4 * 1024;

/** Keywords whose value is a schema. */
const SCHEMA_VALUED = [
  'additionalItems',
  'additionalProperties',
  'contains',
  'propertyNames',
  'not',
  'if',
  'then',
  'else',
  'unevaluatedItems',
  'unevaluatedProperties',
];
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
  'type',
  'enum',
  'const',
  'required',
  'properties',
  'additionalProperties',
  'items',
  'minimum',
  'maximum',
  'exclusiveMinimum',
  'exclusiveMaximum',
  'multipleOf',
  'minLength',
  'maxLength',
  'minItems',
  'maxItems',
  'minProperties',
  'maxProperties',
  'dependentRequired',
  '$schema',
  '$id',
  '$comment',
  'title',
  'description',
  'default',
  'examples',
  'deprecated',
  'readOnly',
  'writeOnly',
  'format',
  'nullable',
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
 * the linear-time engine; nothing compiled is registered instance-wide (`addUsedSchema`); `format` is
 * an annotation, as JSON Schema defines it by default, not a check; the schema was checked against
 * the meta-schema already (checkAgainstMetaSchema), so the instance does not look the meta-schema up.
 */
export function customSchemaAjvOptions(): Options {
  return { allErrors: false, strict: false, addUsedSchema: false, validateFormats: false, validateSchema: false, code: { regExp: linearRegExp } };
}

/** Draft-07's meta-schema, the one ajv's default class runs, under both spellings of its URI. */
const DRAFT_07_URIS = new Set(['http://json-schema.org/draft-07/schema#', 'http://json-schema.org/draft-07/schema']);
/** Identifiers no organization may declare or refer to: meta-schemas, and the id lent to a root below. */
const RESERVED_ID = /^(?:https?:\/\/json-schema\.org\/|urn:carteiro:)/i;
/** Keywords whose value is data, not schemas: identifiers inside them mean nothing. */
const DATA_VALUED = new Set(['enum', 'const', 'default', 'examples', 'required']);

/**
 * Checks schemas against draft-07's meta-schema. It never compiles an organization's schema, so what
 * one registers cannot change how another's is checked (when organizations' schemas were compiled in a
 * shared instance, removing one whose `$id` was the meta-schema's URI removed the meta-schema itself,
 * and every later registration in that process failed).
 */
const metaAjv = new Ajv({ strict: false });
const checkMeta = metaAjv.getSchema('http://json-schema.org/draft-07/schema') as ValidateFunction;

/** Throws a plain Error (as ajv does) saying where `schema` breaks the meta-schema. */
function checkAgainstMetaSchema(schema: unknown): void {
  if (checkMeta(schema)) return;
  const err = checkMeta.errors?.[0];
  throw new Error(`schema${err ? `${err.instancePath.replaceAll('/', '.')} ${err.message ?? 'is invalid'}` : ' is invalid'}`);
}

/**
 * Compiles an organization's schema in an ajv instance of its own, dropped with the validator: no
 * `$id`, `$anchor` or `$ref` of one schema can be seen by, or replace, anything another one uses.
 * Without `$id` instance-wide, ajv resolves a reference to the root (`"$ref": "#"`) only against a
 * root that has an `$id` of its own, so one is lent to it.
 */
export function compileCustomSchema(schema: unknown): ValidateFunction {
  checkAgainstMetaSchema(schema);
  const rooted =
    schema !== null && typeof schema === 'object' && !Array.isArray(schema) && !('$id' in schema) ? { $id: 'urn:carteiro:event-type', ...schema } : schema;
  return new Ajv(customSchemaAjvOptions()).compile(rooted as AnySchema);
}

/** Throws ValidationError naming the first part of `schema` that can never run. */
export function assertRunnableSchema(schema: unknown, field = 'schema'): void {
  if (Buffer.byteLength(JSON.stringify(schema)) > MAX_SCHEMA_BYTES) {
    throw new ValidationError(`${field} is larger than ${MAX_SCHEMA_BYTES} bytes`, { field });
  }
  assertSelfContained(schema, field);
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

/**
 * Refuses identifiers that reach outside the schema: a `$schema` other than draft-07, an `$id` that
 * names a meta-schema (or the id Carteiro lends a root), a `$ref` to anything but the schema's own parts.
 * Looked for under every keyword ajv walks, unknown ones too (it collects `$id`s there as well).
 */
function assertSelfContained(schema: unknown, field: string): void {
  const declared = new Set<string>();
  const refs: [string, unknown][] = [];
  forEachSchemaObject(schema, field, (s, at) => {
    if ('$schema' in s && !(typeof s.$schema === 'string' && DRAFT_07_URIS.has(s.$schema))) {
      refuse(`${at}.$schema`, 'Carteiro runs draft-07 schemas: $schema may only be http://json-schema.org/draft-07/schema#');
    }
    if ('$id' in s) {
      if (typeof s.$id !== 'string') refuse(`${at}.$id`, 'must be a string');
      if (RESERVED_ID.test(s.$id)) refuse(`${at}.$id`, 'names a JSON Schema meta-schema or an identifier Carteiro reserves; use an identifier of your own');
      declared.add(s.$id.split('#')[0]!);
    }
    if ('$ref' in s) refs.push([`${at}.$ref`, s.$ref]);
  });
  for (const [at, ref] of refs) {
    if (typeof ref !== 'string') refuse(at, 'must be a string');
    if (ref.startsWith('#')) continue;
    if (RESERVED_ID.test(ref) || !declared.has(ref.split('#')[0]!)) {
      refuse(at, 'refers outside this schema: a $ref may name only this schema\'s own parts ("#/…") or an $id it declares');
    }
  }
}

/** Calls `visit` with every object under `schema` that ajv may take for a schema, and its path. */
function forEachSchemaObject(value: unknown, at: string, visit: (s: Record<string, unknown>, at: string) => void): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((item, i) => forEachSchemaObject(item, `${at}[${i}]`, visit));
    return;
  }
  const s = value as Record<string, unknown>;
  visit(s, at);
  for (const [key, sub] of Object.entries(s)) {
    if (DATA_VALUED.has(key)) continue;
    const path = `${at}${member(key)}`;
    // A map of names to schemas: its keys are names (a property may be called "$id"), its values schemas.
    if ((SCHEMA_MAPS.includes(key) || key === 'dependencies') && sub !== null && typeof sub === 'object' && !Array.isArray(sub)) {
      for (const [name, inner] of Object.entries(sub)) forEachSchemaObject(inner, `${path}${member(name)}`, visit);
    } else {
      forEachSchemaObject(sub, path, visit);
    }
  }
}

/** `.name`, or `["name"]` where the name is not an identifier. */
function member(name: string): string {
  return /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(name) ? `.${name}` : `["${name.slice(0, 60)}"]`;
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
