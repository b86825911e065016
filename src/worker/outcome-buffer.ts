/**
 * Outcomes on their way to the ledger. Deliveries end one at a time; the ledger records them a batch
 * at a time, in one transaction (ledger/outcomes.ts), which is what makes recording cheap. A batch is
 * written when `batchSize` outcomes wait, after `flushIntervalMs`, or at once for an outcome whose
 * commit makes work claimable that nothing else announces (`wake`). One write at a time; a failed
 * write keeps its outcomes and tries again, since losing them would mean re-sending work that was
 * delivered.
 */
import type { Logger } from 'pino';
import type { OutcomeRecord } from '../ledger/outcomes.ts';

/** At most this many outcomes go into one write. */
const FLUSH_MAX_BATCH = 2000;
const FLUSH_RETRY_DELAY_MS = 500;

export type OutcomeBuffer = {
  /** `wake`: its commit makes work claimable (a FIFO endpoint's next head, a hand-back): no flush interval. */
  push(record: OutcomeRecord, wake?: boolean): void;
  /** Writes what waits (and what arrives meanwhile); resolves when the buffer is empty or a write failed. */
  flush(): Promise<void>;
  /** Outcomes not recorded yet: waiting, or in the write under way. */
  size(): number;
  /** Outcomes waiting (not in a write under way). */
  waiting(): number;
  writing(): boolean;
  /** Stops the flush timer (at shutdown: flush is then called until the buffer is empty). */
  stopTimer(): void;
};

export type OutcomeBufferOptions<R> = {
  batchSize: number;
  flushIntervalMs: number;
  log: Logger;
  /** Records a batch in the ledger. */
  write(batch: OutcomeRecord[]): Promise<R>;
  /** After a batch's commit; `wake` when one of its outcomes asked to wake the claim loop. */
  recorded(batch: OutcomeRecord[], result: R, ms: number, wake: boolean): void;
};

export function createOutcomeBuffer<R>(opts: OutcomeBufferOptions<R>): OutcomeBuffer {
  const { batchSize, flushIntervalMs, log } = opts;
  let buffer: OutcomeRecord[] = [];
  const wakeOnRecord = new WeakSet<OutcomeRecord>();
  let flushing: Promise<void> | null = null;
  /** Outcomes in the write under way (they left `buffer`, they are not recorded yet). */
  let recording = 0;
  let flushTimer: NodeJS.Timeout | null = null;

  function push(record: OutcomeRecord, wake = false): void {
    if (wake) wakeOnRecord.add(record);
    buffer.push(record);
    if (flushing) return;
    if (buffer.length >= batchSize || flushIntervalMs === 0 || wake) {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
      void flush();
      return;
    }
    if (flushTimer) return;
    flushTimer = setTimeout(() => {
      flushTimer = null;
      void flush();
    }, flushIntervalMs);
  }

  function flush(): Promise<void> {
    if (flushing) return flushing;
    if (buffer.length === 0) return Promise.resolve();
    const batch = buffer.slice(0, FLUSH_MAX_BATCH);
    buffer = buffer.slice(batch.length);
    recording = batch.length;
    flushing = (async () => {
      try {
        const startedAt = performance.now();
        const result = await opts.write(batch);
        recording = 0;
        opts.recorded(
          batch,
          result,
          performance.now() - startedAt,
          batch.some((o) => wakeOnRecord.has(o)),
        );
      } catch (err) {
        log.error({ err, outcomes: batch.length }, 'recording outcomes failed; retrying');
        buffer = batch.concat(buffer);
        recording = 0;
        await sleep(FLUSH_RETRY_DELAY_MS);
      } finally {
        flushing = null;
      }
      if (buffer.length) await flush();
    })();
    return flushing;
  }

  return {
    push,
    flush,
    size: () => buffer.length + recording,
    waiting: () => buffer.length,
    writing: () => flushing !== null,
    stopTimer() {
      if (flushTimer) clearTimeout(flushTimer);
      flushTimer = null;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
