/**
 * A deadline on the worker's ledger calls (claim, record, heartbeat). postgres.js 3.4.9 can leave a
 * query unsettled for good after Postgres restarts (its connection throws `null.write` from a socket
 * callback: porsager/postgres#1066, #1208): a claim that never returns kept the claim loop "busy" for
 * ever, and the worker stopped delivering while its heartbeat, on another connection, went on. Past
 * the deadline the call is given up (the loop carries on) and the pool is replaced, which destroys
 * the stuck connection (a transaction still open on it rolls back, so a record given up is not
 * also committed later).
 */
import type { Logger } from 'pino';
import type { Ledger } from '../ledger/connection.ts';
import { withTimeout } from '../util/timeout.ts';

export class LedgerDeadlineError extends Error {
  /** Counted as "the ledger is down" by isLedgerDown (api/error-handler.ts). */
  readonly code = 'CARTEIRO_LEDGER_DEADLINE';
  constructor(what: string, ms: number) {
    super(`${what}: no answer from the ledger within ${ms} ms`);
    this.name = 'LedgerDeadlineError';
  }
}

export type LedgerDeadline = <T>(work: Promise<T>, what: string) => Promise<T>;

export function createLedgerDeadline(ledger: Ledger, ms: number, log: Logger): LedgerDeadline {
  return async (work, what) => {
    try {
      return await withTimeout(work, ms, () => new LedgerDeadlineError(what, ms));
    } catch (err) {
      if (err instanceof LedgerDeadlineError) {
        // The given-up call may still settle; nobody is waiting for it.
        work.catch(() => {});
        const replaced = await ledger.reconnect(err.message);
        log.error({ err: err.message, replaced }, replaced ? 'ledger call past its deadline: replaced the connection pool' : 'ledger call past its deadline');
      }
      throw err;
    }
  };
}
