/**
 * The event catalog: the seed's built-in types plus those each organization registers.
 * Validators are compiled once per schema and cached; custom types are re-read after a short TTL so
 * a type registered through another API process becomes usable within seconds.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import type { Sql } from '../ledger/connection.ts';
import { PRIORITY, type PriorityValue } from '../ledger/events.ts';
import { BUILTIN_EVENT_TYPES, type EventTypeDefinition, type JsonSchema, type Priority } from './builtin-event-types.ts';
import { findCustomEventType, insertCustomEventType, listCustomEventTypes } from '../ledger/event-types.ts';
import { ConflictError, SchemaViolationError, UnknownEventTypeError, ValidationError } from '../errors/errors.ts';

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

export function createCatalog(sql: Sql): Catalog {
  const ajv = new Ajv({ allErrors: false, strict: false });
  const builtins = new Map<string, ResolvedEventType>(
    BUILTIN_EVENT_TYPES.map((t) => [t.name, { ...t, builtin: true, priorityValue: PRIORITY[t.priority], validate: ajv.compile(t.schema) }]),
  );
  const custom = new Map<string, { at: number; type: ResolvedEventType | null }>();

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

  return {
    async resolve(organizationId, eventType) {
      const builtin = builtins.get(eventType);
      if (builtin) return builtin;
      const key = `${organizationId}/${eventType}`;
      const cached = custom.get(key);
      if (cached && Date.now() - cached.at < CUSTOM_TTL_MS) {
        if (cached.type) return cached.type;
        throw new UnknownEventTypeError(eventType);
      }
      const row = await findCustomEventType(sql, organizationId, eventType);
      const type = row ? compileCustom(row) : null;
      if (custom.size >= CUSTOM_CACHE_LIMIT) custom.clear();
      custom.set(key, { at: Date.now(), type });
      if (!type) throw new UnknownEventTypeError(eventType);
      return type;
    },
    validateData(type, data) {
      if (type.validate(data)) return;
      const err = type.validate.errors?.[0];
      const field = err ? `data${err.instancePath.replaceAll('/', '.')}` : 'data';
      const message = err?.keyword === 'required' ? `data.${(err.params as { missingProperty: string }).missingProperty} is required` : `${field} ${err?.message ?? 'is invalid'}`;
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
      try {
        ajv.compile(def.schema);
      } catch (err) {
        throw new ValidationError(`schema is not a valid JSON schema: ${(err as Error).message}`, { field: 'schema' });
      }
      const created = await insertCustomEventType(sql, organizationId, def);
      if (!created) throw new ConflictError(`event type ${def.name} already exists`);
      custom.delete(`${organizationId}/${def.name}`);
      return def;
    },
    builtin: () => BUILTIN_EVENT_TYPES,
  };
}
