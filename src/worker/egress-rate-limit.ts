/**
 * The per-endpoint delivery rate limit (worker/egress-gate.ts is the interface the dispatcher asks).
 * An endpoint with rate_limit_per_second = R gets at most R requests a second, counted in Redis so
 * the limit holds across every worker; without Redis (embedded, one worker) or while Redis is
 * unreachable, the count is in this process' memory (rate-limiter-flexible's insurance limiter).
 *
 * Plain one-second windows would let 2R through in the second that straddles two windows (R at the
 * end of one, R at the start of the next), which is exactly what a receiver with a strict limit
 * rejects. So time is cut into short slots: K = ⌈R/10⌉ requests per slot of K/R seconds (for R ≤ 10,
 * one request every 1/R s; above, R/10 every 100 ms or so). Any one-second span then holds at most
 * R + K. The slot is part of the counter's key (`<endpoint>:<slot number>`); the counting itself —
 * atomic increment with expiry in Redis, the in-memory fallback — is rate-limiter-flexible's. Slot
 * numbers come from the worker's clock, so workers' clocks should agree (NTP) to well under a slot.
 *
 * A refused reservation is not an error: the dispatcher hands the dispatch back to the queue for the
 * wait we return, without spending an attempt. The wait is by place in line (the n-th request over a
 * slot's allowance waits ⌈n/K⌉ slots), so a backlog for a slow endpoint is re-claimed about K at a
 * time instead of all of it every slot.
 */
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { EgressGate } from './egress-gate.ts';

/** Slots are about this long (or 1/R s for slow endpoints). */
const TARGET_SLOT_MS = 100;
/** A limiter per distinct rate; endpoints with the same rate share one (keys are per endpoint). */
const MAX_LIMITERS = 1_000;

export type SlotPlan = { perSlot: number; slotMs: number };

/** K = ⌈R / (1000 / TARGET_SLOT_MS)⌉ requests per slot of K/R seconds: exactly R a second on average. */
export function slotPlan(ratePerSecond: number): SlotPlan {
  const rate = Math.max(1, Math.floor(ratePerSecond));
  const perSlot = Math.ceil((rate * TARGET_SLOT_MS) / 1000);
  return { perSlot, slotMs: (perSlot * 1000) / rate };
}

export function createEgressGate(opts: { redis: Redis | null; keyPrefix: string; log: Logger; now?: () => number }): EgressGate {
  const now = opts.now ?? Date.now;
  const limiters = new Map<number, { limiter: RateLimiterAbstract; plan: SlotPlan }>();

  function limiterFor(rate: number) {
    let entry = limiters.get(rate);
    if (entry) return entry;
    if (limiters.size >= MAX_LIMITERS) limiters.clear();
    const plan = slotPlan(rate);
    // The rate is part of the key: a changed rate starts a fresh count. A slot's key outlives the
    // slot a little (durations are whole seconds) and then expires by itself.
    const keyPrefix = `${opts.keyPrefix}:${rate}`;
    const duration = Math.max(1, Math.ceil((2 * plan.slotMs) / 1000));
    const memory = new RateLimiterMemory({ keyPrefix, points: plan.perSlot, duration });
    const limiter = opts.redis
      ? new RateLimiterRedis({ storeClient: opts.redis, keyPrefix, points: plan.perSlot, duration, rejectIfRedisNotReady: true, insuranceLimiter: memory })
      : memory;
    entry = { limiter, plan };
    limiters.set(rate, entry);
    return entry;
  }

  return {
    async reserve(endpointId, ratePerSecond) {
      const { limiter, plan } = limiterFor(Math.max(1, Math.floor(ratePerSecond)));
      const at = now();
      const slot = Math.floor(at / plan.slotMs);
      const untilNextSlot = Math.max(1, Math.ceil((slot + 1) * plan.slotMs - at));
      try {
        await limiter.consume(`${endpointId}:${slot}`);
        return 0;
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) {
          // Redis and the memory fallback both failed: wait a slot rather than exceed the limit.
          opts.log.warn({ err: rejection, endpointId }, 'egress rate limiter unavailable; deferring the delivery');
          return untilNextSlot;
        }
        const over = Math.max(1, rejection.consumedPoints - plan.perSlot);
        return untilNextSlot + Math.floor((over - 1) / plan.perSlot) * Math.ceil(plan.slotMs);
      }
    },
    async close() {
      limiters.clear();
    },
  };
}
