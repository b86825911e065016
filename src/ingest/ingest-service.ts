/**
 * From a validated request to committed events: resolves the type in the catalog, checks the data
 * against its schema, and hands the event to the group-commit intake. Anything wrong is thrown
 * before a single byte reaches the ledger, so bad input never leaves half an event behind.
 */
import type { Catalog, ResolvedEventType } from '../catalog/catalog.ts';
import type { EventIntake } from '../ledger/event-intake.ts';
import { PRIORITY, type InsertResult, type NewEvent } from '../ledger/events.ts';
import { CarteiroError, ValidationError } from '../errors/errors.ts';

/**
 * A user id's limit: the top-level user_id's (its schema in api/schemas.ts uses this), and a user id taken from
 * data.user_id or a Supabase row: webhook_events.user_id is indexed, and a btree entry holds at most
 * 2704 bytes, so a longer value would fail at insert time as a 500.
 */
export const MAX_USER_ID_LENGTH = 200;

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

/**
 * The trace of one ingest request (observability/tracing-http.ts implements it). Absent when tracing
 * is off: then ingest costs nothing more than the check that it is absent.
 */
export type IngestTrace = {
  /** Opens the span of this request's commit, a child of the request's span. */
  startCommit(): CommitTrace;
};

export type CommitTrace = {
  /** The commit span's W3C traceparent, stored with each event: delivery attempts become its children. */
  readonly traceparent: string;
  /** The events are committed (or were already: duplicates). */
  committed(results: readonly InsertResult[]): void;
  failed(err: unknown): void;
};

export type IngestService = {
  ingest(organizationId: string, input: EventInput, trace?: IngestTrace): Promise<InsertResult>;
  ingestMany(organizationId: string, inputs: EventInput[], trace?: IngestTrace): Promise<InsertResult[]>;
};

export type IngestOptions = {
  /** The JSON text stored for validated data (data protection seals personal fields here). */
  serializeData?: (data: Record<string, unknown>) => string;
  /** Called after a commit with what it stored (duplicates included); must not throw (live updates). */
  onAccepted?: (organizationId: string, results: InsertResult[]) => void;
};

export function createIngestService(catalog: Catalog, intake: EventIntake, opts: IngestOptions = {}): IngestService {
  async function prepare(organizationId: string, input: EventInput, index?: number): Promise<NewEvent> {
    let type: ResolvedEventType;
    let userId: string | null;
    // Every check that can refuse the event sits in here, so a batch's error says which event.
    try {
      type = await catalog.resolve(organizationId, input.event_type);
      await catalog.validateData(type, input.data);
      userId = input.user_id !== undefined ? checkUserId(input.user_id, 'user_id') : dataUserId(input.data);
    } catch (err) {
      // Client errors only: a failed catalog read may be one error shared by the batch's concurrent lookups.
      if (index !== undefined && err instanceof CarteiroError) {
        err.message = `events[${index}]: ${err.message}`;
        if (typeof err.details?.field === 'string') err.details.field = `events[${index}].${err.details.field}`;
      }
      throw err;
    }
    const dataJson = opts.serializeData ? opts.serializeData(input.data) : JSON.stringify(input.data);
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

  /** Commits through the group-commit intake; untraced, straight to it. */
  function commit(events: NewEvent[], trace: IngestTrace | undefined): Promise<InsertResult[]> {
    return trace ? tracedCommit(events, trace) : intake.submitMany(events);
  }

  /** The commit span covers the wait for a group and the group's transaction; its traceparent goes into the events' rows. */
  async function tracedCommit(events: NewEvent[], trace: IngestTrace): Promise<InsertResult[]> {
    const span = trace.startCommit();
    for (const e of events) e.traceContext = span.traceparent;
    try {
      const results = await intake.submitMany(events);
      span.committed(results);
      return results;
    } catch (err) {
      span.failed(err);
      throw err;
    }
  }

  return {
    async ingest(organizationId, input, trace) {
      const [result] = await commit([await prepare(organizationId, input)], trace);
      accepted(organizationId, [result as InsertResult]);
      return result as InsertResult;
    },
    async ingestMany(organizationId, inputs, trace) {
      if (inputs.length === 0) throw new ValidationError('events must not be empty', { field: 'events' });
      const prepared = await Promise.all(inputs.map((input, i) => prepare(organizationId, input, i)));
      const results = await commit(prepared, trace);
      accepted(organizationId, results);
      return results;
    },
  };
}

/** The event's user id from its data (`data.user_id`, a string or number), or null; too long is a 400. */
export function dataUserId(data: Record<string, unknown>): string | null {
  const v = data.user_id;
  return typeof v === 'string' || typeof v === 'number' ? checkUserId(String(v), 'data.user_id') : null;
}

function checkUserId(userId: string, field: string): string {
  if (userId.length > MAX_USER_ID_LENGTH) {
    throw new ValidationError(`${field} must be at most ${MAX_USER_ID_LENGTH} characters (it is ${userId.length}); it is stored as the event's user id`, {
      field,
    });
  }
  return userId;
}
