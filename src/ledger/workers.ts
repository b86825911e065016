/** Worker heartbeats: how /health knows deliveries are being made, from any process. */
import { hostname } from 'node:os';
import type { Sql } from './connection.ts';

/**
 * `msSinceProgress`: how long ago the worker last claimed or recorded. Stored as the server's
 * `now()` minus that, so /health compares times from one clock whichever host the worker runs on.
 */
export async function touchWorker(sql: Sql, workerId: string, msSinceProgress = 0): Promise<void> {
  await sql`
    INSERT INTO worker_heartbeats (worker_id, hostname, pid, progress_at)
    VALUES (${workerId}, ${hostname()}, ${process.pid}, now() - ${Math.max(0, Math.round(msSinceProgress))} * interval '1 millisecond')
    ON CONFLICT (worker_id) DO UPDATE SET last_seen_at = now(), progress_at = EXCLUDED.progress_at`;
}

export async function removeWorker(sql: Sql, workerId: string): Promise<void> {
  await sql`DELETE FROM worker_heartbeats WHERE worker_id = ${workerId}`;
}

export async function countLiveWorkers(sql: Sql, withinMs: number): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM worker_heartbeats WHERE last_seen_at > now() - ${withinMs} * interval '1 millisecond'`;
  return row?.n ?? 0;
}

export type WorkerLiveness = { live: number; stalled: number };

/**
 * Live workers (a heartbeat within `withinMs`), and how many of them are stalled: due work has
 * waited longer than `stallMs` and the worker has not claimed or recorded in that time. A worker
 * with nothing due is never stalled, however long it has been idle.
 */
export async function readWorkerLiveness(sql: Sql, withinMs: number, stallMs: number): Promise<WorkerLiveness> {
  const [row] = await sql<WorkerLiveness[]>`
    WITH waiting AS (
      SELECT EXISTS (
        SELECT 1 FROM webhook_dispatches
         WHERE status = 'pending' AND next_attempt_at < now() - ${stallMs} * interval '1 millisecond'
      ) AS due
    )
    SELECT count(*)::int AS live,
           count(*) FILTER (WHERE (SELECT due FROM waiting) AND progress_at < now() - ${stallMs} * interval '1 millisecond')::int AS stalled
      FROM worker_heartbeats
     WHERE last_seen_at > now() - ${withinMs} * interval '1 millisecond'`;
  return row ?? { live: 0, stalled: 0 };
}

/** Whether any delivery is due now (the worker's own stall check asks before it acts). */
export async function hasDueWork(sql: Sql, olderThanMs: number): Promise<boolean> {
  const [row] = await sql<{ due: boolean }[]>`
    SELECT EXISTS (
      SELECT 1 FROM webhook_dispatches WHERE status = 'pending' AND next_attempt_at < now() - ${olderThanMs} * interval '1 millisecond'
    ) AS due`;
  return row?.due ?? false;
}
