/**
 * The delivery worker. It claims due dispatches from the ledger in batches, POSTs each one signed,
 * and records outcomes in batches. Three things wake it: a NOTIFY on commit of new work, a timer at
 * the earliest retry it scheduled, and a slow poll that also frees the leases of dead workers.
 *
 *   claim (one statement) ──► send (up to `concurrency` at once) ──► buffer ──► record (one transaction)
 *
 * A crash anywhere loses nothing: claimed work whose outcome was never recorded is claimed again when
 * its lease runs out, and the receiver sees the same webhook-id twice at most.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { Ledger } from '../ledger/connection.ts';
import { claimDueDispatches, claimProbeDispatches, nextBatchDueAt, releaseExpiredLeases, type ClaimBounds, type ClaimedDispatch } from '../ledger/claims.ts';
import { recordOutcomes, type OutcomeRecord } from '../ledger/outcomes.ts';
import { attemptRecord, cancelledRecord, unattemptedRecord } from './outcome-records.ts';
import { createOutcomeBuffer } from './outcome-buffer.ts';
import { createWakeTimer } from './wake-timer.ts';
import { createSlots, type Slot } from './slots.ts';
import { createRequestMaker, type Outgoing } from './request-maker.ts';
import { createEndpointLimits, loadSignal } from './endpoint-limits.ts';
import { groupBatches, memberOutcomes, type Delivery } from './batches.ts';
import type { HttpSender } from '../delivery/http-sender.ts';
import type { AttemptResult } from '../delivery/outcome.ts';
import type { Transformer } from '../delivery/transformation/transformer.ts';
import type { SecretResolver } from './signing-secrets.ts';
import type { StaticHeaderResolver } from './static-headers.ts';
import type { EgressGate } from './egress-gate.ts';
import { hasDueWork, removeWorker, touchWorker } from '../ledger/workers.ts';
import { createLedgerDeadline } from './ledger-deadline.ts';
import { createProgressWatch } from './progress-watch.ts';

/** What the worker reports as it goes (observability/metrics.ts implements it). */
export type DispatcherMetrics = {
  claimed(count: number): void;
  leasesExpired(count: number): void;
  /** Claimed dispatches handed back unsent after overlapping claims (admit): each is claimed again. */
  handedBack(count: number): void;
  attempted(d: ClaimedDispatch, record: OutcomeRecord): void;
  recorded(batch: readonly OutcomeRecord[], ms: number): void;
};

/**
 * Spans for delivery attempts (observability/tracing.ts implements it). Absent when tracing is off:
 * then a delivery pays only the check that it is absent.
 */
export type DeliveryTracing = {
  /** Opens the span of one attempt: a child of the trace stored with the event, or a new trace. */
  startAttempt(d: ClaimedDispatch): AttemptTrace;
};

export type AttemptTrace = {
  /** The attempt span's W3C traceparent, sent to the receiver (outside the signed content: the body). */
  readonly traceparent: string;
  /** The attempt's result, as it will be recorded. */
  ended(record: OutcomeRecord, result: AttemptResult): void;
  /** The delivery failed before it had a result (it is recorded as a failed attempt). */
  crashed(err: unknown): void;
};

export type DispatcherDeps = {
  config: Config;
  ledger: Ledger;
  sender: HttpSender;
  secrets: SecretResolver;
  /** Opens endpoints' static headers (sealed in the ledger), sent with each of their deliveries. */
  staticHeaders: StaticHeaderResolver;
  gate: EgressGate;
  log: Logger;
  /** Told about every recorded batch (live updates for the dashboard). */
  onRecorded?: (outcomes: OutcomeRecord[]) => void;
  /**
   * The `data` JSON a dispatch sends (default: the stored text as is). Data protection opens sealed
   * personal fields and applies the endpoint's allow-list here, before signing.
   */
  prepareData?: (d: ClaimedDispatch) => string;
  /**
   * Runs endpoints' transformations (docs/transformations.md) before signing. Without it, a dispatch
   * whose endpoint has one is a failed attempt: it is never sent untransformed.
   */
  transformer?: Transformer;
  /** Seals a receiver's response body for the attempt log (data protection); default: stored as read. */
  sealResponseBody?: (body: string) => string;
  /** Prometheus metrics (observability/metrics.ts): claims, attempts, recorded outcomes, lease expiries. */
  metrics?: DispatcherMetrics;
  /** OpenTelemetry spans for attempts, and the traceparent header receivers get. */
  tracing?: DeliveryTracing;
  /** The worker stayed stalled after replacing its ledger pool: the process should exit and be restarted. */
  onStalled?: (reason: string) => void;
};

/**
 * `buffered`: outcomes delivered and not yet recorded (waiting, or in the write under way).
 * `parked`: requests in flight past CARTEIRO_WORKER_PARK_AFTER_MS (slow or silent receivers), which no
 * longer count against the worker's concurrency.
 */
export type DispatcherStats = {
  workerId: string;
  inFlight: number;
  parked: number;
  buffered: number;
  delivered: number;
  failedAttempts: number;
  /** The limit contention control puts on the busiest endpoints now; null when none (endpoint-limits.ts). */
  contendedCap: number | null;
};

export type Dispatcher = {
  readonly workerId: string;
  start(): Promise<void>;
  /**
   * Stops claiming, lets in-flight attempts finish for up to graceMs, then cuts the rest (each a failed
   * attempt, "cancelled at shutdown", retried later) and records every outcome before resolving.
   */
  stop(graceMs?: number): Promise<void>;
  wake(): void;
  stats(): DispatcherStats;
};

const LEASE_SWEEP_EVERY_POLLS = 5;
const HEARTBEAT_INTERVAL_MS = 5_000;
/** At most one "falling behind" warning this often: a ledger that stays behind would repeat it per batch. */
const HELD_BACK_LOG_INTERVAL_MS = 10_000;
/** How long stop() waits for cancelled requests to end (they end at once; this only bounds a surprise). */
const CANCEL_SETTLE_MS = 5_000;
/** Why a FIFO endpoint that holds on an exhausted head was disabled (the head's own error follows). */
/** An announcement during a loop's claim starts the quiet lane once that claim has taken this long. */
const QUIET_LANE_AFTER_MS = 5;
/** A claim for quiet endpoints serves those with nothing in flight: a few rows each, a bounded claim. */
const QUIET_CLAIM_MAX = 64;
/** A delivery whose transformation found no free sandbox thread in time is handed back for this long. */
const TRANSFORMATION_BUSY_RETRY_MS = 1_000;
/** What a dispatch that its endpoint's transformation cancelled says, as its last_error. */

export function createDispatcher(deps: DispatcherDeps): Dispatcher {
  const { config, ledger, sender, gate, log } = deps;
  const { batchSize, concurrency, pollIntervalMs, leaseMs, flushIntervalMs, maxUnrecorded, parkAfterMs, maxParked } = config.worker;
  const isolation = config.isolation;
  const bounds: ClaimBounds = {
    defaultMaxInFlight: isolation.maxInFlight,
    startInFlight: isolation.startInFlight,
    slowLaneAfterFailures: isolation.slowLaneAfterFailures,
  };
  /** The quiet lane takes one delivery per endpoint it has not sent to yet, as for idle ones (endpoint-limits.ts). */
  const quietBounds: ClaimBounds = { ...bounds, startInFlight: 1 };
  const circuitBreaker = { ...config.circuitBreaker, probeCooloffMs: isolation.probeCooloffMs };
  /** Claims past maxUnrecorded, for quiet endpoints only (see claimLoop). */
  const quietReserve = Math.max(16, Math.floor(maxUnrecorded / 20));
  const limits = createEndpointLimits(
    isolation.startInFlight,
    { afterFailures: isolation.slowLaneAfterFailures, intervalMs: isolation.slowLaneIntervalMs, maxIntervalMs: isolation.slowLaneMaxIntervalMs },
    now,
    { targetMs: isolation.quietClaimTargetMs, floor: isolation.contendedFloor },
  );
  const policy = config.delivery.retry;
  const requests = createRequestMaker({
    sender,
    secrets: deps.secrets,
    staticHeaders: deps.staticHeaders,
    userAgent: config.delivery.userAgent,
    prepareData: deps.prepareData,
    transformer: deps.transformer,
  });
  const workerId = `w-${randomUUID().slice(0, 8)}-${process.pid}`;

  let running = false;
  let claiming = false;
  let wantClaim = false;
  /** The quiet lane (claimForQuietEndpoints) is claiming, and was asked to claim again when done. */
  let quietClaiming = false;
  let wantQuietClaim = false;
  /** When the loop's claim under way was sent (null: none under way), and the quiet lane's pending start. */
  let loopClaimSince: number | null = null;
  let firstUnclaimedAnnouncement: number | null = null;
  let quietTimer: NodeJS.Timeout | null = null;
  /**
   * Claims under way, in either lane. A claim that overlapped one of the other lane may have taken
   * work for an endpoint that the other took too, each counting the room it saw: its rows are
   * checked against the endpoint's room before they start (admit).
   */
  const claimsUnderWay = new Set<{ overlapped: boolean }>();
  let lastClaimFoundWork = false;
  /** Commits announced (NOTIFY), and how many had been when the last claim began. */
  let newWorkAnnounced = 0;
  let claimSeenNewWork = 0;
  /** Deliveries under way: active (counting against `concurrency`) or parked (slots.ts). */
  const slots = createSlots();
  /** Outcomes the ledger has yet to record: buffered, being written, or still to come from active deliveries. */
  const unrecordedCount = () => outcomes.size() + slots.active();
  /** Set when claims stopped because too much was unrecorded: the next recorded batch resumes them. */
  let claimsHeldBack = false;
  let heldBackLoggedAt = -Infinity;
  let pollTimer: NodeJS.Timeout | null = null;
  let heartbeatTimer: NodeJS.Timeout | null = null;
  let polls = 0;
  /**
   * Batching endpoints exist (learnt at start and by the poll): then claims offer batches, and each
   * claim run ends by asking when the next batch fills. Without, claims skip batching's part of the
   * statement (measured: median accepted → delivered at 1,000/s 15 → 29 ms with it on every claim).
   */
  let batching = false;
  let watchingBatches = false;
  let delivered = 0;
  let failedAttempts = 0;
  // Lifecycle: every ledger call has a deadline, and progress is watched (see the two modules).
  const withinDeadline = createLedgerDeadline(ledger, config.worker.ledgerDeadlineMs, log);
  const progress = createProgressWatch({
    stallMs: config.worker.stallMs,
    hasDueWork: () => withinDeadline(hasDueWork(ledger.sql, config.worker.stallMs), 'due-work check'),
    reconnect: (reason) => ledger.reconnect(reason),
    onGiveUp: (reason) => deps.onStalled?.(reason),
    log,
  });
  /**
   * Outcomes on their way to the ledger. One whose commit makes work claimable that nothing else
   * announces (a FIFO endpoint's next head, a delivery handed back: admit) is written at once and its
   * commit wakes the claim loop. (A hand-back waited for the flush interval and a timer guessing when it
   * had committed; on a busy ledger the claim came first, found nothing, and the work waited for the
   * poll: 250 ms.)
   */
  const outcomes = createOutcomeBuffer({
    batchSize,
    flushIntervalMs,
    log,
    write: (batch) =>
      withinDeadline(recordOutcomes(ledger.sql, workerId, batch, { circuitBreaker, failingAfterFailures: isolation.failingAfterFailures }), 'record'),
    recorded(batch, disabled, ms, wake) {
      progress.progressed();
      for (const o of batch) if (!o.batchFollower) limits.recorded(o.endpointId);
      deps.metrics?.recorded(batch, ms);
      for (const e of disabled) log.warn({ endpoint: e.id, organization: e.organization_id, reason: e.reason }, 'endpoint disabled');
      deps.onRecorded?.(batch);
      if (claimsHeldBack) {
        claimsHeldBack = false;
        void claimLoop();
      } else if (wake) {
        // Work became claimable with this commit that nothing else announces.
        void claimLoop();
      }
    },
  });
  const retryWake = createWakeTimer(() => void claimLoop(), flushIntervalMs + 5);

  async function claimLoop(): Promise<void> {
    if (!running) return;
    if (claiming) {
      wantClaim = true;
      return;
    }
    claiming = true;
    // Whether any claim of this run found work (the last one often finds none: it is what ends the run).
    let foundWork = false;
    // Whether the run stopped for want of slots rather than of work: the work is still there, so the
    // deliveries that end must claim again. (Counted as no work, a run that only found the slots full
    // left claiming to the poll: with five busy endpoints a drain ran at one batch per poll, 2,000/s.)
    let stoppedForRoom = false;
    try {
      do {
        wantClaim = false;
        while (running) {
          // Backpressure from the ledger: every claimed delivery becomes an outcome to record. When
          // recording falls behind (a slow disk, a lock, a stalled server), stop claiming instead of
          // piling up outcomes in memory until their leases run out and the work is sent again.
          const unrecorded = unrecordedCount();
          let allowance = maxUnrecorded - unrecorded;
          // Held back, a small reserve still serves endpoints with nothing in flight or unrecorded:
          // a backlog draining as fast as the ledger records must not make a quiet tenant wait for
          // the next record batch (measured: seconds per event beside a 100,000-event drain).
          let quietOnly = false;
          if (allowance <= 0) {
            if (!claimsHeldBack && now() - heldBackLoggedAt >= HELD_BACK_LOG_INTERVAL_MS) {
              heldBackLoggedAt = now();
              log.warn({ unrecorded, maxUnrecorded }, 'recording outcomes is falling behind: claiming paused until it catches up');
            }
            claimsHeldBack = true;
            allowance = maxUnrecorded + quietReserve - unrecorded;
            if (allowance <= 0) break;
            quietOnly = true;
          }
          // Slots held by requests that have waited parkAfterMs are given back before counting room:
          // checked here too, not only on the poll, so a burst to silent receivers frees its slots
          // as soon as they are due, not up to a poll later.
          if (slots.active() >= concurrency) parkSlowDeliveries();
          const room = Math.min(concurrency - slots.active(), allowance);
          // Stopped for want of slots rather than of work: new work announced since the last claim
          // began would wait for slots to free, so quiet endpoints' share of it is claimed now.
          if (room <= 0) {
            stoppedForRoom = true;
            if (newWorkAnnounced > claimSeenNewWork) void quietLane();
            break;
          }
          const want = Math.min(room, batchSize);
          // Claiming a handful at a time wastes round-trips; wait until a useful batch fits.
          if (!quietOnly && want < Math.min(batchSize, Math.ceil(concurrency / 4)) && slots.active() > 0) {
            stoppedForRoom = true;
            if (newWorkAnnounced > claimSeenNewWork) void quietLane();
            break;
          }
          // Short of room for parked requests: endpoints that have some get nothing more until they
          // answer or time out; endpoints that answer promptly go on.
          const holdParked = slots.parked() >= maxParked;
          if (holdParked && now() - heldBackLoggedAt >= HELD_BACK_LOG_INTERVAL_MS) {
            heldBackLoggedAt = now();
            log.warn({ parked: slots.parked(), maxParked }, 'many requests wait on slow receivers: those endpoints get no more work until they answer');
          }
          claimSeenNewWork = newWorkAnnounced;
          const announced = takeAnnouncement();
          const claim = claimBegins();
          const view = limits.view({ holdParked, holdBusy: quietOnly });
          loopClaimSince = now();
          const batch = await withinDeadline(claimDueDispatches(ledger.sql, workerId, want, leaseMs, bounds, view, { batching }), 'claim').finally(() => {
            claimsUnderWay.delete(claim);
            loopClaimSince = null;
          });
          // An empty claim from the reserve is no progress: the worker is still held back by recording.
          if (!quietOnly || batch.length > 0) progress.progressed();
          deps.metrics?.claimed(batch.length);
          const full = batch.length === want;
          // Work was there: a delivery that ends frees room for its endpoint, so claim again then.
          // (A claim can come back short because endpoints are at their caps, not only when nothing
          // is due: waiting for the next poll would throttle a capped endpoint to its cap per poll.)
          // An endpoint that had no room may have due work this claim could not see, so a claim
          // that found nothing while one was at its limit counts too: else a claim made between
          // two deliveries of a capped endpoint (a NOTIFY for someone else's event) left its next
          // deliveries to the poll.
          if (batch.length > 0 || anyAtLimit(view)) foundWork = true;
          measureQuietWait(batch, announced);
          admit(batch, claim.overlapped, 'loop');
          // Each row now belongs to its delivery alone, so empty the claim's array. It stayed reachable
          // through young-generation collections until the next full one (the promises that resolved
          // with it hold it as their value), and with it every row of the batch, payload included,
          // long after the row's delivery ended. Measured over 100,000 deliveries of 4 KB: 500 MB
          // promoted to the old generation without this, 155 MB with it (docs/performance.md).
          batch.length = 0;
          if (!full) break;
        }
      } while (wantClaim && running);
    } catch (err) {
      log.error({ err }, 'claiming due deliveries failed; will retry on the next poll');
    } finally {
      lastClaimFoundWork = foundWork || stoppedForRoom;
      claiming = false;
    }
    if (batching) void watchBatches();
  }

  /**
   * The quiet lane: new work for endpoints with nothing in flight in this worker, claimed beside the
   * claim loop instead of after it. Under a drain the loop claims back to back, each claim tens of
   * milliseconds on a loaded ledger, and a quiet tenant's event announced meanwhile waited for the
   * claim under way and then for its own, in a claim of hundreds of rows: measured beside a
   * 100,000-event drain, 40–160 ms from commit to claim. Likewise when every slot is taken by
   * requests to slow receivers: a quiet event waited for slots to free (measured with 200 endpoints
   * answering in 5 s, each sent every event at 10/s: a healthy endpoint's p99 was 9.4 s).
   *
   * This lane asks only for the work of endpoints with nothing in flight (holdSending), so it reads a
   * handful of rows; it may go past `concurrency` by the quiet reserve, as the reserve for recording
   * lag does. One quiet claim at a time; a claim that ran beside one of the loop's may have taken room
   * the other took too, which admit() settles before anything is sent.
   */
  async function quietLane(): Promise<void> {
    if (!running) return;
    if (quietClaiming) {
      wantQuietClaim = true;
      return;
    }
    quietClaiming = true;
    try {
      do {
        wantQuietClaim = false;
        await claimForQuietEndpoints();
      } while (wantQuietClaim && running);
    } catch (err) {
      log.error({ err }, 'claiming for quiet endpoints failed; will retry on the next announcement or poll');
    } finally {
      quietClaiming = false;
    }
  }

  async function claimForQuietEndpoints(): Promise<void> {
    claimSeenNewWork = newWorkAnnounced;
    const unrecorded = unrecordedCount();
    const room = Math.min(concurrency + quietReserve - slots.active(), maxUnrecorded + quietReserve - unrecorded, QUIET_CLAIM_MAX);
    if (room <= 0) return;
    const claim = claimBegins();
    const announced = takeAnnouncement();
    const batch = await withinDeadline(
      claimDueDispatches(ledger.sql, workerId, room, leaseMs, quietBounds, limits.view({ holdParked: slots.parked() >= maxParked, holdSending: true }), {
        batching,
      }),
      'quiet claim',
    ).finally(() => claimsUnderWay.delete(claim));
    measureQuietWait(batch, announced);
    deps.metrics?.claimed(batch.length);
    if (batch.length > 0) progress.progressed();
    admit(batch, claim.overlapped, 'quiet');
    batch.length = 0;
  }

  /** Whether an endpoint in the claim's view had no room (its limit reached, or held). */
  function anyAtLimit(view: { inFlight: number[]; limits: number[] }): boolean {
    for (let i = 0; i < view.limits.length; i++)
      if ((view.limits[i] as number) <= (view.inFlight[i] as number) && (view.inFlight[i] as number) > 0) return true;
    return false;
  }

  /** When the first announcement no claim has yet begun after was heard (null: none), taken by the claim about to begin. */
  function takeAnnouncement(): number | null {
    const at = firstUnclaimedAnnouncement;
    firstUnclaimedAnnouncement = null;
    return at;
  }

  /**
   * The measure of contention (endpoint-limits.ts): how long the work of endpoints with nothing in
   * flight waited in this worker, from the announcement of its commit to its claim, whichever lane
   * claimed it. A claim made with no announcement (the poll, a retry's timer) says nothing.
   */
  function measureQuietWait(batch: ClaimedDispatch[], announced: number | null): void {
    if (announced === null || batch.length === 0 || isolation.quietClaimTargetMs <= 0) return;
    const quiet = [...new Set(batch.filter((d) => limits.idle(d.webhook_endpoint_id)).map((d) => d.webhook_endpoint_id))];
    if (quiet.length) limits.quietClaimed(now() - announced, quiet);
  }

  /** Registers a claim about to be sent; it and every claim under way are marked as overlapping. */
  function claimBegins(): { overlapped: boolean } {
    const claim = { overlapped: claimsUnderWay.size > 0 };
    for (const other of claimsUnderWay) other.overlapped = true;
    claimsUnderWay.add(claim);
    return claim;
  }

  /**
   * Starts a claim's deliveries. After claims overlapped, a row its endpoint has no room for (the
   * other claim took that room first) is handed back unattempted, due at once: an endpoint never
   * has more in flight here than its limit, whichever lane claimed its work.
   */
  function admit(batch: ClaimedDispatch[], overlapped: boolean, lane: 'loop' | 'quiet'): void {
    const deliveries = groupBatches(batch);
    // The quiet lane serves endpoints with nothing in flight: one the loop started sending to
    // meanwhile is the loop's now (its work goes back, and the loop claims it in turn).
    const busyBefore =
      lane === 'quiet' && overlapped ? new Set(deliveries.filter((d) => !limits.idle(d.webhook_endpoint_id)).map((d) => d.webhook_endpoint_id)) : null;
    for (const d of deliveries) {
      if (!overlapped || d.fifo) startDelivery(d);
      else if (busyBefore?.has(d.webhook_endpoint_id)) handBack(d);
      // The loop counted the worker's free slots before the quiet lane took some of them.
      else if (lane === 'loop' && slots.active() >= concurrency) handBack(d);
      else if (!limits.hasRoom(d.webhook_endpoint_id, d.max_in_flight)) handBack(d);
      else startDelivery(d);
    }
  }

  function handBack(d: Delivery): void {
    limits.handedBack(d.webhook_endpoint_id);
    const members = memberOutcomes(d, unattemptedRecord(d, { durationMs: 0, error: null, nextStatus: 'pending', nextAttemptAt: new Date(now()) }));
    deps.metrics?.handedBack(members.length);
    for (const o of members) outcomes.push(o, true);
  }

  /** A commit announced new work. */
  function onNewWork(): void {
    newWorkAnnounced++;
    firstUnclaimedAnnouncement ??= now();
    // The loop is busy with a claim: the quiet endpoints' share of the new work need not wait for it.
    if (loopClaimSince !== null) quietLaneSoon();
    void claimLoop();
  }

  /**
   * The quiet lane, once the loop's claim under way has taken QUIET_LANE_AFTER_MS. A short claim
   * ends first and the loop claims the new work itself: at 1,000 events/s to one endpoint, a quiet
   * claim for every announcement (most finding nothing: the endpoint is rarely idle) cost the
   * ledger a statement each, and the median delivery 3-5 ms.
   */
  function quietLaneSoon(): void {
    if (quietTimer || loopClaimSince === null) return;
    const wait = loopClaimSince + QUIET_LANE_AFTER_MS - now();
    if (wait <= 0) return void quietLane();
    quietTimer = setTimeout(() => {
      quietTimer = null;
      if (loopClaimSince !== null) quietLaneSoon();
    }, wait);
    quietTimer.unref();
  }

  function startDelivery(d: Delivery): void {
    const slot = slots.open(d.webhook_endpoint_id);
    limits.started(d.webhook_endpoint_id, d.max_in_flight);
    deliver(d, slot)
      .catch((err): OutcomeRecord => {
        // Unexpected (e.g. a secret that no key opens): record it as a failed attempt, never drop it.
        log.error({ err, dispatch: d.id }, 'delivery crashed');
        return outcomeRecord(d, { kind: 'network-error', error: `internal: ${(err as Error).message}`, durationMs: 0 }, now());
      })
      .then((record) => {
        slots.close(slot);
        // Slow by its measured wait, not by whether a poll had parked it yet (polls come every CARTEIRO_POLL_INTERVAL_MS).
        const answeredSlowly = slot.sentAt > 0 && now() - slot.sentAt >= parkAfterMs;
        limits.finished(d.webhook_endpoint_id, slot.signal, d.max_in_flight, slot.parked, answeredSlowly);
        deps.metrics?.attempted(d, record);
        for (const o of memberOutcomes(d, record)) outcomes.push(o, d.fifo && o === record);
        if (lastClaimFoundWork || wantClaim) void claimLoop();
      });
  }

  async function deliver(d: Delivery, slot: Slot): Promise<OutcomeRecord> {
    if (d.rate_limit_per_second) {
      const waitMs = await gate.reserve(d.webhook_endpoint_id, d.rate_limit_per_second);
      if (waitMs > 0) return deferred(d, waitMs);
    }
    let request: Outgoing;
    try {
      request = await requests.outgoing(d);
    } catch (err) {
      // startDelivery records it as a failed attempt; its span ends as one.
      deps.tracing?.startAttempt(d).crashed(err);
      throw err;
    }
    // Neither is an attempt (nothing is sent), so neither gets an attempt span, as a rate limit's deferral.
    if (request.kind === 'busy') return deferred(d, TRANSFORMATION_BUSY_RETRY_MS);
    if (request.kind === 'cancel') return cancelledRecord(d, request.durationMs);
    const trace = deps.tracing?.startAttempt(d);
    try {
      let result: AttemptResult;
      if (request.kind === 'failed') {
        result = { kind: 'transformation-error', error: request.error, durationMs: request.durationMs };
        slot.signal = 'failure';
      } else {
        // From here the delivery waits on its receiver, and may be parked (parkSlowDeliveries).
        slots.sent(slot, now());
        const sent = await requests.send(d, request, trace?.traceparent);
        slot.signal = loadSignal(sent);
        result = sent;
      }
      const record = outcomeRecord(d, result, now());
      trace?.ended(record, result);
      return record;
    } catch (err) {
      // startDelivery records it as a failed attempt; its span ends as one.
      trace?.crashed(err);
      throw err;
    }
  }

  /** An attempt's record, counted, with the claim loop woken when its retry falls due. */
  function outcomeRecord(d: ClaimedDispatch, result: AttemptResult, at: number): OutcomeRecord {
    const record = attemptRecord(d, result, at, policy, deps.sealResponseBody);
    if (record.success) delivered++;
    else failedAttempts++;
    if (record.nextAttemptAt) retryWake.at(record.nextAttemptAt.getTime());
    return record;
  }

  /** Handed back by a rate limit: due again after the wait. */
  function deferred(d: ClaimedDispatch, waitMs: number): OutcomeRecord {
    retryWake.at(now() + waitMs);
    return unattemptedRecord(d, { durationMs: 0, error: null, nextStatus: 'pending', nextAttemptAt: new Date(now() + waitMs) });
  }

  /** Moves deliveries that have waited parkAfterMs for their receiver out of the active slots. */
  function parkSlowDeliveries(): void {
    slots.parkSentBefore(now() - parkAfterMs, (slot) => limits.parked(slot.endpointId));
  }

  /** Half-open probes: one trial delivery to each endpoint the circuit breaker disabled, when due. */
  async function probeDisabledEndpoints(): Promise<void> {
    if (isolation.probeCooloffMs <= 0) return;
    try {
      const probes = await claimProbeDispatches(ledger.sql, workerId, leaseMs, isolation.probeCooloffMs, bounds);
      for (const d of probes) {
        log.info({ endpoint: d.webhook_endpoint_id, dispatch: d.id }, 'probing a disabled endpoint with one delivery');
        startDelivery(d);
      }
    } catch (err) {
      log.error({ err }, 'probing disabled endpoints failed');
    }
  }

  /**
   * Batching (docs/batching.md): a batch still filling is due when its oldest event has waited the
   * endpoint's batch_max_wait_ms, and no commit announces that moment: wake the claim loop then.
   */
  async function watchBatches(): Promise<void> {
    if (watchingBatches || !running) return;
    watchingBatches = true;
    try {
      const next = await withinDeadline(nextBatchDueAt(ledger.sql), 'batch wait check');
      batching = next.batching;
      if (next.at && next.at.getTime() > now()) retryWake.at(next.at.getTime());
    } catch (err) {
      log.warn({ err }, 'checking when batches are due failed');
    } finally {
      watchingBatches = false;
    }
  }

  async function poll(): Promise<void> {
    polls++;
    parkSlowDeliveries();
    if (polls % LEASE_SWEEP_EVERY_POLLS === 0) {
      await watchBatches();
      try {
        const released = await withinDeadline(releaseExpiredLeases(ledger.sql), 'lease sweep');
        deps.metrics?.leasesExpired(released);
        if (released) log.warn({ released }, 'released deliveries whose worker lease expired');
      } catch (err) {
        log.error({ err }, 'lease sweep failed');
      }
      if (running) await probeDisabledEndpoints();
    }
    await claimLoop();
  }

  return {
    workerId,
    async start() {
      running = true;
      await ledger.listen(`${ledger.schema}_dispatch`, onNewWork);
      pollTimer = setInterval(() => void poll(), pollIntervalMs);
      pollTimer.unref();
      // The heartbeat carries progress, and checks it: alive is not the same as delivering.
      const heartbeat = () =>
        withinDeadline(touchWorker(ledger.sql, workerId, progress.msSinceProgress()), 'heartbeat')
          .catch((err) => log.warn({ err }, 'worker heartbeat failed'))
          .then(() => (running ? progress.check() : undefined))
          .catch((err) => log.warn({ err }, 'progress check failed'));
      await heartbeat();
      heartbeatTimer = setInterval(heartbeat, HEARTBEAT_INTERVAL_MS);
      heartbeatTimer.unref();
      log.info({ workerId, concurrency, batchSize }, 'worker started');
      await releaseExpiredLeases(ledger.sql).catch(() => 0);
      await watchBatches();
      void claimLoop();
    },
    async stop(graceMs = config.worker.shutdownGraceMs) {
      running = false;
      if (pollTimer) clearInterval(pollTimer);
      if (heartbeatTimer) clearInterval(heartbeatTimer);
      retryWake.clear();
      if (quietTimer) clearTimeout(quietTimer);
      // A claim already on its way starts its batch when it returns: wait for it, so that batch is
      // waited for below and recorded before the ledger closes (else its outcomes arrive afterwards).
      while (claiming || quietClaiming) await sleep(5);
      if (slots.inFlight() > 0) await slots.idle(graceMs);
      if (slots.inFlight() > 0) {
        // Receivers that hang must not hold shutdown past its deadline, nor lose their attempts: cut
        // the requests; each becomes an outcome (a failed attempt, retried later) recorded below,
        // before the ledger closes. Unrecorded, they would only be sent again when the lease ran out.
        log.warn({ inFlight: slots.inFlight(), graceMs }, 'shutdown: cutting deliveries still in flight');
        sender.cancelAll('cancelled at shutdown');
        await slots.idle(CANCEL_SETTLE_MS);
      }
      outcomes.stopTimer();
      // Recording retries while the ledger is away, but not for ever: a stop must end.
      const recordUntil = now() + Math.max(5_000, config.worker.ledgerDeadlineMs * 2);
      while ((outcomes.writing() || outcomes.waiting()) && now() < recordUntil) await outcomes.flush();
      if (outcomes.waiting())
        log.error(
          { unrecorded: outcomes.waiting() },
          'shutdown: outcomes could not be recorded; their deliveries will be sent again when their leases run out',
        );
      await withinDeadline(removeWorker(ledger.sql, workerId), 'worker removal').catch(() => {});
      log.info({ workerId, unfinished: slots.inFlight() }, 'worker stopped');
    },
    wake: () => void claimLoop(),
    stats: () => {
      const cap = limits.contendedCap();
      return {
        workerId,
        inFlight: slots.inFlight(),
        parked: slots.parked(),
        buffered: outcomes.size(),
        delivered,
        failedAttempts,
        contendedCap: cap === Infinity ? null : cap,
      };
    },
  };
}

const now = () => Date.now();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
