/**
 * Redis connections. Redis holds only what processes share but need not keep (rate-limit counters,
 * live-update messages, background jobs): losing it loses no event.
 */
import { Redis } from 'ioredis';

export function connectRedis(url: string, opts: { forBullmq?: boolean } = {}): Redis {
  return new Redis(url, {
    // BullMQ workers block on Redis and must never give up a command; elsewhere fail fast.
    maxRetriesPerRequest: opts.forBullmq ? null : 2,
    enableOfflineQueue: opts.forBullmq ? true : false,
    lazyConnect: false,
    connectTimeout: 5_000,
  });
}

export async function pingRedis(redis: Redis, timeoutMs: number): Promise<boolean> {
  const ping = redis.ping().then(() => true, () => false);
  const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref());
  return Promise.race([ping, timeout]);
}
