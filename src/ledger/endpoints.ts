/**
 * Endpoints in the ledger. `secret` and `previous_secret` are ciphertext; decrypting is the caller's
 * job (crypto/secret-box.ts), so nothing here ever sees a plain secret.
 * Every query takes the caller's organization; `null` means the admin acting across organizations.
 * Those a portal session uses also take an `owner` (the session's user): given, only endpoints whose
 * user_id it is are found or changed, in the same statement (docs/portal.md).
 */
import type { Sql, TxSql } from './connection.ts';
import { refreshEventStatuses } from './outcomes.ts';
import type { IncludeFields } from './claims.ts';
import { retryOnDeadlock } from './deadlock-retry.ts';

export type EndpointRow = {
  id: string;
  organization_id: string;
  user_id: string | null;
  name: string;
  url: string;
  events: string[];
  secret: string | null;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  kind: 'endpoint' | 'n8n';
  is_active: boolean;
  disabled_reason: string | null;
  description: string | null;
  metadata: Record<string, unknown>;
  rate_limit_per_second: number | null;
  success_count: string | number;
  failure_count: string | number;
  created_at: Date;
  updated_at: Date;
  /** Minimal payloads: the data fields this endpoint receives (null: all). */
  include_fields: IncludeFields | null;
  /** Circuit breaker: deliveries in a row that failed all retries, and since when every attempt failed. */
  consecutive_failures: number;
  failing_since: Date | null;
  /** Isolation (migration 0020): its own in-flight cap, the slow lane's counter, the failing mark, probes. */
  max_in_flight: number | null;
  failed_attempts_in_row: number;
  failing_notified_at: Date | null;
  probe_at: Date | null;
  /** Set on endpoints Carteiro manages itself ('operations'). */
  system_role: string | null;
  /** Migration 0022: the endpoint's transformation (JavaScript), and the template it came from. */
  transformation: string | null;
  template: string | null;
  /** Migration 0025: ordered delivery, and what a head failed for good does. */
  fifo: boolean;
  fifo_on_exhausted: 'hold' | 'skip';
  /** Migration 0028: batching (docs/batching.md); batch_max_events null: one event per request. */
  batch_max_events: number | null;
  batch_max_wait_ms: number | null;
  batch_group_by_type: boolean;
} & EndpointFilterColumns &
  EndpointDeliverySettings;

/**
 * Delivery settings (migration 0027); null is the service's own setting. `headers` maps each static
 * header's name to its value sealed (crypto/secret-box.ts): they often carry the receiver's credentials.
 */
export type EndpointDeliverySettings = {
  headers: SealedHeaders | null;
  timeout_ms: number | null;
  max_retries: number | null;
  retry_base_delay_ms: number | null;
};

/** Header name → the value's ciphertext. */
export type SealedHeaders = Record<string, string>;

/**
 * Content filter (migration 0021, catalog/content-filter.ts): the filter as given, its jsonpath
 * predicate over the event's data, and the values of that predicate's variables. All null, or all set.
 */
export type EndpointFilterColumns = {
  filter: Record<string, unknown> | null;
  filter_jsonpath: string | null;
  filter_vars: Record<string, unknown> | null;
};

export type NewEndpoint = {
  organizationId: string;
  userId: string | null;
  name: string;
  url: string;
  events: string[];
  secretCiphertext: string;
  kind: 'endpoint' | 'n8n';
  description: string | null;
  metadata: Record<string, unknown>;
  rateLimitPerSecond: number | null;
  isActive: boolean;
  includeFields?: IncludeFields | null;
  maxInFlight?: number | null;
  /** The filter's columns (absent or null: no filter). */
  contentFilter?: Partial<EndpointFilterColumns>;
  transformation?: string | null;
  template?: string | null;
  fifo?: boolean;
  fifoOnExhausted?: 'hold' | 'skip';
  /** Batching (absent: none). */
  batching?: Partial<{ batch_max_events: number | null; batch_max_wait_ms: number | null; batch_group_by_type: boolean }>;
  /** Delivery settings (absent or null: the service's). */
  deliverySettings?: Partial<EndpointDeliverySettings>;
};

type Db = Sql | TxSql;

export async function insertEndpoint(sql: Db, e: NewEndpoint): Promise<EndpointRow> {
  const filter = e.contentFilter;
  const settings = e.deliverySettings;
  const [row] = await sql<EndpointRow[]>`
    INSERT INTO webhook_endpoints (organization_id, user_id, name, url, events, secret, kind, description, metadata, rate_limit_per_second, is_active, include_fields, max_in_flight,
                                   filter, filter_jsonpath, filter_vars, transformation, template, fifo, fifo_on_exhausted,
                                   headers, timeout_ms, max_retries, retry_base_delay_ms, batch_max_events, batch_max_wait_ms, batch_group_by_type)
    VALUES (${e.organizationId}, ${e.userId}, ${e.name}, ${e.url}, ${e.events}::text[], ${e.secretCiphertext}, ${e.kind},
            ${e.description}, ${sql.json(e.metadata as never)}, ${e.rateLimitPerSecond}, ${e.isActive},
            ${e.includeFields ? sql.json(e.includeFields as never) : null}, ${e.maxInFlight ?? null},
            ${filter?.filter ? sql.json(filter.filter as never) : null}, ${filter?.filter_jsonpath ?? null}::jsonpath,
            ${filter?.filter_vars ? sql.json(filter.filter_vars as never) : null}, ${e.transformation ?? null}, ${e.template ?? null},
            ${e.fifo ?? false}, ${e.fifoOnExhausted ?? 'hold'},
            ${settings?.headers ? sql.json(settings.headers) : null}, ${settings?.timeout_ms ?? null}, ${settings?.max_retries ?? null},
            ${settings?.retry_base_delay_ms ?? null}, ${e.batching?.batch_max_events ?? null}, ${e.batching?.batch_max_wait_ms ?? null},
            ${e.batching?.batch_group_by_type ?? false})
    RETURNING *`;
  return row as EndpointRow;
}

export async function findEndpoint(sql: Db, organizationId: string | null, id: string, owner?: string): Promise<EndpointRow | undefined> {
  const [row] = await sql<EndpointRow[]>`
    SELECT * FROM webhook_endpoints
    WHERE id = ${id} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
      AND (${owner ?? null}::text IS NULL OR user_id = ${owner ?? null})`;
  return row;
}

export async function listEndpoints(
  sql: Db,
  f: { organizationId: string | null; kind?: 'endpoint' | 'n8n'; owner?: string | undefined; after?: string | undefined; limit: number },
): Promise<EndpointRow[]> {
  return sql<EndpointRow[]>`
    SELECT * FROM webhook_endpoints
    WHERE (${f.organizationId}::uuid IS NULL OR organization_id = ${f.organizationId}::uuid)
      AND (${f.owner ?? null}::text IS NULL OR user_id = ${f.owner ?? null})
      AND kind = ${f.kind ?? 'endpoint'}
      AND (${f.after ?? null}::uuid IS NULL OR id > ${f.after ?? null}::uuid)
    ORDER BY id LIMIT ${f.limit}`;
}

export type EndpointChanges = Partial<{
  name: string;
  url: string;
  events: string[];
  description: string | null;
  metadata: Record<string, unknown>;
  rate_limit_per_second: number | null;
  user_id: string | null;
  include_fields: IncludeFields | null;
  max_in_flight: number | null;
  transformation: string | null;
  template: string | null;
  fifo: boolean;
  fifo_on_exhausted: 'hold' | 'skip';
  batch_max_events: number | null;
  batch_max_wait_ms: number | null;
  batch_group_by_type: boolean;
}> &
  Partial<EndpointFilterColumns> &
  Partial<EndpointDeliverySettings>;

export async function updateEndpoint(
  sql: Db,
  organizationId: string | null,
  id: string,
  changes: EndpointChanges,
  owner?: string,
): Promise<EndpointRow | undefined> {
  const columns = Object.keys(changes) as (keyof EndpointChanges)[];
  if (columns.length === 0) return findEndpoint(sql, organizationId, id, owner);
  const values = { ...changes, updated_at: new Date() } as Record<string, unknown>;
  if (changes.metadata) values.metadata = sql.json(changes.metadata as never);
  if (changes.include_fields) values.include_fields = sql.json(changes.include_fields as never);
  if (changes.filter) values.filter = sql.json(changes.filter as never);
  if (changes.filter_vars) values.filter_vars = sql.json(changes.filter_vars as never);
  if (changes.headers) values.headers = sql.json(changes.headers);
  const update = async (tx: Db) => {
    const [row] = await tx<EndpointRow[]>`
      UPDATE webhook_endpoints SET ${tx(values as never, ...([...columns, 'updated_at'] as never[]))}
      WHERE id = ${id} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
        AND (${owner ?? null}::text IS NULL OR user_id = ${owner ?? null})
      RETURNING *`;
    // Ordered delivery switched on or off: its unfinished deliveries join or leave the FIFO queue
    // with it (in event order, as if they had arrived after the switch).
    if (row && changes.fifo !== undefined) {
      await tx`
        UPDATE webhook_dispatches SET fifo = ${changes.fifo ? true : null}
        WHERE webhook_endpoint_id = ${id} AND status IN ('pending', 'in_flight', 'paused')`;
    }
    return row;
  };
  if (changes.fifo === undefined || !('begin' in sql)) return update(sql);
  // It locks the endpoint, then its dispatches; an outcome batch being recorded locks the other way
  // round, so the two can deadlock (seen: a PATCH to fifo answered 500 beside a worker). Postgres then
  // aborts one side whole, and this side is run again.
  return retryOnDeadlock(() => (sql as Sql).begin(update) as Promise<EndpointRow | undefined>);
}

/**
 * Deleting an endpoint cancels its unfinished deliveries first and settles their events' status (an
 * event waiting only on this endpoint is then complete), since the cascade that removes the
 * dispatches would otherwise leave those events 'processing' for ever.
 * Locks are taken in the worker's order — the endpoint's dispatches, the endpoint, then events — so
 * deleting while an outcome batch is being recorded waits instead of deadlocking.
 */
export async function deleteEndpoint(sql: Sql, organizationId: string | null, id: string, owner?: string): Promise<boolean> {
  return retryOnDeadlock(() => sql.begin((tx) => deleteEndpointIn(tx, organizationId, id, owner)) as Promise<boolean>);
}

/** deleteEndpoint inside the caller's transaction (the n8n registry deletes a workflow's endpoint so). */
export async function deleteEndpointIn(tx: TxSql, organizationId: string | null, id: string, owner?: string): Promise<boolean> {
  const owned = await tx`
    SELECT id FROM webhook_endpoints WHERE id = ${id} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
      AND (${owner ?? null}::text IS NULL OR user_id = ${owner ?? null})`;
  if (owned.length === 0) return false;
  const dispatches = await tx<{ webhook_event_id: string; status: string }[]>`
    SELECT webhook_event_id, status FROM webhook_dispatches WHERE webhook_endpoint_id = ${id} ORDER BY id FOR UPDATE`;
  await tx`SELECT id FROM webhook_endpoints WHERE id = ${id} FOR UPDATE`;
  // In-flight ones too: their worker records its attempt, but finds the dispatch gone, so the event
  // must be settled here. The rows are locked above, so its outcome batch waits for this transaction.
  const unfinished = dispatches.filter((d) => d.status === 'pending' || d.status === 'paused' || d.status === 'in_flight');
  const eventIds = [...new Set(unfinished.map((d) => d.webhook_event_id))].sort();
  if (eventIds.length) {
    await tx`
      UPDATE webhook_dispatches SET status = 'cancelled', last_error = 'endpoint deleted', lease_expires_at = NULL, leased_by = NULL, completed_at = now(), updated_at = now()
      WHERE webhook_endpoint_id = ${id} AND status IN ('pending', 'paused', 'in_flight')`;
    await tx`SELECT id FROM webhook_events WHERE id = ANY(${eventIds}::uuid[]) ORDER BY id FOR NO KEY UPDATE`;
    await refreshEventStatuses(tx as unknown as Sql, eventIds);
  }
  await tx`DELETE FROM webhook_endpoints WHERE id = ${id}`;
  return true;
}

/**
 * Disabling holds the endpoint's pending deliveries (status 'paused') rather than failing them;
 * enabling puts them back in the queue, due now.
 */
export async function setEndpointActive(
  sql: Sql,
  organizationId: string | null,
  id: string,
  active: boolean,
  reason: string | null,
  owner?: string,
): Promise<EndpointRow | undefined> {
  return sql.begin((tx) => setEndpointActiveIn(tx, organizationId, id, active, reason, owner)) as Promise<EndpointRow | undefined>;
}

/** setEndpointActive inside the caller's transaction (n8n workflows change their endpoint with their own row). */
export async function setEndpointActiveIn(
  tx: TxSql,
  organizationId: string | null,
  id: string,
  active: boolean,
  reason: string | null,
  owner?: string,
): Promise<EndpointRow | undefined> {
  const [row] = await tx<EndpointRow[]>`
    UPDATE webhook_endpoints SET is_active = ${active}, disabled_reason = ${active ? null : reason}, updated_at = now(),
           -- enabling closes the circuit breaker: its failure history starts over
           consecutive_failures = CASE WHEN ${active} THEN 0 ELSE consecutive_failures END,
           failing_since = CASE WHEN ${active} THEN NULL ELSE failing_since END,
           failed_attempts_in_row = CASE WHEN ${active} THEN 0 ELSE failed_attempts_in_row END,
           failing_notified_at = CASE WHEN ${active} THEN NULL ELSE failing_notified_at END,
           -- an endpoint disabled by hand stays disabled: it is never probed
           probe_at = NULL, probes = 0
    WHERE id = ${id} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
      AND (${owner ?? null}::text IS NULL OR user_id = ${owner ?? null})
    RETURNING *`;
  if (!row) return undefined;
  if (active) {
    const resumed = await tx`
      UPDATE webhook_dispatches SET status = 'pending', next_attempt_at = now(), updated_at = now()
      WHERE webhook_endpoint_id = ${id} AND status = 'paused' RETURNING 1`;
    if (resumed.length) await tx`SELECT pg_notify(current_schema() || '_dispatch', '')`;
  } else {
    await tx`
      UPDATE webhook_dispatches SET status = 'paused', updated_at = now()
      WHERE webhook_endpoint_id = ${id} AND status = 'pending'`;
  }
  return row;
}

export async function rotateEndpointSecret(
  sql: Db,
  organizationId: string | null,
  id: string,
  newSecretCiphertext: string,
  overlapMs: number,
  owner?: string,
): Promise<EndpointRow | undefined> {
  const [row] = await sql<EndpointRow[]>`
    UPDATE webhook_endpoints
       SET previous_secret = secret,
           previous_secret_expires_at = now() + ${overlapMs} * interval '1 millisecond',
           secret = ${newSecretCiphertext},
           updated_at = now()
     WHERE id = ${id} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
       AND (${owner ?? null}::text IS NULL OR user_id = ${owner ?? null})
     RETURNING *`;
  return row;
}

/**
 * Recovery after a disabled period (docs/architecture.md, "Isolation"): events of the endpoint's
 * organization created from `since` (up to `until`) that its event types and content filter match and that it was never
 * given (they arrived while it was disabled, or before it existed) get a delivery to it now. Pending
 * if the endpoint is active, held (paused) until it is enabled otherwise. At most `limit` per call,
 * oldest first: `truncated` says to call again. Returns how many were queued.
 */
/**
 * The events of endpoint `id`'s organization in the window that the endpoint matches (event types,
 * then its content filter, as fan-out applies them: migrations 0009 and 0021) and was never given,
 * as a FROM … WHERE fragment over `ep` and `e`. Recover inserts them; its preview counts them.
 */
export function missedEvents(sql: Sql | TxSql, id: string, window: { since: Date; until: Date | null }) {
  return sql`
      FROM webhook_endpoints ep
      JOIN webhook_events e ON e.organization_id = ep.organization_id
      WHERE ep.id = ${id}
        AND e.created_at >= ${window.since} AND (${window.until}::timestamptz IS NULL OR e.created_at < ${window.until}::timestamptz)
        AND ep.events && event_type_patterns(e.event_type)
        AND (ep.filter_jsonpath IS NULL OR jsonb_path_match(e.data, ep.filter_jsonpath, ep.filter_vars, true))
        AND NOT EXISTS (SELECT 1 FROM webhook_dispatches d WHERE d.webhook_event_id = e.id AND d.webhook_endpoint_id = ep.id)`;
}

export async function recoverEndpointEvents(
  sql: Sql,
  organizationId: string | null,
  id: string,
  window: { since: Date; until: Date | null; limit: number },
  owner?: string,
): Promise<{ recovered: number; truncated: boolean } | undefined> {
  return retryOnDeadlock(
    () =>
      sql.begin(async (tx) => {
        const [ep] = await tx<{ id: string }[]>`
      SELECT id FROM webhook_endpoints
      WHERE id = ${id} AND (${organizationId}::uuid IS NULL OR organization_id = ${organizationId}::uuid)
        AND (${owner ?? null}::text IS NULL OR user_id = ${owner ?? null}) FOR NO KEY UPDATE`;
        if (!ep) return undefined;
        const rows = await tx<{ webhook_event_id: string }[]>`
      INSERT INTO webhook_dispatches (organization_id, webhook_event_id, webhook_endpoint_id, priority, status, fifo)
      SELECT e.organization_id, e.id, ep.id, e.priority, CASE WHEN ep.is_active THEN 'pending' ELSE 'paused' END, CASE WHEN ep.fifo THEN true END
      ${missedEvents(tx, id, window)}
      ORDER BY e.created_at
      LIMIT ${window.limit}
      RETURNING webhook_event_id`;
        const eventIds = [...new Set(rows.map((r) => r.webhook_event_id))].sort();
        if (eventIds.length) {
          await tx`SELECT id FROM webhook_events WHERE id = ANY(${eventIds}::uuid[]) ORDER BY id FOR NO KEY UPDATE`;
          await refreshEventStatuses(tx as unknown as Sql, eventIds);
          await tx`SELECT pg_notify(current_schema() || '_dispatch', '')`;
        }
        return { recovered: rows.length, truncated: rows.length === window.limit };
      }) as Promise<{ recovered: number; truncated: boolean } | undefined>,
  );
}
