/**
 * Events in the ledger. Inserts are set-based (one statement for a whole batch); the fan-out trigger
 * adds the dispatch rows in the same statement, so a committed event always has its deliveries.
 */
import { v7 as uuidv7 } from 'uuid';
import type { Sql } from './connection.ts';
import { retryOnDeadlock } from './deadlock-retry.ts';
import { parseKeepingNumbers } from '../util/exact-json.ts';

export const PRIORITY = { normal: 0, high: 1 } as const;
export type PriorityValue = (typeof PRIORITY)[keyof typeof PRIORITY];

export type NewEvent = {
  organizationId: string;
  eventType: string;
  eventSource: 'api' | 'manual' | 'supabase' | 'n8n' | 'system';
  tableName: string | null;
  recordId: string | null;
  userId: string | null;
  /**
   * The event's data as compact JSON text (JSON.stringify of what the client sent, keys in its order):
   * parsed once at the edge, never re-serialised on the way in, and sent as it is (migration 0016).
   */
  dataJson: string;
  priority: PriorityValue;
  idempotencyKey: string | null;
  /**
   * The W3C traceparent of the span that commits the event (migration 0023), when tracing is on: the
   * workers' delivery spans join its trace.
   */
  traceContext?: string | undefined;
};

export type StoredEvent = {
  id: string;
  organization_id: string;
  event_type: string;
  status: string;
  created_at: Date;
  idempotency_key: string | null;
};

export type InsertResult = StoredEvent & { duplicate: boolean };

/**
 * Inserts a batch; an idempotency key seen before (in this batch or earlier) returns the first event.
 * Results are in input order.
 *
 * All or nothing: the insert and the lookup of the events that lost an idempotency race share one
 * transaction, so a batch that cannot be answered leaves nothing committed. The group commit retries
 * the requests of a failed group one by one; had the insert committed on its own, that retry would
 * store the group's events a second time (under new ids, which receivers cannot de-duplicate).
 */
export async function insertEvents(sql: Sql, events: NewEvent[], opts: { deferNotify?: boolean } = {}): Promise<InsertResult[]> {
  if (events.length === 0) return [];
  // Two groups taking the same keys in opposite orders can deadlock; rolled back whole, each runs again.
  return retryOnDeadlock(async () => (await sql.begin((tx) => insertInTransaction(tx as unknown as Sql, events, opts))) as InsertResult[]);
}

/** A row's organization and key as one map key; the organization as Postgres writes a uuid (lower case). */
const keyOf = (organizationId: string, idempotencyKey: string | null) => `${organizationId.toLowerCase()}/${idempotencyKey}`;

async function insertInTransaction(sql: Sql, events: NewEvent[], opts: { deferNotify?: boolean }): Promise<InsertResult[]> {
  // Ids are made here (time-ordered v7) so each input maps to its row without trusting RETURNING order.
  const ids = events.map(() => uuidv7());
  const col = <K extends keyof NewEvent>(k: K) => events.map((e) => e[k] ?? null);
  // The trace column only when some event has one (tracing on): with tracing off the statement is
  // the same as before it existed, with no array of NULLs to send and unnest.
  const traced = events.some((e) => e.traceContext !== undefined);
  const inserted = await sql<StoredEvent[]>`
    INSERT INTO webhook_events
      (id, organization_id, event_type, event_source, table_name, record_id, user_id, data, data_json, priority, idempotency_key, data_sealed${traced ? sql`, trace_context` : sql``})
    SELECT id::uuid, organization_id::uuid, event_type, event_source, table_name, record_id, user_id, data::jsonb, data, priority::smallint, idempotency_key,
           true -- sealed at ingestion (migration 0010)
           ${traced ? sql`, trace_context` : sql``}
    FROM unnest(
      ${ids}::text[], ${col('organizationId')}::text[], ${col('eventType')}::text[], ${col('eventSource')}::text[],
      ${col('tableName')}::text[], ${col('recordId')}::text[], ${col('userId')}::text[],
      ${col('dataJson')}::text[], ${events.map((e) => String(e.priority))}::text[], ${col('idempotencyKey')}::text[]
      ${traced ? sql`, ${col('traceContext')}::text[]` : sql``}
    ) AS t(id, organization_id, event_type, event_source, table_name, record_id, user_id, data, priority, idempotency_key${traced ? sql`, trace_context` : sql``}),
    -- Evaluated before the statement's fan-out trigger fires: the caller notifies after the commit.
    (SELECT set_config('carteiro.defer_notify', ${opts.deferNotify ? 'on' : 'off'}, true)) AS defer
    ON CONFLICT (organization_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id, organization_id, event_type, status, created_at, idempotency_key`;

  const byId = new Map(inserted.map((r) => [r.id, r]));
  // Whatever was not inserted lost an idempotency race: to a row from an earlier request, or to an
  // earlier input in this same batch. Either way the first event with that key is the answer.
  const firstWithKey = new Map<string, StoredEvent>();
  for (const row of inserted) if (row.idempotency_key) firstWithKey.set(keyOf(row.organization_id, row.idempotency_key), row);
  const unresolved = events.filter((e, i) => !byId.has(ids[i] as string) && !firstWithKey.has(keyOf(e.organizationId, e.idempotencyKey)));
  if (unresolved.length) {
    // A new statement: in READ COMMITTED it sees the row of the transaction the conflict waited for.
    const rows = await findByIdempotencyKeys(
      sql,
      unresolved.map((e) => ({ org: e.organizationId, key: e.idempotencyKey as string })),
    );
    for (const row of rows) firstWithKey.set(keyOf(row.organization_id, row.idempotency_key), row);
  }
  return events.map((e, i) => {
    const own = byId.get(ids[i] as string);
    if (own) return { ...own, duplicate: false };
    const first = firstWithKey.get(keyOf(e.organizationId, e.idempotencyKey));
    // The row it conflicted with is gone (erased or deleted by retention since): throwing rolls this
    // batch back, and the intake's retry then stores it afresh.
    if (!first) throw new Error(`event with idempotency key ${e.idempotencyKey} was neither inserted nor found`);
    return { ...first, duplicate: true };
  });
}

async function findByIdempotencyKeys(sql: Sql, keys: { org: string; key: string }[]): Promise<StoredEvent[]> {
  return sql<StoredEvent[]>`
    SELECT e.id, e.organization_id, e.event_type, e.status, e.created_at, e.idempotency_key
    FROM unnest(${keys.map((k) => k.org)}::uuid[], ${keys.map((k) => k.key)}::text[]) AS k(org, key)
    JOIN webhook_events e ON e.organization_id = k.org AND e.idempotency_key = k.key`;
}

export type EventDetail = {
  id: string;
  organization_id: string;
  event_type: string;
  event_source: string;
  table_name: string | null;
  record_id: string | null;
  user_id: string | null;
  data: unknown;
  /** Whether Carteiro sealed the data (migration 0010): only then are its enc:v1 values Carteiro's own. */
  data_sealed: boolean;
  priority: number;
  status: string;
  retry_count: number;
  error_message: string | null;
  idempotency_key: string | null;
  created_at: Date;
  updated_at: Date;
  processed_at: Date | null;
};

/**
 * An event's columns, its data as the text stored to be sent (migration 0016): read from it, the data
 * keeps the client's key order, and numbers a double cannot hold (a bigint column captured in the
 * database) stay exact instead of being rounded by the jsonb parse.
 */
type EventRow = Omit<EventDetail, 'data'> & { data_text: string };

function withData({ data_text, ...row }: EventRow): EventDetail {
  return { ...row, data: parseKeepingNumbers(data_text) };
}

export async function getEvent(sql: Sql, organizationId: string | null, id: string): Promise<EventDetail | undefined> {
  const [row] = await sql<EventRow[]>`
    SELECT id, organization_id, event_type, event_source, table_name, record_id, user_id, coalesce(data_json, data::text) AS data_text,
           data_sealed, priority, status, retry_count, error_message, idempotency_key, created_at, updated_at, processed_at
    FROM webhook_events
    WHERE id = ${id} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)`;
  return row && withData(row);
}

export type DispatchState = {
  id: string;
  webhook_endpoint_id: string;
  endpoint_name: string | null;
  endpoint_kind: string | null;
  status: string;
  attempts: number;
  next_attempt_at: Date;
  last_status_code: number | null;
  last_error: string | null;
  completed_at: Date | null;
  updated_at: Date;
};

export async function getEventDispatches(sql: Sql, eventId: string): Promise<DispatchState[]> {
  return sql<DispatchState[]>`
    SELECT d.id, d.webhook_endpoint_id, ep.name AS endpoint_name, ep.kind AS endpoint_kind, d.status, d.attempts,
           d.next_attempt_at, d.last_status_code, d.last_error, d.completed_at, d.updated_at
    FROM webhook_dispatches d LEFT JOIN webhook_endpoints ep ON ep.id = d.webhook_endpoint_id
    WHERE d.webhook_event_id = ${eventId}
    ORDER BY d.created_at, d.id`;
}

export type AttemptRow = {
  id: string;
  webhook_endpoint_id: string | null;
  attempt_number: number;
  success: boolean;
  status_code: number | null;
  response_body: string | null;
  /** Sealed by Carteiro (migration 0014): open with DataProtection.openAttempt before showing. */
  response_sealed: boolean;
  delivery_duration_ms: number;
  error: string | null;
  /** Batching (migration 0028): the batch this attempt sent the event in (its webhook-id); null: sent alone. */
  batch_id: string | null;
  created_at: Date;
};

export async function getEventAttempts(sql: Sql, eventId: string): Promise<AttemptRow[]> {
  return sql<AttemptRow[]>`
    SELECT id, webhook_endpoint_id, attempt_number, success, status_code, response_body, response_sealed, delivery_duration_ms, error, batch_id, created_at
    FROM webhook_deliveries WHERE webhook_event_id = ${eventId} ORDER BY id`;
}

export async function listEndpointAttempts(
  sql: Sql,
  endpointId: string,
  before: string | undefined,
  limit: number,
): Promise<(AttemptRow & { webhook_event_id: string })[]> {
  return sql<(AttemptRow & { webhook_event_id: string })[]>`
    SELECT id, webhook_event_id, webhook_endpoint_id, attempt_number, success, status_code, response_body, response_sealed, delivery_duration_ms, error, batch_id, created_at
    FROM webhook_deliveries
    WHERE webhook_endpoint_id = ${endpointId} AND (${before ?? null}::uuid IS NULL OR id < ${before ?? null}::uuid)
    ORDER BY id DESC LIMIT ${limit}`;
}

export type EventListFilter = {
  organizationId: string | null;
  eventType?: string | undefined;
  status?: string | undefined;
  since?: Date | undefined;
  until?: Date | undefined;
  userId?: string | undefined;
  /** Exclusive upper bound on id: ids are time-ordered, so this pages newest first. */
  before?: string | undefined;
  limit: number;
};

export async function listEvents(sql: Sql, f: EventListFilter): Promise<EventDetail[]> {
  const rows = await sql<EventRow[]>`
    SELECT id, organization_id, event_type, event_source, table_name, record_id, user_id, coalesce(data_json, data::text) AS data_text,
           data_sealed, priority, status, retry_count, error_message, idempotency_key, created_at, updated_at, processed_at
    FROM webhook_events
    WHERE (${f.organizationId}::uuid IS NULL OR organization_id = ${f.organizationId}::uuid)
      AND (${f.eventType ?? null}::text IS NULL OR event_type = ${f.eventType ?? null})
      AND (${f.status ?? null}::text IS NULL OR status = ${f.status ?? null})
      AND (${f.userId ?? null}::text IS NULL OR user_id = ${f.userId ?? null})
      AND (${f.since ?? null}::timestamptz IS NULL OR created_at >= ${f.since ?? null})
      AND (${f.until ?? null}::timestamptz IS NULL OR created_at < ${f.until ?? null})
      AND (${f.before ?? null}::uuid IS NULL OR id < ${f.before ?? null}::uuid)
    ORDER BY id DESC
    LIMIT ${f.limit}`;
  return rows.map(withData);
}
