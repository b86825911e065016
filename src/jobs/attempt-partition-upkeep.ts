/**
 * Keeps the attempt log's day partitions created ahead (migration 0006), independently of retention:
 * CARTEIRO_RETENTION_INTERVAL_MINUTES=0 turns the purge off, not the partitions' upkeep. Runs at start
 * and then hourly in every process that writes attempts (or runs jobs). A plain timer rather than a
 * scheduled job: the call is idempotent and cheap (a catalog read when nothing is missing), serialised
 * in the database by an advisory lock, and leaves nothing behind in Redis.
 *
 * If upkeep stops altogether, nothing fails: partitions exist a week ahead, and after that attempts
 * land in the default partition (and are moved out when upkeep resumes).
 */
import type { Logger } from 'pino';
import type { Ledger } from '../ledger/connection.ts';
import { ensureAttemptPartitions } from '../ledger/attempt-partitions.ts';

const UPKEEP_INTERVAL_MS = 3600 * 1000;

/** Runs the upkeep once now, then hourly; returns the function that stops it. */
export async function startAttemptPartitionUpkeep(services: { ledger: Pick<Ledger, 'sql'>; log: Logger }): Promise<() => void> {
  const { ledger, log } = services;
  const upkeep = async () => {
    try {
      const created = await ensureAttemptPartitions(ledger.sql);
      if (created.length)
        log.info({ created: created.map((p) => p.name), moved_rows: created.reduce((n, p) => n + p.movedRows, 0) }, 'attempt partitions created');
    } catch (err) {
      log.warn({ err }, 'attempt partitions: upkeep failed; retrying in an hour');
    }
  };
  await upkeep();
  const timer = setInterval(() => void upkeep(), UPKEEP_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
