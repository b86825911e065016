/**
 * A worker's deliveries under way, each in one slot: active while it counts against the worker's
 * concurrency (CARTEIRO_WORKER_CONCURRENCY), parked once its request has waited
 * CARTEIRO_WORKER_PARK_AFTER_MS for the receiver. A parked request holds a socket and a timer, not
 * one of the slots every other endpoint's work needs: that is how a silent receiver is kept from
 * filling the worker (docs/architecture.md, isolation).
 */
import type { LoadSignal } from './endpoint-limits.ts';

/** `sentAt`: when its request went out (0 before: a rate limit or a transformation still to pass). */
export type Slot = { readonly endpointId: string; sentAt: number; parked: boolean; signal: LoadSignal };

export type Slots = {
  /** A delivery starts: it takes an active slot. */
  open(endpointId: string): Slot;
  /** Its request went out: from now on it waits on its receiver and may be parked. */
  sent(slot: Slot, at: number): void;
  /** It ended (answered, failed, cancelled, handed back): its slot is free. */
  close(slot: Slot): void;
  /** Parks the requests sent before `cutoff`, oldest first; `onParked` hears of each. */
  parkSentBefore(cutoff: number, onParked: (slot: Slot) => void): void;
  /** Deliveries that count against the worker's concurrency. */
  active(): number;
  parked(): number;
  /** Every delivery under way: active or parked. */
  inFlight(): number;
  /** Resolves when nothing is in flight, or after `ms`. */
  idle(ms: number): Promise<void>;
};

export function createSlots(): Slots {
  const active = new Set<Slot>();
  /**
   * The active deliveries whose request went out, in the order they went: only these can be parked.
   * A delivery waiting for its transformation's sandbox thread keeps its slot, so the worker's
   * concurrency bounds the runs queued for the sandbox. (Parked while they waited, they let the
   * worker claim past what the sandbox could run: runs then waited out their limit and were handed
   * back to the ledger and claimed again. Measured: a drain to a transformed endpoint at 765/s with
   * one sandbox thread that runs 1,247/s, and Postgres CPU per delivery 6.6× a plain drain's.)
   */
  const sending = new Set<Slot>();
  let parked = 0;
  const idleWaiters = new Set<() => void>();
  const inFlight = () => active.size + parked;

  return {
    open(endpointId) {
      const slot: Slot = { endpointId, sentAt: 0, parked: false, signal: 'none' };
      active.add(slot);
      return slot;
    },
    sent(slot, at) {
      slot.sentAt = at;
      sending.add(slot);
    },
    close(slot) {
      if (slot.parked) parked--;
      else active.delete(slot);
      sending.delete(slot);
      if (inFlight() === 0) for (const wake of idleWaiters) wake();
    },
    parkSentBefore(cutoff, onParked) {
      // Oldest first (insertion order): stop at the first one still young.
      for (const slot of sending) {
        if (slot.sentAt > cutoff) break;
        sending.delete(slot);
        active.delete(slot);
        slot.parked = true;
        parked++;
        onParked(slot);
      }
    },
    active: () => active.size,
    parked: () => parked,
    inFlight,
    idle(ms) {
      if (inFlight() === 0) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t);
          idleWaiters.delete(done);
          resolve();
        };
        const t = setTimeout(done, ms);
        idleWaiters.add(done);
      });
    },
  };
}
