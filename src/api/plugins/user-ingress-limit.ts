/**
 * Ingress limits per user id (docs/portal.md): the events of one user of one organization may arrive
 * at `events_per_second` plus, for spikes, `events_burst` more in each 10 s, whichever key or process
 * sends them. The user is the event's `user_id`, else its `data.user_id` (as ingest reads it); events
 * without one are limited only per key (ingress-limit.ts). A batch counts each event, and is refused
 * whole when one of its users is over: nothing of it is stored.
 *
 * Counters live in Redis when there is one, in memory otherwise or while Redis is unreachable
 * (ingress-limit.ts's limiter). Runs as a preHandler on the ingest routes, after their body is
 * validated; over the limit: 429 naming the user and the limit, with Retry-After.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { UserRateLimitedError } from '../../errors/errors.ts';
import { createIngressLimiter, type IngressLimiter } from './ingress-limit.ts';
import type { UserLimitsReader } from '../../tenancy/user-limits.ts';

/** Longer ids are refused by ingest itself (400); they are not counted here. */
const MAX_USER_ID_LENGTH = 200;
const MAX_LIMITERS = 1_000;

type EventLike = { user_id?: unknown; data?: unknown; organization_id?: unknown };

function userIdOf(user: unknown, data: unknown): string | null {
  if (typeof user === 'string') return user.length <= MAX_USER_ID_LENGTH ? user : null;
  const fromData = data && typeof data === 'object' ? (data as Record<string, unknown>).user_id : undefined;
  if (typeof fromData === 'string' || typeof fromData === 'number') {
    const id = String(fromData);
    return id.length <= MAX_USER_ID_LENGTH ? id : null;
  }
  return null;
}

/** The events of an ingest request as (organization, user) → how many, for the three ingest routes. */
function eventsPerUser(request: FastifyRequest): Map<string, { organizationId: string; userId: string; count: number }> {
  const body = request.body as Record<string, unknown> | undefined;
  const tenantOrg = request.tenant.writeOrganizationId;
  const admin = request.tenant.principal.kind === 'admin';
  const events: { organizationId: string; userId: string | null }[] = [];
  const orgOf = (e: EventLike) => (admin && typeof e.organization_id === 'string' ? e.organization_id : tenantOrg);
  if (Array.isArray(body?.events)) {
    for (const e of body.events as EventLike[]) events.push({ organizationId: orgOf(e), userId: userIdOf(e.user_id, e.data) });
  } else if (request.routeOptions.url?.endsWith('/events/:name')) {
    // The body is the event's data.
    events.push({ organizationId: tenantOrg, userId: userIdOf(undefined, body) });
  } else if (body) {
    events.push({ organizationId: orgOf(body), userId: userIdOf(body.user_id, body.data) });
  }
  const out = new Map<string, { organizationId: string; userId: string; count: number }>();
  for (const e of events) {
    if (e.userId === null) continue;
    const key = `${e.organizationId}\u0000${e.userId}`;
    const entry = out.get(key) ?? { organizationId: e.organizationId, userId: e.userId, count: 0 };
    entry.count += 1;
    out.set(key, entry);
  }
  return out;
}

export function registerUserIngressLimit(app: FastifyInstance, services: Parameters<typeof createIngressLimiter>[0], limits: UserLimitsReader): void {
  // One limiter per distinct (rate, burst): the counters of a user whose limit changes start afresh.
  const limiters = new Map<string, IngressLimiter>();
  const limiterFor = (rate: number, burst: number): IngressLimiter => {
    const name = `user:${rate}:${burst}`;
    let limiter = limiters.get(name);
    if (!limiter) {
      if (limiters.size >= MAX_LIMITERS) limiters.clear();
      limiter = createIngressLimiter(services, { ratePerSecond: rate, burst, name });
      limiters.set(name, limiter);
    }
    return limiter;
  };

  app.addHook('preHandler', async (request) => {
    if (!request.routeOptions.config?.ingest || !request.tenant) return;
    for (const { organizationId, userId, count } of eventsPerUser(request).values()) {
      const { events_per_second: rate, events_burst: burst } = await limits.get(organizationId, userId);
      if (rate === 0) continue;
      let verdict: Awaited<ReturnType<IngressLimiter['consume']>>;
      try {
        verdict = await limiterFor(rate, burst).consume(`${organizationId}:${userId}`, count);
      } catch (err) {
        // Both Redis and the in-memory fallback failed: serve the request rather than fail it.
        request.log.warn({ err }, 'user ingress limiter unavailable; events let through');
        continue;
      }
      if (!verdict.allowed) throw new UserRateLimitedError(Math.max(1, Math.ceil(verdict.retryAfterMs / 1000)), userId, rate, burst);
    }
  });
}
