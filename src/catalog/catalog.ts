/**
 * The event catalog: the seed's built-in types plus those each organization registers.
 * Validators are compiled once per schema and cached; custom types are re-read after a short TTL so
 * a type registered through another API process becomes usable within seconds.
 *
 * The re-read is off the request path: a known type is served from the cache while one background
 * read per type refreshes it, and its compiled validator is kept unless the schema changed. (When
 * every request that found the entry expired re-read and recompiled it, ingest stalled for 100-300 ms
 * every 5 s under load: compiling a schema costs milliseconds of CPU, and ajv kept each copy.)
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Sql } from '../ledger/connection.ts';
import { PRIORITY, type PriorityValue } from '../ledger/events.ts';
import { BUILTIN_EVENT_TYPES } from './builtin-event-types.ts';
import type { EventTypeDefinition, JsonSchema, Priority } from '../ledger/event-types.ts';
import { findCustomEventType, insertCustomEventType, listCustomEventTypes } from '../ledger/event-types.ts';
import { ConflictError, SchemaViolationError, UnknownEventTypeError, ValidationError } from '../errors/errors.ts';
import { assertRunnableSchema, compileCustomSchema, runsInline } from './custom-schema.ts';
import { createIsolatedValidator } from './isolated-validator.ts';

export type ResolvedEventType = EventTypeDefinition & {
  builtin: boolean;
  priorityValue: PriorityValue;
  /** The validator, where the schema runs inline (built-in, or plain); null: it runs isolated. */
  validate: ValidateFunction | null;
  /** Names the schema to the isolated validator (custom-schema.ts says which run there). */
  isolatedKey: number;
};

const CUSTOM_TTL_MS = 5_000;
/** Answers for unknown names are cached too, so the cache is bounded: random type names cannot grow it. */
const CUSTOM_CACHE_LIMIT = 10_000;

export type Catalog = {
  resolve(organizationId: string, eventType: string): Promise<ResolvedEventType>;
  /**
   * Throws (or rejects with) SchemaViolationError naming the first offending field. Synchronous for
   * schemas that run inline; a promise for those validated on the isolated thread.
   */
  validateData(type: ResolvedEventType, data: unknown): void | Promise<void>;
  list(organizationId: string | null): Promise<(EventTypeDefinition & { builtin: boolean })[]>;
  register(organizationId: string, def: EventTypeDefinition): Promise<EventTypeDefinition>;
  builtin(): readonly EventTypeDefinition[];
  close(): Promise<void>;
};

/** The validation thread's heap: far above any event's needs (events are at most the body limit). */
const ISOLATED_HEAP_LIMIT_MB = 128;
/** Compiling a schema of the largest size accepted takes about a second (CARTEIRO_SCHEMA_COMPILE_TIMEOUT_MS). */
const DEFAULT_COMPILE_DEADLINE_MS = 3_000;
const DEFAULT_VALIDATION_DEADLINE_MS = 250;

export function createCatalog(sql: Sql, opts: { customTtlMs?: number; validationDeadlineMs?: number; compileDeadlineMs?: number } = {}): Catalog {
  const ttlMs = opts.customTtlMs ?? CUSTOM_TTL_MS;
  const deadlineMs = opts.validationDeadlineMs ?? DEFAULT_VALIDATION_DEADLINE_MS;
  const isolated = createIsolatedValidator({
    validateDeadlineMs: deadlineMs,
    compileDeadlineMs: opts.compileDeadlineMs ?? DEFAULT_COMPILE_DEADLINE_MS,
    heapLimitMb: ISOLATED_HEAP_LIMIT_MB,
  });
  let isolatedKeys = 0;
  const builtinAjv = new Ajv({ allErrors: false, strict: false });
  const builtins = new Map<string, ResolvedEventType>(
    BUILTIN_EVENT_TYPES.map((t) => [
      t.name,
      { ...t, builtin: true, priorityValue: PRIORITY[t.priority], validate: builtinAjv.compile(t.schema), isolatedKey: 0 },
    ]),
  );
  // Each organization's schema is compiled in an ajv instance of its own (custom-schema.ts): the
  // built-ins' instance never sees one, and dropping a validator is leaving it to the collector.
  type Entry = { at: number; type: ResolvedEventType | null; schemaText: string | null };
  const custom = new Map<string, Entry>();
  const loading = new Map<string, Promise<Entry>>();
  // Bumped by every registration: a read that started before one must not cache "unknown" after it.
  let registrations = 0;

  function compileCustom(row: { name: string; description: string | null; schema: JsonSchema; priority: Priority }): ResolvedEventType {
    try {
      assertRunnableSchema(row.schema);
    } catch (err) {
      // Stored before the bound existed: its events are refused rather than validated slowly.
      throw new SchemaViolationError(
        `event type ${row.name} has a schema Carteiro no longer runs (${(err as Error).message}); register the type again under a new name`,
        { field: 'event_type', event_type: row.name },
      );
    }
    return {
      name: row.name,
      description: row.description ?? '',
      priority: row.priority,
      schema: row.schema,
      builtin: false,
      priorityValue: PRIORITY[row.priority],
      validate: runsInline(row.schema) ? compileCustomSchema(row.schema) : null,
      isolatedKey: ++isolatedKeys,
    };
  }

  /** Reads a custom type, one read per key at a time; concurrent callers share it. */
  function load(key: string, organizationId: string, eventType: string): Promise<Entry> {
    const inFlight = loading.get(key);
    if (inFlight) return inFlight;
    const read = (async (): Promise<Entry> => {
      const registrationsBefore = registrations;
      const row = await findCustomEventType(sql, organizationId, eventType);
      const previous = custom.get(key);
      const schemaText = row ? JSON.stringify([row.schema, row.priority, row.description]) : null;
      let type: ResolvedEventType | null = null;
      if (row) type = previous?.type && previous.schemaText === schemaText ? previous.type : compileCustom(row);
      if (custom.size >= CUSTOM_CACHE_LIMIT && !custom.has(key)) custom.clear();
      const entry = { at: Date.now(), type, schemaText };
      if (type || registrations === registrationsBefore) custom.set(key, entry);
      return entry;
    })().finally(() => loading.delete(key));
    loading.set(key, read);
    return read;
  }

  return {
    async resolve(organizationId, eventType) {
      const builtin = builtins.get(eventType);
      if (builtin) return builtin;
      const key = `${organizationId}/${eventType}`;
      const cached = custom.get(key);
      const fresh = cached !== undefined && Date.now() - cached.at < ttlMs;
      if (cached?.type) {
        // Stale: serve it and refresh in the background (a failed read is retried by the next request).
        if (!fresh) load(key, organizationId, eventType).catch(() => {});
        return cached.type;
      }
      const entry = fresh ? cached : await load(key, organizationId, eventType);
      if (!entry.type) throw new UnknownEventTypeError(eventType);
      return entry.type;
    },
    validateData(type, data) {
      if (type.validate) {
        if (type.validate(data)) return;
        throw violation(type, type.validate.errors?.[0]);
      }
      return isolated.validate(type.isolatedKey, type.schema, data).then((verdict) => {
        if (verdict.kind === 'valid') return;
        if (verdict.kind === 'invalid') throw violation(type, verdict.error ?? undefined);
        throw new SchemaViolationError(
          `data could not be validated against event type ${type.name}: ${verdict.reason}; its schema is too costly for this data`,
          { field: 'data', event_type: type.name },
        );
      });
    },
    async list(organizationId) {
      const rows = organizationId ? await listCustomEventTypes(sql, organizationId) : [];
      return [
        ...BUILTIN_EVENT_TYPES.map((t) => ({ ...t, builtin: true })),
        ...rows.map((r) => ({ name: r.name, description: r.description ?? '', priority: r.priority, schema: r.schema, builtin: false })),
      ];
    },
    async register(organizationId, def) {
      if (builtins.has(def.name)) throw new ConflictError(`event type ${def.name} is built in`);
      assertRunnableSchema(def.schema);
      // Only checked here; resolve() compiles what it reads back.
      if (runsInline(def.schema)) {
        try {
          compileCustomSchema(def.schema);
        } catch (err) {
          throw new ValidationError(`schema is not a valid JSON schema: ${(err as Error).message}`, { field: 'schema' });
        }
      } else {
        const verdict = await isolated.check(def.schema);
        if (verdict.kind === 'invalid-schema') throw new ValidationError(`schema is not a valid JSON schema: ${verdict.message}`, { field: 'schema' });
        if (verdict.kind === 'too-costly') throw new ValidationError(`schema cannot be used: ${verdict.reason}; simplify it`, { field: 'schema' });
      }
      const created = await insertCustomEventType(sql, organizationId, def);
      if (!created) throw new ConflictError(`event type ${def.name} already exists`);
      // An unknown-type answer cached for this name must not outlive the registration.
      registrations++;
      const key = `${organizationId}/${def.name}`;
      custom.delete(key);
      return def;
    },
    builtin: () => BUILTIN_EVENT_TYPES,
    close: () => isolated.close(),
  };
}

/** The error for data that breaks its type's schema, naming the first offending field. */
function violation(type: ResolvedEventType, err: ErrorObject | undefined): SchemaViolationError {
  const at = err ? `data${err.instancePath.replaceAll('/', '.')}` : 'data';
  // A missing property is named by its own path, not by the object that lacks it.
  const field = err?.keyword === 'required' ? `${at}.${(err.params as { missingProperty: string }).missingProperty}` : at;
  const message = err?.keyword === 'required' ? `${field} is required` : `${field} ${err?.message ?? 'is invalid'}`;
  return new SchemaViolationError(`${message} (event type ${type.name})`, { field, event_type: type.name });
}
