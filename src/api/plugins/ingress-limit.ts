/**
 * Per-key request limits for the API. Each organization key (and the admin key if configured) may
 * make `ratePerSecond` requests in each second plus, for spikes, `burst` more in each 10 s. Counters
 * live in Redis when there is one, so the limit holds across API processes; without Redis, or while
 * Redis is unreachable, each process counts in memory (rate-limiter-flexible's insurance limiter).
 * Over the limit: 429 with Retry-After (api/error-handler.ts).
 *
 * Runs as an onRequest hook registered after the auth hook, so it sees `request.tenant`; public routes
 * (/health) have no tenant and are not limited.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRedis, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { ApiServices } from '../api-services.ts';
import { RateLimitedError } from '../../errors/errors.ts';

/** What this module uses of the API's services. */
type IngressLimitDeps = Pick<ApiServices, 'config' | 'ledger' | 'redis'>;

const BURST_WINDOW_SECONDS = 10;

export type IngressLimiter = {
  consume(key: string, points?: number): Promise<{ allowed: true; remaining: number } | { allowed: false; retryAfterMs: number }>;
};

/** `name` keeps the counters of limiters with different numbers apart (user-ingress-limit.ts). */
export function createIngressLimiter(services: IngressLimitDeps, opts: { ratePerSecond: number; burst: number; name?: string }): IngressLimiter {
  const keyPrefix = `${services.config.redis.prefix}:${services.ledger.schema}:ingress${opts.name ? `:${opts.name}` : ''}`;
  const make = (name: string, points: number, duration: number): RateLimiterAbstract => {
    const memory = new RateLimiterMemory({ keyPrefix: `${keyPrefix}:${name}`, points, duration });
    return services.redis
      ? new RateLimiterRedis({
          storeClient: services.redis,
          keyPrefix: `${keyPrefix}:${name}`,
          points,
          duration,
          rejectIfRedisNotReady: true,
          insuranceLimiter: memory,
        })
      : memory;
  };
  const rate = make('rate', opts.ratePerSecond, 1);
  const limiter = opts.burst > 0 ? new BurstyRateLimiter(rate, make('burst', opts.burst, BURST_WINDOW_SECONDS)) : rate;
  return {
    async consume(key, points = 1) {
      try {
        const res = await limiter.consume(key, points);
        return { allowed: true, remaining: res.remainingPoints };
      } catch (rejection) {
        if (rejection instanceof RateLimiterRes) return { allowed: false, retryAfterMs: Math.max(1, rejection.msBeforeNext) };
        throw rejection;
      }
    },
  };
}

/** Who is calling (tenancy/principal.ts's Principal, as the auth hook put it on the request). */
type Principal = FastifyRequest['tenant']['principal'];

/** One budget per organization key, per portal session, and one for the admin key. */
function limiterKey(principal: Principal): string {
  if (principal.kind === 'admin') return 'admin';
  return principal.kind === 'portal' ? `portal:${principal.sessionId}` : principal.keyId;
}

export function registerIngressLimit(app: FastifyInstance, services: IngressLimitDeps): void {
  const { ratePerSecond, burst, limitAdmin } = services.config.ingress;
  if (ratePerSecond === 0) return;
  const limiter = createIngressLimiter(services, { ratePerSecond, burst });
  app.addHook('onRequest', async (request, reply) => {
    const principal = request.tenant?.principal;
    if (!principal || (principal.kind === 'admin' && !limitAdmin)) return;
    let verdict: Awaited<ReturnType<IngressLimiter['consume']>>;
    try {
      verdict = await limiter.consume(limiterKey(principal));
    } catch (err) {
      // Both Redis and the in-memory fallback failed: serve the request rather than fail it.
      request.log.warn({ err }, 'ingress rate limiter unavailable; request let through');
      return;
    }
    if (!verdict.allowed) throw new RateLimitedError(Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)));
    reply.header('x-ratelimit-limit', ratePerSecond);
    reply.header('x-ratelimit-remaining', verdict.remaining);
  });
}
