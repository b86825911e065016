// Open-loop load at a fixed offered rate: every millisecond or so, whatever is due by now is sent
// without waiting for earlier requests (concurrent producers do not wait for each other either).
// Each request body is built at the moment it is sent, so a timestamp inside it (data.sent_at_ms)
// is the moment of the POST, and any queueing behind a saturated client or server is measured.
import { Pool } from 'undici';
import { nowMs } from './envelope.ts';
import { SampleBuffer, type LatencySummary } from './stats.ts';

export type OfferedLoadOptions = {
  baseUrl: string;
  /** Request path, e.g. /api/webhooks/trigger */
  path: string;
  headers: Record<string, string>;
  ratePerSecond: number;
  durationMs: number;
  /** Body for the n-th request, stamped with the send time (epoch ms, same clock as the receiver's). */
  body(n: number, sentAtMs: number): string;
  connections?: number;
  /** Per-request timeout. Default 10 s. */
  timeoutMs?: number;
  /** Beyond this many requests outstanding, due requests are dropped (counted) instead of queued. */
  maxOutstanding?: number;
  /** Called with each request's status once answered (null: no answer, a timeout or connection error). */
  onAnswer?(n: number, status: number | null): void;
};

export type OfferedLoadResult = {
  offered: number;
  sent: number;
  dropped: number;
  byStatus: Record<string, number>;
  errors: number;
  /** Client-side response time (POST → status), ms. */
  responseMs: LatencySummary;
  elapsedMs: number;
  achievedPerSecond: number;
};

export async function offerLoad(o: OfferedLoadOptions): Promise<OfferedLoadResult> {
  const pool = new Pool(o.baseUrl, { connections: o.connections ?? 64, keepAliveTimeout: 60_000 });
  const total = Math.floor((o.ratePerSecond * o.durationMs) / 1000);
  const maxOutstanding = o.maxOutstanding ?? 5_000;
  const timeoutMs = o.timeoutMs ?? 10_000;
  const samples = new SampleBuffer(Math.max(1024, total));
  const byStatus: Record<string, number> = {};
  let offered = 0;
  let sent = 0;
  let dropped = 0;
  let errors = 0;
  let outstanding = 0;
  const inflight = new Set<Promise<void>>();

  const one = async (n: number): Promise<void> => {
    const sentAt = nowMs();
    const t0 = performance.now();
    try {
      const res = await pool.request({
        method: 'POST',
        path: o.path,
        headers: o.headers,
        body: o.body(n, sentAt),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      await res.body.dump();
      byStatus[res.statusCode] = (byStatus[res.statusCode] ?? 0) + 1;
      o.onAnswer?.(n, res.statusCode);
    } catch {
      errors++;
      o.onAnswer?.(n, null);
    }
    samples.push(performance.now() - t0);
  };

  const start = performance.now();
  await new Promise<void>((resolve) => {
    const tick = (): void => {
      const elapsed = performance.now() - start;
      const due = Math.min(total, Math.floor((elapsed * o.ratePerSecond) / 1000));
      while (offered < due) {
        const n = offered++;
        if (outstanding >= maxOutstanding) {
          dropped++;
          continue;
        }
        outstanding++;
        sent++;
        const p = one(n).finally(() => {
          outstanding--;
          inflight.delete(p);
        });
        inflight.add(p);
      }
      if (offered >= total || elapsed >= o.durationMs) {
        clearInterval(timer);
        resolve();
      }
    };
    const timer = setInterval(tick, 1);
  });
  await Promise.all(inflight);
  const elapsedMs = performance.now() - start;
  await pool.close();
  const ok = Object.entries(byStatus)
    .filter(([s]) => s.startsWith('2'))
    .reduce((a, [, c]) => a + c, 0);
  return { offered, sent, dropped, byStatus, errors, responseMs: samples.summary(), elapsedMs, achievedPerSecond: (ok / elapsedMs) * 1000 };
}
