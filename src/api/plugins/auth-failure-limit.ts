/**
 * Requests without a valid key, per client address. A well-formed but unknown key costs a Postgres
 * lookup, so an address that keeps failing must not keep causing them: after `perMinute` failures
 * in a minute it gets 429 with Retry-After for every request until the minute is over, before any
 * key is looked up. (The whole address is held: telling its valid keys apart would need the very
 * lookup this saves. Keys are 256 random bits, so the limit is about load, not about guessing.)
 *
 * Counters live in Redis when there is one, so the budget holds across API processes; without Redis,
 * or while it is unreachable, each process counts in memory. Only failures touch the counters: an
 * address that spent its budget is remembered here until its minute is over, so a request with a
 * valid key costs no Redis round trip, and each process learns of a spent budget at its own next
 * failure from that address. The address is the socket's peer, or the client a trusted proxy
 * reports (CARTEIRO_TRUST_PROXY).
 */
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Logger } from 'pino';
import type { ApiServices } from '../api-services.ts';
import { RateLimitedError } from '../../errors/errors.ts';

const WINDOW_SECONDS = 60;
/** Addresses held at once in one process; past it the oldest holds are dropped (Redis still counts). */
const HELD_LIMIT = 10_000;

export type AuthFailureLimit = {
  /** Throws RateLimitedError while `address` is over its budget. */
  check(address: string): void;
  /** Counts a failed authentication; throws RateLimitedError if it spends the budget. */
  fail(address: string): Promise<void>;
};

export function createAuthFailureLimit(services: Pick<ApiServices, 'redis' | 'config' | 'ledger'>, log: Logger): AuthFailureLimit | null {
  const perMinute = services.config.ingress.authFailuresPerMinute;
  if (perMinute === 0) return null;
  const keyPrefix = `${services.config.redis.prefix}:${services.ledger.schema}:auth-failures`;
  const memory = new RateLimiterMemory({ keyPrefix, points: perMinute, duration: WINDOW_SECONDS });
  const limiter: RateLimiterAbstract = services.redis
    ? new RateLimiterRedis({
        storeClient: services.redis,
        keyPrefix,
        points: perMinute,
        duration: WINDOW_SECONDS,
        rejectIfRedisNotReady: true,
        insuranceLimiter: memory,
      })
    : memory;
  const refuse = (msBeforeNext: number) =>
    new RateLimitedError(Math.max(1, Math.ceil(msBeforeNext / 1000)), 'too many requests without a valid API key from this address');
  const heldUntil = new Map<string, number>();

  return {
    check(address) {
      const until = heldUntil.get(address);
      if (until === undefined) return;
      if (until > Date.now()) throw refuse(until - Date.now());
      heldUntil.delete(address);
    },
    async fail(address) {
      try {
        await limiter.consume(address);
      } catch (rejection) {
        if (!(rejection instanceof RateLimiterRes)) {
          log.warn({ err: rejection }, 'auth failure limiter unavailable; failure not counted');
          return;
        }
        if (heldUntil.size >= HELD_LIMIT) heldUntil.delete(heldUntil.keys().next().value as string);
        heldUntil.set(address, Date.now() + rejection.msBeforeNext);
        throw refuse(rejection.msBeforeNext);
      }
    },
  };
}
