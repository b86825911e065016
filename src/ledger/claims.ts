/**
 * Claims: a worker takes due dispatches in one statement (priority first, then due time, fair across
 * endpoints and organizations) under a lease; expired leases go back to the queue.
 */
import type postgres from 'postgres';
import type { Sql } from './connection.ts';
import { takeProbeDeliveries } from './circuit-breaker.ts';

/** An endpoint's allow-list of data fields: paths for every event type, or per event-type filter (protection/minimal-payload.ts applies it). */
export type IncludeFields = string[] | Record<string, string[]>;

export type ClaimedDispatch = {
  id: string;
  webhook_event_id: string;
  webhook_endpoint_id: string;
  organization_id: string;
  attempts: number;
  round_attempts: number;
  event_type: string;
  event_created_at: Date;
  /**
   * The data's compact JSON text (migration 0016), spliced into the envelope as is: no parse and
   * re-serialise per delivery. Rows from before 0016 have it rendered from jsonb by the claim.
   */
  data_text: string;
  /** Whether the data went through sealing (migration 0010): only then can it hold Carteiro's ciphertext. */
  data_sealed: boolean;
  url: string;
  secret: string | null;
  previous_secret: string | null;
  previous_secret_expires_at: Date | null;
  kind: 'endpoint' | 'n8n';
  rate_limit_per_second: number | null;
  endpoint_updated_at: Date;
  /** The endpoint's allow-list of data fields (null: all of them). */
  include_fields: IncludeFields | null;
  /** The endpoint's cap on requests in flight per worker (its own, or the default). */
  max_in_flight: number;
  /** The endpoint's transformation (migration 0022), run before signing; null: the envelope as is. */
  transformation: string | null;
  /** The W3C traceparent stored with the event (migration 0023): its delivery spans join that trace. */
  trace_context: string | null;
  /** Ordered delivery (migration 0025): one at a time, in event order; what a head failed for good does. */
  fifo: boolean;
  /**
   * Batching (migration 0028): the batch this dispatch is sent in, with the other rows of this claim
   * that carry the same id (one POST, the id its webhook-id); null: sent alone.
   */
  batch_id: string | null;
  fifo_on_exhausted: 'hold' | 'skip';
  /** Delivery settings (migration 0027): static headers (values sealed), and the timeout and retry overrides (null: the service's). */
  static_headers: Record<string, string> | null;
  timeout_ms: number | null;
  max_retries: number | null;
  retry_base_delay_ms: number | null;
};

/** At most this many events go into one claim's new batches for one endpoint (the batches it may form, times their size). */
const BATCH_CLAIM_EVENTS = 2000;

/** What a worker tells a claim about the endpoints it is sending to (adaptive concurrency). */
export type WorkerEndpointView = { endpointIds: string[]; inFlight: number[]; limits: number[] };

export type ClaimBounds = {
  /** Per-endpoint cap when the endpoint sets none (CARTEIRO_ENDPOINT_MAX_IN_FLIGHT). */
  defaultMaxInFlight: number;
  /** The limit for an endpoint this worker has no view of yet (CARTEIRO_ENDPOINT_START_IN_FLIGHT). */
  startInFlight: number;
  /** Failed attempts in a row that put an endpoint in the slow lane: cap 1 (0 = never). */
  slowLaneAfterFailures: number;
};

/**
 * Claims up to `limit` due dispatches, fairly, under a lease.
 *
 * Isolation (docs/architecture.md): the claim visits the active endpoints and takes from each at most
 * its room, which is its cap (the endpoint's max_in_flight, lowered by this worker's adaptive limit,
 * and 1 in the slow lane) less what this worker already has in flight to it. Within an endpoint, high
 * priority goes before normal and then due time, each read by one range scan of
 * webhook_dispatches_endpoint_due with a LIMIT: the statement reads only rows it may take, whatever
 * the backlog's size or the planner's statistics, and never steps over retries not yet due. Across
 * endpoints the candidates are dealt round-robin per organization (each organization's first, then
 * each one's second, ...; its endpoints in turn within it), so when the batch is smaller than the
 * offer, a busy organization or endpoint takes no more turns than a quiet one.
 *
 * The chosen rows are then locked with SKIP LOCKED (another worker may have taken some: this claim
 * returns fewer) and re-checked as pending, so the no-loss and exactly-one-holder rules are as before.
 *
 * Claims commit asynchronously (`synchronous_commit = off` for the claim's own transaction): a claim
 * lost in a crash only leaves its rows pending, to be claimed again, and the outcome commit that
 * follows every delivery is synchronous and flushes the claim's WAL with its own. So a claim does not
 * wait for a WAL flush behind the API's commits, which is latency on every delivery.
 */
export async function claimDueDispatches(
  sql: Sql,
  workerId: string,
  limit: number,
  leaseMs: number,
  bounds: ClaimBounds,
  view: WorkerEndpointView = { endpointIds: [], inFlight: [], limits: [] },
  opts: ClaimOptions = {},
): Promise<ClaimedDispatch[]> {
  // Planned for the ledger as it is now, every time. postgres.js prepares statements, and Postgres
  // keeps a generic plan after five runs: a worker that claimed from a nearly empty queue (a quiet
  // hour) kept a plan made for it, and when a backlog arrived each claim read all of it. Measured in
  // the isolation bench: a 30,000-event backlog drained at ~200/s, beside 3,600/s for a worker that
  // started with the backlog in place. A custom plan costs a planning per claim, one per batch.
  return sql.begin(async (tx) => {
    // Both sent at once (pipelined), both awaited together: when the connection drops, each rejects,
    // and a rejection nobody awaits would end the process (measured: a Postgres restart killed the
    // worker with "uncaught exception: read ECONNRESET" from the claim).
    const [, claimed] = await Promise.all([
      tx`SET LOCAL plan_cache_mode = force_custom_plan`.execute(),
      claimStatement(tx, workerId, limit, leaseMs, bounds, view, opts).execute(),
    ]);
    return claimed;
  }) as Promise<ClaimedDispatch[]>;
}

/**
 * The claim as a statement not yet sent, so that it can also be explained (the bench's `--profile`
 * and the plan test: sql`EXPLAIN (ANALYZE) ${claimStatement(...)}`, which claims for real).
 */
export function claimStatement(
  sql: Sql | postgres.TransactionSql,
  workerId: string,
  limit: number,
  leaseMs: number,
  bounds: ClaimBounds,
  view: WorkerEndpointView = { endpointIds: [], inFlight: [], limits: [] },
  opts: ClaimOptions = {},
) {
  const batching = opts.batching ?? true;
  // The leading comment names the statement in pg_stat_activity, whose text is cut at 1 kB.
  return sql<ClaimedDispatch[]>`/* carteiro: claim */
    WITH lazy_commit AS (
      SELECT set_config('synchronous_commit', 'off', true)
    ), mine AS (
      SELECT * FROM unnest(${view.endpointIds}::uuid[], ${view.inFlight}::int[], ${view.limits}::int[]) AS m(endpoint_id, in_flight, lim)
    ), room AS (
      SELECT ep.id AS endpoint_id, ep.organization_id, ep.fifo,
             ep.batch_max_events AS batch_max, ep.batch_max_wait_ms AS batch_wait, ep.batch_group_by_type AS batch_by_type,
             LEAST(CASE WHEN ep.fifo THEN 1
                        WHEN ${bounds.slowLaneAfterFailures}::int > 0 AND ep.failed_attempts_in_row >= ${bounds.slowLaneAfterFailures}::int THEN 1
                        ELSE coalesce(ep.max_in_flight, ${bounds.defaultMaxInFlight}::int) END,
                   coalesce(m.lim, ${bounds.startInFlight}::int))
             - coalesce(m.in_flight, 0) AS room,
             coalesce(m.in_flight, 0) AS in_flight
      FROM webhook_endpoints ep LEFT JOIN mine m ON m.endpoint_id = ep.id
      WHERE ep.is_active
    ), ready AS (
      -- Endpoints with room and due work, and each one's share of the batch: the candidates stay
      -- O(batch) however many endpoints are backlogged (at least 16 each, so a few busy endpoints
      -- among many still claim in useful batches).
      SELECT r.*, GREATEST(16, ceil(${limit}::numeric / count(*) OVER ()))::int AS share
      FROM room r
      -- A probe per endpoint (LATERAL with LIMIT 1, never a semi-join the planner could turn into a
      -- scan of the whole due set).
      CROSS JOIN LATERAL (
        SELECT 1 FROM webhook_dispatches d
         WHERE d.webhook_endpoint_id = r.endpoint_id AND d.status = 'pending' AND d.priority IN (0, 1) AND d.next_attempt_at <= now()
         LIMIT 1) has_due
      WHERE r.room > 0
    ), offered AS (
      SELECT r.organization_id, r.endpoint_id, r.in_flight, c.id, c.turn, NULL::uuid[] AS members, NULL::uuid AS batch_id
      FROM ready r CROSS JOIN LATERAL (
        SELECT x.id, row_number() OVER () AS turn FROM (
          (SELECT d.id FROM webhook_dispatches d
            WHERE d.webhook_endpoint_id = r.endpoint_id AND d.status = 'pending' AND d.priority = 1 AND d.next_attempt_at <= now()
            ORDER BY d.next_attempt_at LIMIT LEAST(r.room, r.share, ${limit}::int))
          UNION ALL
          (SELECT d.id FROM webhook_dispatches d
            WHERE d.webhook_endpoint_id = r.endpoint_id AND d.status = 'pending' AND d.priority = 0 AND d.next_attempt_at <= now()
            ORDER BY d.next_attempt_at LIMIT LEAST(r.room, r.share, ${limit}::int))
          LIMIT LEAST(r.room, r.share, ${limit}::int)
        ) x
      ) c
      WHERE NOT r.fifo AND r.batch_max IS NULL
      UNION ALL
      -- A FIFO endpoint offers its head, the first of its unfinished deliveries in event order, and
      -- only when that one is pending and due: one in flight anywhere, or waiting for its retry,
      -- holds every later one back. Another worker's claim of the head is skipped (SKIP LOCKED
      -- below), never stepped past: only the head is ever offered.
      SELECT r.organization_id, r.endpoint_id, r.in_flight, h.id, 1 AS turn, NULL::uuid[], NULL::uuid
      FROM ready r CROSS JOIN LATERAL (
        SELECT d.id, d.status, d.next_attempt_at FROM webhook_dispatches d
         WHERE d.webhook_endpoint_id = r.endpoint_id AND d.fifo AND d.status IN ('pending', 'in_flight')
         ORDER BY d.webhook_event_id LIMIT 1) h
      WHERE r.fifo AND h.status = 'pending' AND h.next_attempt_at <= now()
      ${batching ? batchOffer(sql, limit) : sql``}
    ), dealt AS (
      -- Within a turn, endpoints with the least in flight here first: when a claim has less room
      -- than there are endpoints with due work, a quiet endpoint is not left to the luck of random().
      SELECT id, members, batch_id, row_number() OVER (PARTITION BY organization_id ORDER BY turn, in_flight, random()) AS org_turn FROM offered
    ${batching ? batchClaimTail(sql, workerId, limit, leaseMs) : plainClaimTail(sql, workerId, limit, leaseMs)}
    )
    ${claimedRows(sql, bounds)}
    JOIN chosen ch ON ch.id = c.id
    CROSS JOIN lazy_commit
    -- Started in this order: high priority first, then in turns, so each endpoint's first request
    -- goes out before anyone's second however large the batch.
    ORDER BY c.priority DESC, ch.org_turn, c.next_attempt_at`;
}

/**
 * Whether endpoints that batch may exist: the claim then offers batches (docs/batching.md), at a cost
 * a claim pays on every run (a larger statement to plan, a second lock step). The worker asks only
 * while it knows of batching endpoints; without it, the batching endpoints' work waits for a claim
 * that asks (never is it sent one event per request).
 */
export type ClaimOptions = { batching?: boolean };

/** The offer's branch for batching endpoints (see claimStatement). */
function batchOffer(sql: Sql | postgres.TransactionSql, limit: number) {
  return sql`
      UNION ALL
      -- A batching endpoint (docs/batching.md) offers batches, each one turn and one slot of its room:
      -- first its batches formed before and due again (a retry, a lease that ran out), each with all
      -- its pending members; then deliveries that go alone (replays); then new batches of its due
      -- deliveries, each full (batch_max) or holding one that has waited batch_wait.
      SELECT r.organization_id, r.endpoint_id, r.in_flight, b.id, b.turn, b.members, b.batch_id
      FROM ready r CROSS JOIN LATERAL (
        SELECT u.members[1] AS id, CASE WHEN u.alone THEN NULL ELSE u.members END AS members, u.batch_id,
               row_number() OVER () AS turn
        FROM (
          (SELECT array_agg(d.id ORDER BY d.webhook_event_id) AS members, d.batch_id, false AS alone
             FROM webhook_dispatches d
            WHERE d.webhook_endpoint_id = r.endpoint_id AND d.batch_id IS NOT NULL AND d.status = 'pending' AND d.next_attempt_at <= now()
            GROUP BY d.batch_id ORDER BY min(d.next_attempt_at) LIMIT LEAST(r.room, r.share, ${limit}::int))
          UNION ALL
          (SELECT ARRAY[d.id], NULL::uuid, true
             FROM webhook_dispatches d
            WHERE d.webhook_endpoint_id = r.endpoint_id AND d.unbatched AND d.status = 'pending' AND d.next_attempt_at <= now()
            ORDER BY d.next_attempt_at LIMIT LEAST(r.room, r.share, ${limit}::int))
          UNION ALL
          (SELECT array_agg(f.id ORDER BY f.webhook_event_id), NULL::uuid, false
             FROM (
               SELECT w.id, w.webhook_event_id, w.next_attempt_at, w.grp,
                      (row_number() OVER (PARTITION BY w.grp ORDER BY w.priority DESC, w.next_attempt_at) - 1) / r.batch_max AS n
               FROM (
                 SELECT x.*, CASE WHEN r.batch_by_type THEN (SELECT e.event_type FROM webhook_events e WHERE e.id = x.webhook_event_id) END AS grp
                 FROM (
                   (SELECT d.id, d.webhook_event_id, d.priority, d.next_attempt_at FROM webhook_dispatches d
                     WHERE d.webhook_endpoint_id = r.endpoint_id AND d.status = 'pending' AND d.priority = 1 AND d.next_attempt_at <= now()
                       AND d.batch_id IS NULL AND d.unbatched IS NULL
                     ORDER BY d.next_attempt_at LIMIT LEAST(r.room, r.share, ${limit}::int, GREATEST(1, ${BATCH_CLAIM_EVENTS}::int / r.batch_max)) * r.batch_max)
                   UNION ALL
                   (SELECT d.id, d.webhook_event_id, d.priority, d.next_attempt_at FROM webhook_dispatches d
                     WHERE d.webhook_endpoint_id = r.endpoint_id AND d.status = 'pending' AND d.priority = 0 AND d.next_attempt_at <= now()
                       AND d.batch_id IS NULL AND d.unbatched IS NULL
                     ORDER BY d.next_attempt_at LIMIT LEAST(r.room, r.share, ${limit}::int, GREATEST(1, ${BATCH_CLAIM_EVENTS}::int / r.batch_max)) * r.batch_max)
                   LIMIT LEAST(r.room, r.share, ${limit}::int, GREATEST(1, ${BATCH_CLAIM_EVENTS}::int / r.batch_max)) * r.batch_max
                 ) x
               ) w
             ) f
            GROUP BY f.grp, f.n
            HAVING count(*) >= r.batch_max OR min(f.next_attempt_at) <= now() - coalesce(r.batch_wait, 0) * interval '1 millisecond'
            ORDER BY min(f.next_attempt_at))
        ) u
        LIMIT LEAST(r.room, r.share, ${limit}::int)
      ) b
      WHERE r.batch_max IS NOT NULL
`;
}

/** Without batching: the chosen rows are locked and leased. */
function plainClaimTail(sql: Sql | postgres.TransactionSql, workerId: string, limit: number, leaseMs: number) {
  return sql`
    ), chosen AS (
      SELECT id, org_turn, NULL::uuid AS batch_id FROM dealt ORDER BY org_turn, random() LIMIT ${limit}::int
    ), due AS (
      SELECT d.id FROM webhook_dispatches d
      WHERE d.id IN (SELECT id FROM chosen) AND d.status = 'pending'
      FOR UPDATE SKIP LOCKED
    ), claimed AS (
      UPDATE webhook_dispatches d
         SET status = 'in_flight', leased_by = ${workerId},
             lease_expires_at = now() + ${leaseMs} * interval '1 millisecond',
             attempts = d.attempts + 1, round_attempts = d.round_attempts + 1, updated_at = now()
        FROM due WHERE d.id = due.id
      RETURNING d.id, d.webhook_event_id, d.webhook_endpoint_id, d.organization_id, d.attempts, d.round_attempts, d.priority, d.next_attempt_at, d.batch_id`;
}

/** With batching: batches get their ids, and a batch formed before is leased whole or not at all. */
function batchClaimTail(sql: Sql | postgres.TransactionSql, workerId: string, limit: number, leaseMs: number) {
  return sql`
    ), picked AS (
      -- A new batch gets its id (its webhook-id) here; a batch formed before keeps its own.
      SELECT id, org_turn, members, CASE WHEN members IS NOT NULL THEN coalesce(batch_id, uuid_v7()) END AS batch_id, batch_id IS NULL AS fresh
      FROM dealt ORDER BY org_turn, random() LIMIT ${limit}::int
    ), chosen AS (
      SELECT id, org_turn, NULL::uuid AS batch_id, true AS fresh FROM picked WHERE members IS NULL
      UNION ALL
      SELECT m.id, p.org_turn, p.batch_id, p.fresh FROM picked p CROSS JOIN LATERAL unnest(p.members) AS m(id) WHERE p.members IS NOT NULL
    ), due AS (
      SELECT d.id FROM webhook_dispatches d
      WHERE d.id IN (SELECT id FROM chosen WHERE batch_id IS NULL) AND d.status = 'pending'
      FOR UPDATE SKIP LOCKED
    ), due_in_batch AS (
      SELECT d.id FROM webhook_dispatches d
      WHERE d.id IN (SELECT id FROM chosen WHERE batch_id IS NOT NULL) AND d.status = 'pending'
      FOR UPDATE SKIP LOCKED
    ), in_batches AS (
      -- A batch formed before (a retry) goes whole or not at all: when another claim holds some of its
      -- members, this claim takes none of them (their locks go with this transaction) and a later
      -- claim tries again. A new batch is formed of the members this claim could lock.
      SELECT x.id, c.batch_id FROM due_in_batch x JOIN chosen c ON c.id = x.id
       WHERE c.fresh OR c.batch_id IN (
         SELECT c2.batch_id FROM chosen c2 LEFT JOIN due_in_batch y ON y.id = c2.id
          WHERE c2.batch_id IS NOT NULL AND NOT c2.fresh GROUP BY c2.batch_id HAVING count(*) = count(y.id))
    ), claimed AS (
      UPDATE webhook_dispatches d
         SET status = 'in_flight', leased_by = ${workerId},
             lease_expires_at = now() + ${leaseMs} * interval '1 millisecond',
             attempts = d.attempts + 1, round_attempts = d.round_attempts + 1, updated_at = now(),
             batch_id = took.batch_id
        FROM (SELECT id, NULL::uuid AS batch_id FROM due UNION ALL SELECT id, batch_id FROM in_batches) took WHERE d.id = took.id
      RETURNING d.id, d.webhook_event_id, d.webhook_endpoint_id, d.organization_id, d.attempts, d.round_attempts, d.priority, d.next_attempt_at, d.batch_id
`;
}

/** What a claim returns for the rows of its `claimed` CTE: the dispatch, its event and its endpoint. */
function claimedRows(sql: Sql | postgres.TransactionSql, bounds: ClaimBounds) {
  return sql`
    SELECT c.id, c.webhook_event_id, c.webhook_endpoint_id, c.organization_id, c.attempts, c.round_attempts, c.batch_id,
           e.event_type, e.created_at AS event_created_at, coalesce(e.data_json, compact_json(e.data)) AS data_text, e.data_sealed,
           ep.url, ep.secret, ep.previous_secret, ep.previous_secret_expires_at, ep.kind,
           ep.rate_limit_per_second, ep.updated_at AS endpoint_updated_at, ep.include_fields,
           coalesce(ep.max_in_flight, ${bounds.defaultMaxInFlight}::int) AS max_in_flight, ep.transformation, e.trace_context,
           ep.fifo, ep.fifo_on_exhausted,
           ep.headers AS static_headers, ep.timeout_ms, ep.max_retries, ep.retry_base_delay_ms
    FROM claimed c
    JOIN webhook_events e ON e.id = c.webhook_event_id
    JOIN webhook_endpoints ep ON ep.id = c.webhook_endpoint_id`;
}

/**
 * Half-open probes (circuit-breaker.ts, takeProbeDeliveries): leases one delivery of each disabled
 * endpoint whose probe is due to `workerId`, as a claim does. A delivery that had failed for good
 * starts a new round of attempts.
 */
export async function claimProbeDispatches(sql: Sql, workerId: string, leaseMs: number, cooloffMs: number, bounds: ClaimBounds): Promise<ClaimedDispatch[]> {
  return sql.begin(async (tx) => {
    const ids = await takeProbeDeliveries(tx, cooloffMs);
    if (ids.length === 0) return [];
    return tx<ClaimedDispatch[]>`
      WITH claimed AS (
        UPDATE webhook_dispatches d
           SET status = 'in_flight', leased_by = ${workerId},
               lease_expires_at = now() + ${leaseMs} * interval '1 millisecond',
               attempts = d.attempts + 1,
               round_attempts = CASE WHEN d.status = 'failed' THEN 1 ELSE d.round_attempts + 1 END,
               -- A probe is one delivery, sent alone (a batching endpoint's too: it leaves its batch).
               completed_at = NULL, updated_at = now(), batch_id = NULL
         WHERE d.id = ANY(${ids}::uuid[]) AND d.status IN ('paused', 'failed')
        RETURNING d.id, d.webhook_event_id, d.webhook_endpoint_id, d.organization_id, d.attempts, d.round_attempts, d.batch_id
      )
      ${claimedRows(tx, bounds)}`;
  }) as Promise<ClaimedDispatch[]>;
}

/**
 * Batching (docs/batching.md): when the next batch still filling becomes due by its wait, over the
 * active batching endpoints (the oldest due delivery not yet in a batch, plus its endpoint's
 * batch_max_wait_ms). `batching` says whether there are any: the worker asks only then.
 */
export async function nextBatchDueAt(sql: Sql): Promise<{ batching: boolean; at: Date | null }> {
  const [row] = await sql<{ batching: boolean; at: Date | null }[]>`
    SELECT count(*) > 0 AS batching, min(x.oldest + coalesce(ep.batch_max_wait_ms, 0) * interval '1 millisecond') AS at
    FROM webhook_endpoints ep CROSS JOIN LATERAL (
      SELECT LEAST(
        (SELECT min(d.next_attempt_at) FROM webhook_dispatches d
          WHERE d.webhook_endpoint_id = ep.id AND d.status = 'pending' AND d.priority = 1 AND d.batch_id IS NULL AND d.unbatched IS NULL),
        (SELECT min(d.next_attempt_at) FROM webhook_dispatches d
          WHERE d.webhook_endpoint_id = ep.id AND d.status = 'pending' AND d.priority = 0 AND d.batch_id IS NULL AND d.unbatched IS NULL)) AS oldest
    ) x
    WHERE ep.is_active AND ep.batch_max_events IS NOT NULL`;
  return { batching: row?.batching ?? false, at: row?.at ?? null };
}

/**
 * Work whose worker died (its lease ran out) becomes due again. Returns how many rows. Commits
 * asynchronously like a claim: if the release is lost, the next sweep releases the rows again.
 */
export async function releaseExpiredLeases(sql: Sql): Promise<number> {
  const rows = await sql`
    WITH lazy_commit AS (SELECT set_config('synchronous_commit', 'off', true))
    UPDATE webhook_dispatches
       SET status = 'pending', leased_by = NULL, lease_expires_at = NULL, next_attempt_at = now(), updated_at = now()
     WHERE status = 'in_flight' AND lease_expires_at < now() AND EXISTS (SELECT 1 FROM lazy_commit)
    RETURNING 1`;
  return rows.length;
}
