/**
 * Prometheus metrics of one Carteiro process (docs/observability.md). Each process has its own
 * registry: the worker's hooks count what this process delivered and recorded, the API's what it
 * accepted and refused. Queue and endpoint gauges are read from the ledger at scrape time, the same
 * in every process, through a short cache so that scrapes cannot add up to load on Postgres.
 *
 * The hot path only increments counters and observes histograms through label children bound once
 * here; no endpoint or organization id is ever a label of a per-delivery metric. Endpoint ids appear
 * only on the scrape-time gauges of the N endpoints failing most (CARTEIRO_METRICS_FAILING_ENDPOINTS).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from 'pino';
import type { Sql } from '../ledger/connection.ts';
import type { ClaimedDispatch } from '../ledger/claims.ts';
import type { OutcomeRecord } from '../ledger/outcomes.ts';
import type { InsertResult } from '../ledger/events.ts';
import { readEndpointHealth, readQueueGauges, type EndpointHealth, type QueueGauges } from '../ledger/stats.ts';
import { countLiveWorkers } from '../ledger/workers.ts';
import type { DispatcherMetrics, DispatcherStats } from '../worker/dispatcher.ts';

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export type DestinationKind = ClaimedDispatch['kind'];
export const DESTINATION_KINDS: readonly DestinationKind[] = ['endpoint', 'n8n'];
/**
 * What became of a claimed dispatch. `deferred` is work handed back unattempted (the endpoint's rate
 * limit, or no free transformation thread) and `cancelled` work its transformation cancelled; every
 * other outcome is an attempt.
 */
export const OUTCOMES = ['delivered', 'retrying', 'failed', 'gone', 'paused', 'deferred', 'cancelled'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** A worker's heartbeat within this is a live worker (the heartbeat runs every 5 s). */
const LIVE_WORKER_WITHIN_MS = 15_000;

export type Metrics = DispatcherMetrics & {
  readonly registry: Registry;
  /** Events committed by ingest (duplicates are stored nothing new). */
  accepted(results: readonly InsertResult[]): void;
  /** An ingest request refused, by its error code. */
  refused(code: string): void;
  /** One group commit of `events` events took `ms`. */
  committed(events: number, ms: number): void;
  /** The worker in this process, for its in-flight, parked and unrecorded gauges. */
  watchWorker(stats: () => DispatcherStats): void;
  /** The text exposition of this process's metrics and Node's process metrics. */
  render(): Promise<string>;
};

export type MetricsOptions = {
  sql: Sql;
  role: string;
  log: Logger;
  /** Endpoints named by id in the failing-endpoint gauges (0 = none). */
  failingEndpoints: number;
  /** Ledger reads for gauges are reused for this long. */
  ledgerCacheMs: number;
};

const SECONDS_FAST = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const SECONDS_ATTEMPT = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
/** Accepted to delivered spans retries: up to hours. */
const SECONDS_LATENCY = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 14_400, 86_400];
const SIZES = [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000, 5000];

/**
 * Node's process metrics (CPU, memory, event loop lag, GC, handles) in a registry of their own, made
 * once per process: several Carteiro instances in one process (tests) share them.
 */
let processRegistry: Registry | null = null;
function nodeProcessRegistry(): Registry {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}

export function outcomeOf(record: OutcomeRecord): Outcome {
  if (record.nextStatus === 'cancelled') return 'cancelled';
  if (!record.attempted) return 'deferred';
  if (record.success) return 'delivered';
  if (record.disableEndpointReason) return 'gone';
  if (record.nextStatus === 'pending') return 'retrying';
  if (record.nextStatus === 'paused') return 'paused';
  return 'failed';
}

/** Runs `read` at most once per `ttlMs` (and once at a time): concurrent and frequent scrapes share a read. */
function cached<T>(ttlMs: number, read: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | null = null;
  let at = -Infinity;
  return () => {
    const now = Date.now();
    if (value && now - at < ttlMs) return value;
    at = now;
    const current = read();
    value = current;
    // A failed read is not kept: the next scrape tries again.
    current.catch(() => {
      if (value === current) value = null;
    });
    return current;
  };
}

export function createMetrics(opts: MetricsOptions): Metrics {
  const registry = new Registry();
  const registers = [registry];

  new Gauge({ name: 'carteiro_info', help: 'Always 1; the process role (api, worker or all) as a label.', labelNames: ['role'], registers }).set(
    { role: opts.role },
    1,
  );

  // --- Deliveries (worker)
  const deliveries = new Counter({
    name: 'carteiro_deliveries_total',
    help: "Outcomes recorded in the ledger, by outcome (delivered, retrying, failed, gone, paused; deferred = handed back unattempted by a rate limit; cancelled = the endpoint's transformation cancelled it, nothing sent) and destination kind.",
    labelNames: ['outcome', 'destination_kind'],
    registers,
  });
  const attemptDuration = new Histogram({
    name: 'carteiro_delivery_attempt_duration_seconds',
    help: 'Duration of one delivery attempt (connect, send, response), by destination kind and result.',
    labelNames: ['destination_kind', 'result'],
    buckets: SECONDS_ATTEMPT,
    registers,
  });
  const latency = new Histogram({
    name: 'carteiro_delivery_latency_seconds',
    help: 'From the event accepted (its commit) to its successful delivery to one destination, retries included.',
    labelNames: ['destination_kind'],
    buckets: SECONDS_LATENCY,
    registers,
  });
  // Label children bound once: the hot path looks them up, it builds no label objects.
  const outcomeChildren = new Map<string, Counter.Internal>();
  const durationChildren = new Map<string, Histogram.Internal<string>>();
  const latencyChildren = new Map<string, Histogram.Internal<string>>();
  for (const kind of DESTINATION_KINDS) {
    for (const outcome of OUTCOMES) outcomeChildren.set(`${outcome}/${kind}`, deliveries.labels({ outcome, destination_kind: kind }));
    for (const result of ['success', 'failure']) durationChildren.set(`${result}/${kind}`, attemptDuration.labels({ destination_kind: kind, result }));
    latencyChildren.set(kind, latency.labels({ destination_kind: kind }));
  }

  // --- Worker loop
  const claimSize = new Histogram({
    name: 'carteiro_worker_claim_batch_size',
    help: 'Dispatches returned per claim statement (_count: claims made; _sum: dispatches claimed).',
    buckets: [0, ...SIZES],
    registers,
  });
  const leaseExpiries = new Counter({
    name: 'carteiro_worker_lease_expiries_total',
    help: 'Dispatches handed back to the queue because the lease of the worker holding them ran out (a worker died or stalled).',
    registers,
  });
  const handBacks = new Counter({
    name: 'carteiro_worker_handed_back_total',
    help: 'Claimed dispatches handed back unsent because two claims overlapped and their endpoint (or the worker) had no room left; each is claimed again.',
    registers,
  });
  const recordDuration = new Histogram({
    name: 'carteiro_worker_record_duration_seconds',
    help: 'Commit latency of one batch of outcomes (attempt rows, dispatch and endpoint state) in the ledger.',
    buckets: SECONDS_FAST,
    registers,
  });
  const recordSize = new Histogram({ name: 'carteiro_worker_record_batch_size', help: 'Outcomes per recorded batch.', buckets: SIZES, registers });
  let workerStats: (() => DispatcherStats) | null = null;
  const workerGauge = (name: string, help: string, pick: (s: DispatcherStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        if (workerStats) this.set(pick(workerStats()));
      },
    });
  workerGauge('carteiro_worker_in_flight', 'Deliveries this process has under way (parked ones included).', (s) => s.inFlight);
  workerGauge('carteiro_worker_parked', 'Deliveries in flight past CARTEIRO_WORKER_PARK_AFTER_MS (slow or silent receivers).', (s) => s.parked);
  workerGauge('carteiro_worker_unrecorded', 'Outcomes delivered and not yet committed to the ledger.', (s) => s.buffered);
  workerGauge(
    'carteiro_worker_contended_cap',
    'The limit contention control puts on the busiest endpoints while quiet claims are slow (0: none).',
    (s) => s.contendedCap ?? 0,
  );

  // --- Ingest (API)
  const ingested = new Counter({
    name: 'carteiro_ingest_events_total',
    help: 'Events committed by the API, by result (stored, or duplicate of an earlier Idempotency-Key).',
    labelNames: ['result'],
    registers,
  });
  const stored = ingested.labels({ result: 'stored' });
  const duplicate = ingested.labels({ result: 'duplicate' });
  const refusals = new Counter({
    name: 'carteiro_ingest_refusals_total',
    help: 'Ingest requests refused, by error code (CARTEIRO_INVALID_INPUT, CARTEIRO_UNAUTHORIZED, CARTEIRO_RATE_LIMITED, CARTEIRO_LEDGER_UNAVAILABLE…).',
    labelNames: ['reason'],
    registers,
  });
  const commitDuration = new Histogram({
    name: 'carteiro_ingest_commit_duration_seconds',
    help: 'Latency of one group commit of incoming events.',
    buckets: SECONDS_FAST,
    registers,
  });
  const commitSize = new Histogram({ name: 'carteiro_ingest_commit_events', help: 'Events per group commit.', buckets: SIZES, registers });

  // --- Ledger state, read at scrape time
  const ledgerReadFailures = new Counter({
    name: 'carteiro_metrics_ledger_read_failures_total',
    help: 'Scrape-time reads of queue and endpoint state that failed (their gauges then keep their last values).',
    registers,
  });
  type LedgerState = { queue: QueueGauges; endpoints: EndpointHealth; liveWorkers: number };
  const readLedger = cached<LedgerState>(opts.ledgerCacheMs, async () => {
    const [queue, endpoints, liveWorkers] = await Promise.all([
      readQueueGauges(opts.sql),
      readEndpointHealth(opts.sql, opts.failingEndpoints),
      countLiveWorkers(opts.sql, LIVE_WORKER_WITHIN_MS),
    ]);
    return { queue, endpoints, liveWorkers };
  });
  /** The ledger's state for a gauge's collect; undefined (and counted) when the read failed. */
  let lastFailure: Promise<LedgerState> | null = null;
  const ledgerState = async (): Promise<LedgerState | undefined> => {
    const pending = readLedger();
    try {
      return await pending;
    } catch (err) {
      // One failed read, however many gauges asked for it.
      if (lastFailure !== pending) {
        lastFailure = pending;
        ledgerReadFailures.inc();
        opts.log.warn({ err: (err as Error).message }, 'metrics: reading queue state from the ledger failed');
      }
      return undefined;
    }
  };
  const ledgerGauge = (name: string, help: string, pick: (s: LedgerState) => number) =>
    new Gauge({
      name,
      help,
      registers,
      async collect() {
        const s = await ledgerState();
        if (s) this.set(pick(s));
      },
    });
  new Gauge({
    name: 'carteiro_queue_due',
    help: 'Dispatches due now and waiting for a worker, by priority (ledger-wide).',
    labelNames: ['priority'],
    registers,
    async collect() {
      const s = await ledgerState();
      if (!s) return;
      this.set({ priority: 'high' }, s.queue.high_priority);
      this.set({ priority: 'normal' }, s.queue.normal_priority);
    },
  });
  ledgerGauge('carteiro_queue_retrying', 'Dispatches waiting for a later retry (ledger-wide).', (s) => s.queue.retry);
  ledgerGauge('carteiro_queue_paused', 'Dispatches held for disabled endpoints (ledger-wide).', (s) => s.queue.paused);
  ledgerGauge('carteiro_queue_processing', 'Dispatches leased by a worker, in flight (ledger-wide).', (s) => s.queue.in_flight);
  ledgerGauge('carteiro_queue_oldest_due_seconds', 'How long the longest-waiting due dispatch has been due (0: none due).', (s) => s.queue.oldest_due_seconds);
  ledgerGauge('carteiro_workers_live', 'Workers whose heartbeat the ledger saw in the last 15 s (any process).', (s) => s.liveWorkers);
  ledgerGauge('carteiro_endpoints_failing', 'Endpoints whose latest attempt failed (failed_attempts_in_row > 0).', (s) => s.endpoints.failing);
  ledgerGauge('carteiro_endpoints_disabled', 'Endpoints disabled (by hand, 410 Gone or the circuit breaker).', (s) => s.endpoints.disabled);
  const endpointLabels = ['endpoint_id', 'organization_id', 'destination_kind', 'active'];
  const failingGauge = (name: string, help: string, pick: (e: EndpointHealth['top'][number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: endpointLabels,
      registers,
      async collect() {
        const s = await ledgerState();
        if (!s) return;
        // Only the current top N: an endpoint that recovered or dropped out of it leaves the scrape.
        this.reset();
        for (const e of s.endpoints.top) {
          this.set({ endpoint_id: e.id, organization_id: e.organization_id, destination_kind: e.kind, active: String(e.is_active) }, pick(e));
        }
      },
    });
  failingGauge(
    'carteiro_endpoint_failed_attempts_in_row',
    'Failed attempts in a row, for the endpoints failing most (top CARTEIRO_METRICS_FAILING_ENDPOINTS).',
    (e) => e.failed_attempts_in_row,
  );
  failingGauge(
    'carteiro_endpoint_failing_seconds',
    'Since when the endpoint has failed without a success in between, for the same endpoints.',
    (e) => e.failing_seconds,
  );

  return {
    registry,
    claimed: (count) => claimSize.observe(count),
    leasesExpired: (count) => {
      if (count > 0) leaseExpiries.inc(count);
    },
    handedBack: (count) => handBacks.inc(count),
    attempted(d, record) {
      if (!record.attempted) return;
      durationChildren.get(`${record.success ? 'success' : 'failure'}/${d.kind}`)?.observe(record.durationMs / 1000);
      if (record.success) latencyChildren.get(d.kind)?.observe(Math.max(0, Date.now() - d.event_created_at.getTime()) / 1000);
    },
    recorded(batch, ms) {
      recordDuration.observe(ms / 1000);
      recordSize.observe(batch.length);
      for (const record of batch) outcomeChildren.get(`${outcomeOf(record)}/${record.destinationKind}`)?.inc();
    },
    accepted(results) {
      let dup = 0;
      for (const r of results) if (r.duplicate) dup++;
      if (results.length > dup) stored.inc(results.length - dup);
      if (dup) duplicate.inc(dup);
    },
    refused: (code) => refusals.inc({ reason: code }),
    committed(events, ms) {
      commitDuration.observe(ms / 1000);
      commitSize.observe(events);
    },
    watchWorker(stats) {
      workerStats = stats;
    },
    async render() {
      return (await registry.metrics()) + (await nodeProcessRegistry().metrics());
    },
  };
}
