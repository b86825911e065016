/**
 * From a validated request to committed events: resolves the type in the catalog, checks the data
 * against its schema, and hands the event to the group-commit intake. Anything wrong is thrown
 * before a single byte reaches the ledger, so bad input never leaves half an event behind.
 */
import type { Catalog } from '../catalog/catalog.ts';
import type { EventIntake } from '../ledger/event-intake.ts';
import { PRIORITY, type InsertResult, type NewEvent } from '../ledger/events.ts';
import { ValidationError } from '../errors/errors.ts';

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

export function createIngestService(catalog: Catalog, intake: EventIntake): IngestService {
  async function prepare(organizationId: string, input: EventInput, index?: number): Promise<NewEvent> {
    const type = await catalog.resolve(organizationId, input.event_type);
    try {
      catalog.validateData(type, input.data);
    } catch (err) {
      if (index !== undefined && err instanceof Error) err.message = `events[${index}]: ${err.message}`;
      throw err;
    }
    const dataJson = JSON.stringify(input.data);
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

  return {
    async ingest(organizationId, input) {
      return intake.submit(await prepare(organizationId, input));
    },
    async ingestMany(organizationId, inputs) {
      if (inputs.length === 0) throw new ValidationError('events must not be empty', { field: 'events' });
      const prepared = await Promise.all(inputs.map((input, i) => prepare(organizationId, input, i)));
      return intake.submitMany(prepared);
    },
  };
}

function stringField(data: Record<string, unknown>, field: string): string | null {
  const v = data[field];
  return typeof v === 'string' || typeof v === 'number' ? String(v) : null;
}
