/**
 * The retention purge as a background job: registered in every process that runs jobs, scheduled
 * every CARTEIRO_RETENTION_INTERVAL_MINUTES (a BullMQ job scheduler is shared by every process;
 * without Redis each process runs its own, which is safe: batches skip rows another one holds, and
 * partition maintenance takes an advisory lock).
 *
 * Order matters: whole days of the attempt log are dropped first (DROP TABLE, no per-row work), so
 * the batched purge of events and dispatches that follows finds their old attempts already gone
 * instead of deleting them one by one.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/config.ts';
import type { Ledger } from '../ledger/connection.ts';
import type { JobRunner } from './job-runner.ts';
import { purgeExpired } from '../ledger/retention.ts';
import { dropExpiredAttemptPartitions } from '../ledger/attempt-partitions.ts';

const BATCH_SIZE = 1000;
const PAUSE_BETWEEN_BATCHES_MS = 20;
const DAY_MS = 24 * 3600 * 1000;

export function registerRetentionJob(services: { ledger: Pick<Ledger, 'sql'>; jobs: JobRunner; log: Logger }): void {
  const { ledger, jobs, log } = services;
  jobs.register('retention-purge', async (p, ctx) => {
    const started = Date.now();
    const cutoff = new Date(started - p.olderThanDays * DAY_MS);
    // Partitions ahead are not this job's: the upkeep timer (attempt-partition-upkeep.ts) runs in
    // every process that runs jobs, so it keeps them wherever this job can run.
    const partitions = await dropExpiredAttemptPartitions(ledger.sql, { cutoff });
    if (partitions.busy) log.warn({ job: 'retention-purge' }, 'attempt partitions: an expired partition was busy; the next run drops it');
    const counts = await purgeExpired(ledger.sql, {
      cutoff,
      batchSize: BATCH_SIZE,
      pauseMs: PAUSE_BETWEEN_BATCHES_MS,
      onBatch: (soFar) => ctx.progress({ ...soFar }),
    });
    const result = {
      partitions_dropped: partitions.dropped.length,
      // From the planner's statistics: counting would read the partitions being dropped.
      partition_attempts_dropped_approx: partitions.dropped.reduce((n, d) => n + d.approxRows, 0),
      // Attempts of events retention keeps (unfinished deliveries), moved out of dropped partitions.
      partition_attempts_kept: partitions.dropped.reduce((n, d) => n + d.keptRows, 0),
      partitions_busy: partitions.busy ? 1 : 0,
      ...counts,
      older_than_days: p.olderThanDays,
      duration_ms: Date.now() - started,
    };
    log.info({ job: 'retention-purge', cutoff: cutoff.toISOString(), dropped: partitions.dropped.map((d) => d.name), ...result }, 'retention purge finished');
    return result;
  });
}

/** Schedules the periodic purge; an interval of 0 removes a schedule an earlier start left (with Redis it outlives processes). */
export async function scheduleRetention(services: { config: Pick<Config, 'dataProtection' | 'retentionDays'>; jobs: JobRunner }): Promise<void> {
  const { config, jobs } = services;
  if (config.dataProtection.retentionIntervalMs <= 0) return jobs.unschedule('retention-purge');
  await jobs.enqueue('retention-purge', { olderThanDays: config.retentionDays }, { repeatEveryMs: config.dataProtection.retentionIntervalMs });
}
