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
import { Ajv, type ValidateFunction } from 'ajv';
import type { Sql } from '../ledger/connection.ts';
import { PRIORITY, type PriorityValue } from '../ledger/events.ts';
import { BUILTIN_EVENT_TYPES, type EventTypeDefinition, type JsonSchema, type Priority } from './builtin-event-types.ts';
import { findCustomEventType, insertCustomEventType, listCustomEventTypes } from '../ledger/event-types.ts';
import { ConflictError, SchemaViolationError, UnknownEventTypeError, ValidationError } from '../errors/errors.ts';
import { assertSafePatterns } from './schema-patterns.ts';

export type ResolvedEventType = EventTypeDefinition & { builtin: boolean; priorityValue: PriorityValue; validate: ValidateFunction };

const CUSTOM_TTL_MS = 5_000;
/** Answers for unknown names are cached too, so the cache is bounded: random type names cannot grow it. */
const CUSTOM_CACHE_LIMIT = 10_000;

export type Catalog = {
  resolve(organizationId: string, eventType: string): Promise<ResolvedEventType>;
  /** Throws SchemaViolationError naming the first offending field. */
  validateData(type: ResolvedEventType, data: unknown): void;
  list(organizationId: string | null): Promise<(EventTypeDefinition & { builtin: boolean })[]>;
  register(organizationId: string, def: EventTypeDefinition): Promise<EventTypeDefinition>;
  builtin(): readonly EventTypeDefinition[];
};

export function createCatalog(sql: Sql, opts: { customTtlMs?: number } = {}): Catalog {
  const ttlMs = opts.customTtlMs ?? CUSTOM_TTL_MS;
  const ajv = new Ajv({ allErrors: false, strict: false });
  const builtins = new Map<string, ResolvedEventType>(
    BUILTIN_EVENT_TYPES.map((t) => [t.name, { ...t, builtin: true, priorityValue: PRIORITY[t.priority], validate: ajv.compile(t.schema) }]),
  );
  type Entry = { at: number; type: ResolvedEventType | null; schemaText: string | null };
  const custom = new Map<string, Entry>();
  const loading = new Map<string, Promise<Entry>>();
  // Bumped by every registration: a read that started before one must not cache "unknown" after it.
  let registrations = 0;

  function compileCustom(row: { name: string; description: string | null; schema: JsonSchema; priority: Priority }): ResolvedEventType {
    return {
      name: row.name,
      description: row.description ?? '',
      priority: row.priority,
      schema: row.schema,
      builtin: false,
      priorityValue: PRIORITY[row.priority],
      validate: ajv.compile(row.schema),
    };
  }

  function forget(entry: Entry | undefined): void {
    if (entry?.type) ajv.removeSchema(entry.type.schema);
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
      if (previous?.type && previous.type !== type) forget(previous);
      if (custom.size >= CUSTOM_CACHE_LIMIT && !custom.has(key)) {
        for (const e of custom.values()) forget(e);
        custom.clear();
      }
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
      if (type.validate(data)) return;
      const err = type.validate.errors?.[0];
      const at = err ? `data${err.instancePath.replaceAll('/', '.')}` : 'data';
      // A missing property is named by its own path, not by the object that lacks it.
      const field = err?.keyword === 'required' ? `${at}.${(err.params as { missingProperty: string }).missingProperty}` : at;
      const message = err?.keyword === 'required' ? `${field} is required` : `${field} ${err?.message ?? 'is invalid'}`;
      throw new SchemaViolationError(`${message} (event type ${type.name})`, { field, event_type: type.name });
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
      assertSafePatterns(def.schema);
      try {
        ajv.compile(def.schema);
        ajv.removeSchema(def.schema); // only checked here; resolve() compiles what it reads back
      } catch (err) {
        throw new ValidationError(`schema is not a valid JSON schema: ${(err as Error).message}`, { field: 'schema' });
      }
      const created = await insertCustomEventType(sql, organizationId, def);
      if (!created) throw new ConflictError(`event type ${def.name} already exists`);
      // An unknown-type answer cached for this name must not outlive the registration.
      registrations++;
      const key = `${organizationId}/${def.name}`;
      forget(custom.get(key));
      custom.delete(key);
      return def;
    },
    builtin: () => BUILTIN_EVENT_TYPES,
  };
}
