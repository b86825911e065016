/**
 * Whether the worker makes progress. A heartbeat shows the process is alive; progress is a claim
 * statement that returned or a batch of outcomes recorded. A worker that has due work and has made
 * no progress for `stallMs` is stalled: the heartbeat says so (worker_heartbeats.progress_at, read
 * by /health and /stats), the worker replaces its ledger pool, and if another `stallMs` passes
 * without progress it gives up (`onGiveUp`: the process exits, so its supervisor starts a fresh one).
 */
import type { Logger } from 'pino';

export type ProgressWatchOptions = {
  stallMs: number;
  /** Whether deliveries are due (and have been for `stallMs`); rejects when the ledger cannot tell. */
  hasDueWork(): Promise<boolean>;
  reconnect(reason: string): Promise<boolean>;
  onGiveUp(reason: string): void;
  log: Logger;
};

export type ProgressWatch = {
  progressed(): void;
  msSinceProgress(): number;
  /** Run on every heartbeat. */
  check(): Promise<void>;
};

export function createProgressWatch(opts: ProgressWatchOptions, now: () => number = Date.now): ProgressWatch {
  let lastProgressAt = now();
  /** When this stall last made the pool be replaced (null: not in a stall, or not acted on yet). */
  let reconnectedAt: number | null = null;
  let gaveUp = false;

  return {
    progressed() {
      lastProgressAt = now();
      if (reconnectedAt !== null) opts.log.info('worker progresses again');
      reconnectedAt = null;
    },
    msSinceProgress: () => now() - lastProgressAt,
    async check() {
      const since = now() - lastProgressAt;
      if (since < opts.stallMs || gaveUp) return;
      let due: boolean;
      try {
        due = await opts.hasDueWork();
      } catch (err) {
        // The ledger does not answer at all: an outage, which a new process would not end. A fresh
        // pool is cheap, though, and rules out connections stuck in the client.
        if (reconnectedAt === null || now() - reconnectedAt >= opts.stallMs) {
          reconnectedAt = now();
          await opts.reconnect('no progress and the ledger does not answer');
          opts.log.warn({ err: (err as Error).message, msSinceProgress: since }, 'no progress and the ledger does not answer: replaced the connection pool');
        }
        return;
      }
      if (!due) return;
      if (reconnectedAt === null) {
        reconnectedAt = now();
        opts.log.error(
          { msSinceProgress: since, stallMs: opts.stallMs },
          'worker stalled: work is due and nothing was claimed or recorded; replacing the ledger connection pool',
        );
        await opts.reconnect('worker stalled');
        return;
      }
      if (now() - reconnectedAt >= opts.stallMs) {
        gaveUp = true;
        opts.log.fatal({ msSinceProgress: since }, 'worker still stalled after replacing its ledger connection; exiting so that it is restarted');
        opts.onGiveUp('stalled');
      }
    },
  };
}
