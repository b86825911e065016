/**
 * From a validated request to committed events: resolves the type in the catalog, checks the data
 * against its schema, and hands the event to the group-commit intake. Anything wrong is thrown
 * before a single byte reaches the ledger, so bad input never leaves half an event behind.
 */
import type { Catalog } from '../catalog/catalog.ts';
import type { EventIntake } from '../ledger/event-intake.ts';
import { PRIORITY, type InsertResult, type NewEvent } from '../ledger/events.ts';
import { CarteiroError, ValidationError } from '../errors/errors.ts';

export type EventInput = {
  event_type: string;
  data: Record<string, unknown>;
  user_id?: string | undefined;
  organization_id?: string | undefined;
  priority?: 'high' | 'normal' | undefined;
  idempotency_key?: string | undefined;
  event_source?: NewEvent['eventSource'] | undefined;
  table_name?: string | undefined;
  record_id?: string | undefined;
};

export type IngestService = {
  ingest(organizationId: string, input: EventInput): Promise<InsertResult>;
  ingestMany(organizationId: string, inputs: EventInput[]): Promise<InsertResult[]>;
};

export type IngestOptions = {
  /** The JSON text stored for validated data (data protection seals personal fields here). */
  serializeData?: (data: Record<string, unknown>) => string;
  /** Called after a commit with what it stored (duplicates included); must not throw (live updates). */
  onAccepted?: (organizationId: string, results: InsertResult[]) => void;
};

export function createIngestService(catalog: Catalog, intake: EventIntake, opts: IngestOptions = {}): IngestService {
  async function prepare(organizationId: string, input: EventInput, index?: number): Promise<NewEvent> {
    const type = await catalog.resolve(organizationId, input.event_type);
    try {
      catalog.validateData(type, input.data);
    } catch (err) {
      if (index !== undefined && err instanceof Error) {
        err.message = `events[${index}]: ${err.message}`;
        if (err instanceof CarteiroError && typeof err.details?.field === 'string') err.details.field = `events[${index}].${err.details.field}`;
      }
      throw err;
    }
    const dataJson = opts.serializeData ? opts.serializeData(input.data) : JSON.stringify(input.data);
    const userId = input.user_id ?? stringField(input.data, 'user_id');
    return {
      organizationId,
      eventType: type.name,
      eventSource: input.event_source ?? 'api',
      tableName: input.table_name ?? null,
      recordId: input.record_id ?? null,
      userId,
      dataJson,
      priority: input.priority ? PRIORITY[input.priority] : type.priorityValue,
      idempotencyKey: input.idempotency_key ?? null,
    };
  }

  // The events are committed by now: nothing a listener does may turn that into an error response.
  function accepted(organizationId: string, results: InsertResult[]): void {
    try {
      opts.onAccepted?.(organizationId, results);
    } catch {
      /* live updates are best-effort */
    }
  }

  return {
    async ingest(organizationId, input) {
      const result = await intake.submit(await prepare(organizationId, input));
      accepted(organizationId, [result]);
      return result;
    },
    async ingestMany(organizationId, inputs) {
      if (inputs.length === 0) throw new ValidationError('events must not be empty', { field: 'events' });
      const prepared = await Promise.all(inputs.map((input, i) => prepare(organizationId, input, i)));
      const results = await intake.submitMany(prepared);
      accepted(organizationId, results);
      return results;
    },
  };
}

function stringField(data: Record<string, unknown>, field: string): string | null {
  const v = data[field];
  return typeof v === 'string' || typeof v === 'number' ? String(v) : null;
}
