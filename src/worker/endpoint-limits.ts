/**
 * Adaptive concurrency per endpoint, in one worker: how many requests it may have in flight to each
 * endpoint. Additive increase, multiplicative decrease, the way TCP and Netflix's concurrency-limits
 * do it: each prompt success raises the limit by one (up to the endpoint's cap), each sign of overload
 * (a timeout, a refused or reset connection, 429, 502, 503, 504) halves it, down to one. Successes
 * slower than the park threshold (CARTEIRO_WORKER_PARK_AFTER_MS) raise it by one per `limit` of them,
 * one per round trip, as TCP does once past slow start.
 *
 * A fast endpoint climbs from the start value to its cap within a few round trips; a slow one by one
 * per round trip (a receiver answering in 5 s: one more every 5 s); a hanging one is held at the start
 * value until its first timeouts, then at one. The claim statement reads this view
 * (ledger/claims.ts), so a worker never takes more work for an endpoint than the endpoint's room.
 */
import type { WorkerEndpointView } from '../ledger/claims.ts';
import type { SendResult } from '../delivery/http-sender.ts';

/** `bulkUntil`: the endpoint had at least the contended floor in flight lately (see Contention). */
type EndpointState = {
  inFlight: number;
  limit: number;
  /** Slow successes since the limit last grew from them (see finished). */
  slowCredit: number;
  /** Slow-lane holds since the last success: each one twice as long as the one before (slowLaneHoldMs). */
  holds: number;
  parked: number;
  failedInRow: number;
  holdUntil: number;
  unrecorded: number;
  bulkUntil: number;
};

/**
 * What an attempt's result says about the receiver: it answered 2xx (`ok`), it is overloaded or
 * unreachable (`overload`), it answered with another failure (`failure`), or nothing was attempted
 * (`none`: handed back by a rate limit).
 */
export type LoadSignal = 'ok' | 'overload' | 'failure' | 'none';

/** Standard Webhooks asks senders to slow down on 429, 502 and 504; 503 says the same. */
const OVERLOAD_STATUS = new Set([429, 502, 503, 504]);

export function loadSignal(result: SendResult): LoadSignal {
  if (result.kind === 'network-error') return 'overload';
  if (result.statusCode >= 200 && result.statusCode < 300) return 'ok';
  return OVERLOAD_STATUS.has(result.statusCode) ? 'overload' : 'failure';
}

/** Endpoints idle at the start value are forgotten; past this many states, idle ones are dropped. */
const MAX_REMEMBERED = 10_000;

export type EndpointLimits = {
  started(endpointId: string, cap: number): void;
  /** An outcome of the endpoint's was written to the ledger (each started delivery ends in one). */
  recorded(endpointId: string): void;
  /** One of the endpoint's requests has waited long enough to be parked. */
  parked(endpointId: string): void;
  /**
   * One of the endpoint's requests ended. `wasParked`: it had been parked. `answeredSlowly`: its
   * answer took at least the park threshold (measured, whether or not the poll had parked it yet).
   */
  finished(endpointId: string, signal: LoadSignal, cap: number, wasParked: boolean, answeredSlowly?: boolean): void;
  /** Whether one more request to the endpoint fits its limit here (the claim's own rule, see view). */
  hasRoom(endpointId: string, cap: number): boolean;
  /** Whether the worker has nothing in flight to the endpoint. */
  idle(endpointId: string): boolean;
  /** A claimed delivery was handed back unsent (no room after all): its outcome is still to record. */
  handedBack(endpointId: string): void;
  /**
   * A quiet-lane claim brought work for endpoints with nothing in flight and took `latencyMs`
   * (contention control: see Contention).
   */
  quietClaimed(latencyMs: number, endpointIds: readonly string[]): void;
  /** The limit contention control puts on every endpoint now (Infinity: none). */
  contendedCap(): number;
  /**
   * The endpoints the claim must hear about: those with work in flight or a limit off the start
   * value. With `holdParked`, an endpoint with parked requests gets no room (its limit is what it
   * has in flight): when the worker is short of room for parked requests, the slow endpoints wait
   * and the others go on. With `holdBusy`, only endpoints with nothing in flight or unrecorded get room
   * (the reserve for quiet endpoints while recording falls behind: dispatcher.ts). With `holdSending`,
   * only endpoints with nothing in flight get room (the quiet claim beside a busy claim loop).
   */
  view(opts?: { holdParked?: boolean; holdBusy?: boolean; holdSending?: boolean }): WorkerEndpointView;
};

export type SlowLane = {
  /** Failed attempts in a row after which the endpoint gets one request at a time (0 = never). */
  afterFailures: number;
  /** ...and at most one attempt per this interval: a receiver that fails fast is not hammered... */
  intervalMs: number;
  /**
   * ...the interval doubling with each further failure, up to this (default: intervalMs). A receiver
   * refusing connections for an hour then costs the ledger an attempt every 10 s by default, not one a second.
   */
  maxIntervalMs?: number;
};

/** How long the slow lane holds an endpoint the `hold`-th time in a row (1: the first). */
export function slowLaneHoldMs(slowLane: SlowLane, hold: number): number {
  const doublings = Math.min(30, Math.max(0, hold - 1));
  return Math.min(Math.max(slowLane.intervalMs, slowLane.maxIntervalMs ?? 0), slowLane.intervalMs * 2 ** doublings);
}

/**
 * Contention control. A quiet endpoint (nothing in flight, and not `floor` in flight within the last
 * second) is a tenant sending a few events a second. How long its work waits in the worker, from the
 * announcement of its commit to its claim (dispatcher.ts, measureQuietWait), says how saturated the
 * ledger and the CPU are, and a saturated machine makes every quiet tenant wait on every hop (API, ledger,
 * worker, receiver), whatever the claims favour. So while quiet work waits longer than `targetMs`,
 * every other endpoint's limit is capped, the cap halved (at most once per CUT_INTERVAL_MS) from the
 * most any of them has in flight, down to `floor`; each wait within the target raises it by one, and
 * when no quiet work has been claimed for QUIET_MEMORY_MS the cap is lifted. The quiet endpoints are
 * exempt, so only the busy ones (a drain, hundreds of requests held by slow receivers) give up
 * throughput, and only while someone quiet is being served. `targetMs` 0: off.
 */
export type Contention = { targetMs: number; floor: number };

const CUT_INTERVAL_MS = 100;
const QUIET_MEMORY_MS = 1_000;

export function createEndpointLimits(
  startLimit: number,
  slowLane: SlowLane = { afterFailures: 0, intervalMs: 0 },
  clock: () => number = Date.now,
  contention: Contention = { targetMs: 0, floor: 1 },
): EndpointLimits {
  const states = new Map<string, EndpointState>();
  let cap = Infinity;
  let lastQuietAt = -Infinity;
  /**
   * Endpoints the quiet lane served lately: the cap is for the others. A lone endpoint at a steady
   * rate is often idle between its events, so it is both the quiet one and the busiest one; capped,
   * it throttled itself (measured: p99 at 1,000 events/s 130 → 269 ms).
   */
  const quietLately = new Map<string, number>();
  /**
   * A bulk endpoint (the floor in flight within the last second) is never quiet, even when a claim
   * finds it idle for a moment: a drain goes idle between claims, and exempted it capped nothing.
   */
  const bulk = (endpointId: string) => (states.get(endpointId)?.bulkUntil ?? 0) > clock();
  const exempt = (endpointId: string) => !bulk(endpointId) && clock() - (quietLately.get(endpointId) ?? -Infinity) <= QUIET_MEMORY_MS;
  let lastCutAt = -Infinity;
  const contendedCap = () => (cap !== Infinity && clock() - lastQuietAt > QUIET_MEMORY_MS ? (cap = Infinity) : cap);

  function state(endpointId: string): EndpointState {
    let s = states.get(endpointId);
    if (!s) {
      if (states.size >= MAX_REMEMBERED) forgetIdle();
      s = { inFlight: 0, limit: startLimit, slowCredit: 0, holds: 0, parked: 0, failedInRow: 0, holdUntil: 0, unrecorded: 0, bulkUntil: 0 };
      states.set(endpointId, s);
    }
    return s;
  }

  function forgetIdle(): void {
    for (const [id, s] of states) if (s.inFlight === 0 && s.unrecorded === 0 && s.holdUntil <= clock()) states.delete(id);
  }

  const inSlowLane = (s: EndpointState) => slowLane.afterFailures > 0 && s.failedInRow >= slowLane.afterFailures;

  return {
    started(endpointId, cap) {
      const s = state(endpointId);
      s.inFlight++;
      if (contention.targetMs > 0 && s.inFlight >= contention.floor) s.bulkUntil = clock() + QUIET_MEMORY_MS;
      s.unrecorded++;
      if (s.limit > cap) s.limit = cap;
    },
    recorded(endpointId) {
      const s = states.get(endpointId);
      if (!s) return;
      s.unrecorded = Math.max(0, s.unrecorded - 1);
      if (s.inFlight === 0 && s.unrecorded === 0 && s.limit === startLimit && s.failedInRow === 0) states.delete(endpointId);
    },
    parked(endpointId) {
      state(endpointId).parked++;
    },
    finished(endpointId, signal, cap, wasParked, answeredSlowly = wasParked) {
      const s = state(endpointId);
      s.inFlight = Math.max(0, s.inFlight - 1);
      if (wasParked) s.parked = Math.max(0, s.parked - 1);
      // A prompt success is room for one more (TCP's slow start). A slow success (one answered after
      // the park threshold), or any success while others of the endpoint's requests wait parked, grows
      // the limit by one per round of `limit` of them (TCP's congestion avoidance). So a slow receiver
      // is given more sockets over minutes, not hundreds within seconds (measured: 200 endpoints
      // answering in 5 s, each sent every event at 10/s, held 5,500 sockets after 20 s and put a
      // healthy endpoint's median at 71-120 ms), and one that answers half its requests at once and
      // holds the rest does not climb on the prompt half.
      if (signal === 'ok' && !answeredSlowly && s.parked === 0) s.limit = Math.min(cap, s.limit + 1);
      else if (signal === 'ok' && ++s.slowCredit >= s.limit) {
        s.slowCredit = 0;
        s.limit = Math.min(cap, s.limit + 1);
      } else if (signal === 'overload') {
        s.limit = Math.max(1, Math.floor(s.limit / 2));
        s.slowCredit = 0;
      }
      if (signal === 'ok') {
        s.failedInRow = 0;
        s.holdUntil = 0;
        s.holds = 0;
      } else if (signal === 'overload' || signal === 'failure') {
        s.failedInRow++;
        // The slow lane, as this worker sees it: one at a time, one attempt per (growing) interval.
        // Failures of requests that were already on their way when the hold began leave it as it is:
        // a burst of them is one failure of the receiver, not a reason to wait longer.
        if (inSlowLane(s) && s.holdUntil <= clock()) s.holdUntil = clock() + slowLaneHoldMs(slowLane, ++s.holds);
      }
      if (s.inFlight === 0 && s.unrecorded === 0 && s.limit === startLimit && s.failedInRow === 0) states.delete(endpointId);
    },
    hasRoom(endpointId, endpointCap) {
      const s = states.get(endpointId);
      if (!s) return startLimit > 0 && endpointCap > 0;
      const limit = inSlowLane(s) ? 1 : Math.min(endpointCap, s.limit, exempt(endpointId) ? Infinity : contendedCap());
      return s.holdUntil <= clock() && s.inFlight < limit;
    },
    quietClaimed(latencyMs, endpointIds) {
      if (contention.targetMs <= 0) return;
      const quiet = endpointIds.filter((id) => !bulk(id));
      if (quiet.length === 0) return;
      contendedCap();
      const now = clock();
      lastQuietAt = now;
      if (quietLately.size > MAX_REMEMBERED) for (const [id, at] of quietLately) if (now - at > QUIET_MEMORY_MS) quietLately.delete(id);
      for (const id of quiet) quietLately.set(id, now);
      if (latencyMs > contention.targetMs) {
        if (now - lastCutAt < CUT_INTERVAL_MS) return;
        lastCutAt = now;
        let busiest = 0;
        for (const [id, s] of states) if (!exempt(id)) busiest = Math.max(busiest, s.inFlight);
        // Nobody else is sending: nothing to cap (the quiet endpoints wait on something else).
        if (busiest === 0) return;
        cap = Math.max(contention.floor, Math.floor(Math.min(cap, busiest) / 2));
      } else if (cap !== Infinity) cap++;
    },
    contendedCap,
    idle(endpointId) {
      return (states.get(endpointId)?.inFlight ?? 0) === 0;
    },
    handedBack(endpointId) {
      state(endpointId).unrecorded++;
    },
    view(opts) {
      const endpointIds: string[] = [];
      const inFlight: number[] = [];
      const limits: number[] = [];
      const now = clock();
      const contended = contendedCap();
      for (const [id, s] of states) {
        endpointIds.push(id);
        inFlight.push(s.inFlight);
        // A limit equal to what is in flight leaves no room; the hold ends by itself (next claim).
        const held =
          (opts?.holdParked && s.parked > 0) ||
          (opts?.holdBusy && (s.inFlight > 0 || s.unrecorded > 0)) ||
          (opts?.holdSending && s.inFlight > 0) ||
          s.holdUntil > now;
        // holdSending (the quiet lane) serves an idle endpoint one delivery: its next event, not its backlog.
        const own = inSlowLane(s) || opts?.holdSending ? 1 : Math.min(s.limit, contended === Infinity || exempt(id) ? Infinity : contended);
        limits.push(held ? Math.max(s.inFlight, 0) : own);
      }
      return { endpointIds, inFlight, limits };
    },
  };
}
