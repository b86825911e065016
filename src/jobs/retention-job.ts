/**
 * The retention purge as a background job: registered in every process that runs jobs, scheduled
 * every CARTEIRO_RETENTION_INTERVAL_MINUTES (a BullMQ job scheduler is shared by every process;
 * without Redis each process runs its own, which is safe: batches skip rows another one holds).
 */
import type { Services } from '../runtime/services.ts';
import { purgeExpired } from '../ledger/retention.ts';

const BATCH_SIZE = 1000;
const PAUSE_BETWEEN_BATCHES_MS = 20;
const DAY_MS = 24 * 3600 * 1000;

export function registerRetentionJob(services: Services): void {
  const { ledger, jobs, log } = services;
  jobs.register('retention-purge', async (p, ctx) => {
    const started = Date.now();
    const cutoff = new Date(started - p.olderThanDays * DAY_MS);
    const counts = await purgeExpired(ledger.sql, {
      cutoff,
      batchSize: BATCH_SIZE,
      pauseMs: PAUSE_BETWEEN_BATCHES_MS,
      onBatch: (soFar) => ctx.progress({ ...soFar }),
    });
    const result = { ...counts, older_than_days: p.olderThanDays, duration_ms: Date.now() - started };
    log.info({ job: 'retention-purge', cutoff: cutoff.toISOString(), ...result }, 'retention purge finished');
    return result;
  });
}

/** Schedules the periodic purge (no-op when the interval is 0). */
export async function scheduleRetention(services: Services): Promise<void> {
  const { config, jobs } = services;
  if (config.dataProtection.retentionIntervalMs <= 0) return;
  await jobs.enqueue('retention-purge', { olderThanDays: config.retentionDays }, { repeatEveryMs: config.dataProtection.retentionIntervalMs });
}
