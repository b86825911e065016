/**
 * Adaptive concurrency per endpoint, in one worker: how many requests it may have in flight to each
 * endpoint. Additive increase, multiplicative decrease, the way TCP and Netflix's concurrency-limits
 * do it: each success raises the limit by one (up to the endpoint's cap), each sign of overload
 * (a timeout, a refused or reset connection, 429, 502, 503, 504) halves it, down to one.
 *
 * A fast endpoint climbs from the start value to its cap within a few round trips; a hanging one is
 * held at the start value until its first timeouts, then at one. The claim statement reads this view
 * (ledger/dispatches.ts), so a worker never takes more work for an endpoint than the endpoint's room.
 */
import type { WorkerEndpointView } from '../ledger/dispatches.ts';
import type { SendResult } from '../delivery/http-sender.ts';

type EndpointState = { inFlight: number; limit: number; parked: number };

/** What an attempt's result says about the receiver's capacity. */
export type LoadSignal = 'ok' | 'overload' | 'neutral';

/** Standard Webhooks asks senders to slow down on 429, 502 and 504; 503 says the same. */
const OVERLOAD_STATUS = new Set([429, 502, 503, 504]);

export function loadSignal(result: SendResult): LoadSignal {
  if (result.kind === 'network-error') return 'overload';
  if (result.statusCode >= 200 && result.statusCode < 300) return 'ok';
  return OVERLOAD_STATUS.has(result.statusCode) ? 'overload' : 'neutral';
}

/** Endpoints idle at the start value are forgotten; past this many states, idle ones are dropped. */
const MAX_REMEMBERED = 10_000;

export type EndpointLimits = {
  started(endpointId: string, cap: number): void;
  /** One of the endpoint's requests has waited long enough to be parked. */
  parked(endpointId: string): void;
  finished(endpointId: string, signal: LoadSignal, cap: number, wasParked: boolean): void;
  inFlight(endpointId: string): number;
  limit(endpointId: string): number;
  /**
   * The endpoints the claim must hear about: those with work in flight or a limit off the start
   * value. With `holdParked`, an endpoint with parked requests gets no room (its limit is what it
   * has in flight): when the worker is short of room for parked requests, the slow endpoints wait
   * and the others go on.
   */
  view(opts?: { holdParked: boolean }): WorkerEndpointView;
};

export function createEndpointLimits(startLimit: number): EndpointLimits {
  const states = new Map<string, EndpointState>();

  function state(endpointId: string): EndpointState {
    let s = states.get(endpointId);
    if (!s) {
      if (states.size >= MAX_REMEMBERED) forgetIdle();
      s = { inFlight: 0, limit: startLimit, parked: 0 };
      states.set(endpointId, s);
    }
    return s;
  }

  function forgetIdle(): void {
    for (const [id, s] of states) if (s.inFlight === 0) states.delete(id);
  }

  return {
    started(endpointId, cap) {
      const s = state(endpointId);
      s.inFlight++;
      if (s.limit > cap) s.limit = cap;
    },
    parked(endpointId) {
      state(endpointId).parked++;
    },
    finished(endpointId, signal, cap, wasParked) {
      const s = state(endpointId);
      s.inFlight = Math.max(0, s.inFlight - 1);
      if (wasParked) s.parked = Math.max(0, s.parked - 1);
      if (signal === 'ok') s.limit = Math.min(cap, s.limit + 1);
      else if (signal === 'overload') s.limit = Math.max(1, Math.floor(s.limit / 2));
      if (s.inFlight === 0 && s.limit === startLimit) states.delete(endpointId);
    },
    inFlight: (endpointId) => states.get(endpointId)?.inFlight ?? 0,
    limit: (endpointId) => states.get(endpointId)?.limit ?? startLimit,
    view(opts) {
      const endpointIds: string[] = [];
      const inFlight: number[] = [];
      const limits: number[] = [];
      for (const [id, s] of states) {
        endpointIds.push(id);
        inFlight.push(s.inFlight);
        limits.push(opts?.holdParked && s.parked > 0 ? Math.max(1, s.inFlight) : s.limit);
      }
      return { endpointIds, inFlight, limits };
    },
  };
}
