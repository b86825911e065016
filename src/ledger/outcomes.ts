/**
 * Outcomes: a worker records a whole batch of attempts in one transaction of set-based statements
 * (measured here, about ten times cheaper than a statement per delivery), with the dispatches'
 * state, the endpoints' counters and circuit breakers, and the events' seed status.
 */
import type postgres from 'postgres';
import type { Sql } from './connection.ts';
import {
  emitEndpointDisabled,
  emitEndpointFailing,
  reenableProbedEndpoints,
  tripCircuitBreakers,
  type CircuitBreakerPolicy,
  type DisabledEndpoint,
} from './circuit-breaker.ts';

/** What happened to one claimed dispatch, ready to be written. */
export type OutcomeRecord = {
  dispatchId: string;
  eventId: string;
  endpointId: string;
  organizationId: string;
  /** n8n destinations also keep their workflow's counters and state (n8n_workflows). */
  destinationKind: 'endpoint' | 'n8n';
  attemptNumber: number;
  /** false for work handed back without an attempt (rate limit, shutdown): no attempt row is written. */
  attempted: boolean;
  success: boolean;
  statusCode: number | null;
  responseBody: string | null;
  /** Whether responseBody is sealed (data protection): only then is it opened for display. */
  responseSealed: boolean;
  durationMs: number;
  error: string | null;
  /** 'cancelled': the endpoint's transformation cancelled it (attempted is false; `error` says so). */
  nextStatus: 'succeeded' | 'pending' | 'failed' | 'paused' | 'cancelled';
  nextAttemptAt: Date | null;
  /** Set when the receiver asked us to stop (410 Gone): the endpoint is disabled with this reason. */
  disableEndpointReason: string | null;
  /** Batching (migration 0028): the batch the attempt sent this dispatch in; its attempt row carries it. */
  batchId?: string | null;
  /**
   * A batch's member other than its first: the batch was one request, so the endpoint's counters
   * (successes, failures, failures in a row) count it once, through the first member's outcome.
   */
  batchFollower?: boolean;
};

/**
 * Writes a batch of outcomes atomically: attempt rows, dispatch states (only where this worker still
 * holds the lease), endpoint counters, and the events' seed-visible status.
 * Locks are taken in one order (endpoints, then events, each by id) so concurrent workers never deadlock.
 * With a circuit-breaker policy, endpoints past its thresholds are disabled in the same transaction.
 * Returns the endpoints this batch disabled (410 Gone or circuit breaker); each got an
 * `endpoint.disabled` event.
 */
export async function recordOutcomes(
  sql: Sql,
  workerId: string,
  outcomes: OutcomeRecord[],
  opts: { circuitBreaker?: CircuitBreakerPolicy | undefined; failingAfterFailures?: number | undefined } = {},
): Promise<DisabledEndpoint[]> {
  if (outcomes.length === 0) return [];
  outcomes = outcomes.map(storableOutcome);
  const attempted = outcomes.filter((o) => o.attempted);
  const counters = endpointCounters(attempted.filter((o) => !o.batchFollower));
  const disable = outcomes.filter((o) => o.disableEndpointReason);
  const eventIds = [...new Set(outcomes.map((o) => o.eventId))].sort();

  // Arrays travel as text[] and are cast per column: postgres.js infers array types unreliably
  // (a boolean[] arrives as boolean), and text is exact for every type used here.
  const txt = <T>(list: OutcomeRecord[], f: (o: OutcomeRecord) => T) =>
    list.map((o) => {
      const v = f(o);
      return v === null ? null : v instanceof Date ? v.toISOString() : String(v);
    });
  return sql.begin(async (tx) => {
    // The statements are pipelined: each is sent without waiting for the one before, and Postgres
    // runs them in order on this one connection (so the lock order holds). A batch costs three round
    // trips (BEGIN, the batch, COMMIT) instead of one per statement; if one fails, the transaction is
    // aborted, the rest fail with it and the batch rolls back whole.
    // postgres.js sends a query when it is first awaited; execute() sends it now, so queries go out in
    // the order written here.
    const pipeline: Promise<unknown>[] = [];
    const send = (query: postgres.PendingQuery<postgres.Row[]>) => pipeline.push(query.execute());
    send(preferIndexScans(tx));
    // The batch joins its dispatch rows by hash, never by nested loop. After an ANALYZE of an idle
    // queue the planner expects one in-flight row, and with a nested loop it read the whole batch
    // again for every row: quadratic, 3 s for a batch of 950 in a drain, so leases ran out and
    // deliveries were sent again. The dispatch rows are fetched by key (id = ANY) either way.
    send(tx`SET LOCAL enable_nestloop = off`);
    // The attempt rows and the dispatch states in one statement (the attempt log is written whether or
    // not this worker still holds the lease: the attempt happened).
    send(tx`
      WITH attempts AS (
        INSERT INTO webhook_deliveries
          (organization_id, webhook_event_id, webhook_endpoint_id, dispatch_id, attempt_number, success,
           status_code, response_body, response_sealed, delivery_duration_ms, error, batch_id)
        SELECT org::uuid, event_id::uuid, endpoint_id::uuid, dispatch_id::uuid, attempt::int, success::bool,
               status_code::int, response_body, response_sealed::bool, duration::int, error, batch_id::uuid
        FROM unnest(
          ${txt(attempted, (o) => o.organizationId)}::text[], ${txt(attempted, (o) => o.eventId)}::text[],
          ${txt(attempted, (o) => o.endpointId)}::text[], ${txt(attempted, (o) => o.dispatchId)}::text[],
          ${txt(attempted, (o) => o.attemptNumber)}::text[], ${txt(attempted, (o) => o.success)}::text[],
          ${txt(attempted, (o) => o.statusCode)}::text[], ${txt(attempted, (o) => o.responseBody)}::text[],
          ${txt(attempted, (o) => o.responseSealed)}::text[],
          ${txt(attempted, (o) => o.durationMs)}::text[], ${txt(attempted, (o) => o.error)}::text[],
          ${txt(attempted, (o) => o.batchId ?? null)}::text[]
        ) AS t(org, event_id, endpoint_id, dispatch_id, attempt, success, status_code, response_body, response_sealed, duration, error, batch_id)
      )
      UPDATE webhook_dispatches d
         SET status = CASE
               -- work handed back for an endpoint disabled meanwhile is held, like its other pending work
               WHEN u.next_status = 'pending' AND NOT (SELECT ep.is_active FROM webhook_endpoints ep WHERE ep.id = d.webhook_endpoint_id) THEN 'paused'
               ELSE u.next_status END,
             next_attempt_at = coalesce(u.next_attempt_at::timestamptz, d.next_attempt_at),
             round_attempts = CASE WHEN u.attempted::bool THEN d.round_attempts ELSE d.round_attempts - 1 END,
             attempts = CASE WHEN u.attempted::bool THEN d.attempts ELSE d.attempts - 1 END,
             lease_expires_at = NULL, leased_by = NULL,
             last_status_code = CASE WHEN u.attempted::bool THEN u.status_code::int ELSE d.last_status_code END,
             last_error = CASE WHEN u.attempted::bool OR u.next_status = 'cancelled' THEN u.error ELSE d.last_error END,
             completed_at = CASE WHEN u.next_status IN ('succeeded', 'failed', 'cancelled') THEN now() END,
             updated_at = now()
        FROM unnest(
          ${txt(outcomes, (o) => o.dispatchId)}::text[], ${txt(outcomes, (o) => o.nextStatus)}::text[],
          ${txt(outcomes, (o) => o.nextAttemptAt)}::text[], ${txt(outcomes, (o) => o.attempted)}::text[],
          ${txt(outcomes, (o) => o.statusCode)}::text[], ${txt(outcomes, (o) => o.error)}::text[],
          ${txt(outcomes, (o) => o.attemptNumber)}::text[]
        ) AS u(id, next_status, next_attempt_at, attempted, status_code, error, attempt_number)
       -- The rows are found by primary key (id = ANY), whatever plan was cached; the rest only checks
       -- that this worker still holds them. The status test is written as IS TRUE so it is never an
       -- index condition: as one, a plan cached on a small table read every in-flight entry of
       -- webhook_dispatches_endpoint with a bitmap scan, and bitmap scans never mark the entries of
       -- dead row versions, so each batch read every claim since the last vacuum (measured at 1,000
       -- events/s: 16,566 entries and 495 buffers to record 5 outcomes, 1.25 ms of 1.56).
       WHERE d.id = ANY(${outcomes.map((o) => o.dispatchId)}::uuid[]) AND d.id = u.id::uuid
         AND (d.status = 'in_flight') IS TRUE AND d.leased_by = ${workerId} AND d.attempts = u.attempt_number::int`);
    // The statements below join by key, where a nested loop is the right plan.
    send(tx`SET LOCAL enable_nestloop TO DEFAULT`);

    // Rows of several endpoints are locked in id order first; a single one is locked by its UPDATE.
    const endpointIds = [...new Set([...counters.map((c) => c.endpointId), ...disable.map((o) => o.endpointId)])].sort();
    if (endpointIds.length > 1) {
      send(tx`SELECT id FROM webhook_endpoints WHERE id = ANY(${endpointIds}::uuid[]) ORDER BY id FOR NO KEY UPDATE`);
    }
    if (counters.length) {
      const ids = counters.map((c) => c.endpointId);
      const ok = counters.map((c) => String(c.success));
      const bad = counters.map((c) => String(c.failure));
      const exhausted = counters.map((c) => String(c.exhaustedSinceSuccess));
      const reset = counters.map((c) => String(c.sawSuccess));
      const failing = counters.map((c) => String(c.failingSinceSuccess));
      const failedInRow = counters.map((c) => String(c.failedSinceSuccess));
      // Circuit-breaker state: a success in the batch resets it; failed attempts after the last
      // success extend it (consecutive exhausted deliveries, and since when every attempt failed).
      // failed_attempts_in_row drives the slow lane and `endpoint.failing` (isolation).
      send(tx`
        UPDATE webhook_endpoints ep
           SET success_count = ep.success_count + c.ok, failure_count = ep.failure_count + c.bad,
               consecutive_failures = CASE WHEN c.reset THEN c.exhausted ELSE ep.consecutive_failures + c.exhausted END,
               failing_since = CASE WHEN NOT c.failing THEN CASE WHEN c.reset THEN NULL ELSE ep.failing_since END
                                    WHEN c.reset THEN now() ELSE coalesce(ep.failing_since, now()) END,
               failed_attempts_in_row = CASE WHEN c.reset THEN c.failed_in_row ELSE ep.failed_attempts_in_row + c.failed_in_row END,
               failing_notified_at = CASE WHEN c.reset THEN NULL ELSE ep.failing_notified_at END
          FROM (SELECT id, ok::int AS ok, bad::int AS bad, exhausted::int AS exhausted, reset::bool AS reset, failing::bool AS failing,
                       failed_in_row::int AS failed_in_row
                FROM unnest(${ids}::uuid[], ${ok}::text[], ${bad}::text[], ${exhausted}::text[], ${reset}::text[], ${failing}::text[], ${failedInRow}::text[])
                  AS t(id, ok, bad, exhausted, reset, failing, failed_in_row)) c
         WHERE ep.id = c.id`);
      const stillFailing = counters.filter((c) => c.failingSinceSuccess).map((c) => c.endpointId);
      if (stillFailing.length && (opts.failingAfterFailures ?? 0) > 0) send(emitEndpointFailing(tx, stillFailing, opts.failingAfterFailures ?? 0));
      const recoveredIds = counters.filter((c) => c.sawSuccess).map((c) => c.endpointId);
      if (recoveredIds.length) send(reenableProbedEndpoints(tx, recoveredIds));
      if (attempted.some((o) => o.destinationKind === 'n8n'))
        send(tx`
        UPDATE n8n_workflows w
           SET success_count = w.success_count + c.ok, failure_count = w.failure_count + c.bad,
               -- The workflow's state from the batch's last attempt (docs/n8n.md): a 404 from its webhook URL
               -- means n8n has not registered it (the workflow is inactive); a success means it is live.
               state = coalesce(c.observed, w.state),
               state_changed_at = CASE WHEN c.observed <> w.state THEN now() ELSE w.state_changed_at END,
               last_error = CASE WHEN c.failing THEN c.last_error END,
               last_error_at = CASE WHEN c.failing THEN now() ELSE w.last_error_at END
          FROM (SELECT id, ok::int AS ok, bad::int AS bad, failing::bool AS failing, last_error,
                       CASE WHEN NOT failing::bool THEN 'active' WHEN last_code::int = 404 THEN 'inactive' END AS observed
                FROM unnest(${ids}::uuid[], ${ok}::text[], ${bad}::text[], ${failing}::text[], ${counters.map((c) => (c.lastStatusCode === null ? null : String(c.lastStatusCode)))}::text[],
                            ${counters.map((c) => c.lastError)}::text[]) AS t(id, ok, bad, failing, last_code, last_error)) c
         WHERE w.webhook_endpoint_id = c.id`);
    }
    const failingIds = counters.filter((c) => c.failingSinceSuccess).map((c) => c.endpointId);
    const mayDisable = disable.length > 0 || (opts.circuitBreaker !== undefined && failingIds.length > 0);
    // Disabling endpoints needs the answers of earlier statements: only then does the batch wait here.
    if (mayDisable) await Promise.all(pipeline.splice(0));
    const disabled: DisabledEndpoint[] = [];
    for (const o of disable) {
      disabled.push(
        ...(await tx<DisabledEndpoint[]>`
        UPDATE webhook_endpoints SET is_active = false, disabled_reason = ${o.disableEndpointReason}, updated_at = now()
        WHERE id = ${o.endpointId} AND is_active
        RETURNING id, organization_id, name, url, disabled_reason AS reason, consecutive_failures, failing_since`),
      );
      await tx`
        UPDATE webhook_dispatches SET status = 'paused', updated_at = now()
        WHERE webhook_endpoint_id = ${o.endpointId} AND status = 'pending'`;
    }
    if (opts.circuitBreaker && failingIds.length) disabled.push(...(await tripCircuitBreakers(tx, failingIds, opts.circuitBreaker)));
    if (mayDisable) await emitEndpointDisabled(tx, disabled);

    // Lock the events first so the aggregate below reads the latest dispatch states, including those
    // another worker committed while we waited for the lock (READ COMMITTED: a new snapshot per statement).
    send(tx`SELECT id FROM webhook_events WHERE id = ANY(${eventIds}::uuid[]) ORDER BY id FOR NO KEY UPDATE`);
    send(statusRefresh(tx, eventIds));
    await Promise.all(pipeline);
    return disabled;
  }) as Promise<DisabledEndpoint[]>;
}

/**
 * Postgres text cannot hold U+0000, and the receiver chooses what its response body holds: one NUL
 * byte would fail the whole batch, and again on every retry of it, so a single endpoint could stop a
 * worker recording anyone's outcomes. The attempt log keeps such a character as U+FFFD instead. (A
 * sealed body is base64 and keeps the receiver's bytes exactly; this covers unsealed text.)
 */
export function storableOutcome(o: OutcomeRecord): OutcomeRecord {
  const hasNul = (s: string | null) => s !== null && s.includes('\u0000');
  if (!hasNul(o.responseBody) && !hasNul(o.error)) return o;
  const clean = (s: string | null) => (s === null ? null : s.replaceAll('\u0000', '\uFFFD'));
  return { ...o, responseBody: clean(o.responseBody), error: clean(o.error) };
}

/**
 * For the rest of the transaction, plan with index scans wherever an index applies. The outcome
 * statements touch a handful of rows by key, but postgres.js prepares them, and Postgres caches a
 * generic plan after five runs: on a ledger that was nearly empty when a connection planned them (a
 * fresh install, before autovacuum's first ANALYZE) that plan is a sequential scan, which then costs
 * O(table) per batch as the tables grow. Measured on a fresh schema at 250 events/s: 600+ buffers and
 * 0.85 ms per status refresh, growing; 10 buffers and 0.06 ms with this. Must be in effect whenever
 * these statements are planned, so every transaction that runs them starts with it.
 */
function preferIndexScans(tx: Sql | postgres.TransactionSql) {
  return tx`SET LOCAL enable_seqscan = off`;
}

/** Recomputes the seed's event status, retry_count and error_message from the event's dispatches. */
export async function refreshEventStatuses(sql: Sql, eventIds: string[]): Promise<void> {
  await Promise.all([preferIndexScans(sql).execute(), statusRefresh(sql, eventIds)]);
}

/** The refresh statement alone, for a transaction that already prefers index scans (recordOutcomes). */
function statusRefresh(sql: Sql | postgres.TransactionSql, eventIds: string[]) {
  return sql`
    UPDATE webhook_events e
       SET status = s.status, retry_count = s.retry_count, error_message = s.error_message,
           processed_at = CASE WHEN s.status IN ('completed', 'failed') THEN coalesce(e.processed_at, now()) ELSE NULL END,
           updated_at = now()
      FROM (
        SELECT webhook_event_id AS id,
               CASE WHEN bool_or(status IN ('pending', 'in_flight', 'paused')) THEN 'processing'
                    WHEN bool_or(status = 'failed') THEN 'failed'
                    ELSE 'completed' END AS status,
               greatest(max(attempts) - 1, 0) AS retry_count,
               (array_agg(last_error ORDER BY updated_at DESC) FILTER (WHERE last_error IS NOT NULL AND status <> 'succeeded'))[1] AS error_message
        FROM webhook_dispatches WHERE webhook_event_id = ANY(${eventIds}::uuid[])
        GROUP BY webhook_event_id
      ) s
     WHERE e.id = s.id`;
}

type EndpointCounter = {
  endpointId: string;
  success: number;
  failure: number;
  /** Circuit breaker: whether the batch had a success, and what failed after the last one. */
  sawSuccess: boolean;
  exhaustedSinceSuccess: number;
  failingSinceSuccess: boolean;
  /** Attempts that failed after the batch's last success (all of them when it had none). */
  failedSinceSuccess: number;
  /** The batch's last attempt for this endpoint (n8n workflow state). */
  lastStatusCode: number | null;
  lastError: string | null;
};

function endpointCounters(outcomes: OutcomeRecord[]): EndpointCounter[] {
  const byEndpoint = new Map<string, EndpointCounter>();
  for (const o of outcomes) {
    const c = byEndpoint.get(o.endpointId) ?? {
      endpointId: o.endpointId,
      success: 0,
      failure: 0,
      sawSuccess: false,
      exhaustedSinceSuccess: 0,
      failingSinceSuccess: false,
      failedSinceSuccess: 0,
      lastStatusCode: null,
      lastError: null,
    };
    if (o.success) {
      c.success++;
      c.sawSuccess = true;
      c.exhaustedSinceSuccess = 0;
      c.failingSinceSuccess = false;
      c.failedSinceSuccess = 0;
    } else {
      c.failure++;
      c.failingSinceSuccess = true;
      c.failedSinceSuccess++;
      if (o.nextStatus === 'failed') c.exhaustedSinceSuccess++;
    }
    c.lastStatusCode = o.statusCode;
    c.lastError = o.error;
    byEndpoint.set(o.endpointId, c);
  }
  return [...byEndpoint.values()].sort((a, b) => (a.endpointId < b.endpointId ? -1 : 1));
}
