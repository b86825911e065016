/** Worker heartbeats: how /health knows deliveries are being made, from any process. */
import { hostname } from 'node:os';
import type { Sql } from './connection.ts';

export async function touchWorker(sql: Sql, workerId: string): Promise<void> {
  await sql`
    INSERT INTO worker_heartbeats (worker_id, hostname, pid) VALUES (${workerId}, ${hostname()}, ${process.pid})
    ON CONFLICT (worker_id) DO UPDATE SET last_seen_at = now()`;
}

export async function removeWorker(sql: Sql, workerId: string): Promise<void> {
  await sql`DELETE FROM worker_heartbeats WHERE worker_id = ${workerId}`;
}

export async function countLiveWorkers(sql: Sql, withinMs: number): Promise<number> {
  const [row] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM worker_heartbeats WHERE last_seen_at > now() - ${withinMs} * interval '1 millisecond'`;
  return row?.n ?? 0;
}
