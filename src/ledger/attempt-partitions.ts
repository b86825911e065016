/**
 * The attempt log's day partitions (migration 0006): created ahead, dropped whole once older than
 * retention. The work is done by the SQL functions of 0006 (so an operator can run them by hand or
 * from pg_cron too); this module gives each call a short lock_timeout, in its own transaction, and
 * retries a busy lock a few times: maintenance waits for its turn rather than making inserts and
 * readers queue behind a lock it cannot get yet.
 */
import type { Sql } from './connection.ts';

/** Partitions exist for today and this many days after; a week of slack if upkeep stops. */
export const ATTEMPT_PARTITION_DAYS_AHEAD = 7;
const LOCK_NOT_AVAILABLE = '55P03';

export type AttemptPartition = { name: string; rangeStart: Date | null; rangeEnd: Date | null; isDefault: boolean };
export type CreatedPartition = { name: string; rangeStart: Date; rangeEnd: Date; movedRows: number };
export type DroppedPartition = { name: string; rangeStart: Date | null; rangeEnd: Date; approxRows: number; keptRows: number };
export type DropResult = {
  dropped: DroppedPartition[];
  /** An expired partition was left for a later run: its lock stayed busy through every retry. */
  busy: boolean;
};

export type LockOptions = {
  /** How long one try waits for a lock (SET LOCAL lock_timeout). */
  lockTimeoutMs?: number;
  /** Tries after the first when a lock stays busy. */
  retries?: number;
  retryPauseMs?: number;
};

/** A maintenance step could not get its lock through every retry (a long query held the table). */
export class AttemptPartitionsBusyError extends Error {
  override name = 'AttemptPartitionsBusyError';
  constructor(what: string, cause: unknown) {
    super(`attempt partitions: ${what} could not get its lock (a long-running query on webhook_deliveries?); a later run retries`, { cause });
  }
}

export async function listAttemptPartitions(sql: Sql): Promise<AttemptPartition[]> {
  const rows = await sql<{ partition_name: string; range_start: Date | null; range_end: Date | null; is_default: boolean }[]>`
    SELECT partition_name, range_start, range_end, is_default FROM attempt_partitions()`;
  return rows.map((r) => ({ name: r.partition_name, rangeStart: r.range_start, rangeEnd: r.range_end, isDefault: r.is_default }));
}

/** Creates the missing day partitions from the UTC day of `at` (default now) through `daysAhead` days later. */
export async function ensureAttemptPartitions(sql: Sql, opts: LockOptions & { daysAhead?: number; at?: Date } = {}): Promise<CreatedPartition[]> {
  const daysAhead = opts.daysAhead ?? ATTEMPT_PARTITION_DAYS_AHEAD;
  const at = opts.at ?? null;
  const rows = await withLockTimeout(
    sql,
    'creating partitions',
    opts,
    (tx) => tx<{ partition_name: string; range_start: Date; range_end: Date; moved_rows: string }[]>`
    SELECT partition_name, range_start, range_end, moved_rows::text
    FROM ensure_attempt_partitions(${daysAhead}::int, coalesce(${at}::timestamptz, now()))`,
  );
  return rows.map((r) => ({ name: r.partition_name, rangeStart: r.range_start, rangeEnd: r.range_end, movedRows: Number(r.moved_rows) }));
}

/**
 * Drops every partition whose whole range ends at or before `cutoff`, one per transaction (each holds
 * the parent's ACCESS EXCLUSIVE lock only for a catalog change). A partition whose lock stays busy
 * is left for the next run (`busy`), the others are still dropped.
 */
export async function dropExpiredAttemptPartitions(sql: Sql, opts: LockOptions & { cutoff: Date }): Promise<DropResult> {
  const result: DropResult = { dropped: [], busy: false };
  for (;;) {
    let rows: { partition_name: string; range_start: Date | null; range_end: Date; approx_rows: string; kept_rows: string }[];
    try {
      rows = await withLockTimeout(
        sql,
        'dropping a partition',
        opts,
        (tx) => tx`
        SELECT partition_name, range_start, range_end, approx_rows::text, kept_rows::text
        FROM drop_expired_attempt_partitions(${opts.cutoff}::timestamptz, 1)`,
      );
    } catch (err) {
      if (!(err instanceof AttemptPartitionsBusyError)) throw err;
      result.busy = true;
      return result;
    }
    const r = rows[0];
    if (!r) return result;
    result.dropped.push({
      name: r.partition_name,
      rangeStart: r.range_start,
      rangeEnd: r.range_end,
      approxRows: Number(r.approx_rows),
      keptRows: Number(r.kept_rows),
    });
  }
}

async function withLockTimeout<T>(sql: Sql, what: string, opts: LockOptions, work: (tx: Sql) => Promise<T>): Promise<T> {
  const timeout = `${opts.lockTimeoutMs ?? 2000}ms`;
  const retries = opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      return (await sql.begin(async (tx) => {
        await tx`SELECT set_config('lock_timeout', ${timeout}, true)`;
        return work(tx as unknown as Sql);
      })) as T;
    } catch (err) {
      if ((err as { code?: string }).code !== LOCK_NOT_AVAILABLE) throw err;
      if (attempt >= retries) throw new AttemptPartitionsBusyError(what, err);
      await new Promise((r) => setTimeout(r, opts.retryPauseMs ?? 500));
    }
  }
}
