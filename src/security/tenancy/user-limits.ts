/**
 * Limits per user id, resolved: a user's override, else its organization's default, else the
 * server's (config.users). Ingestion reads them on every request that names a user, so they are
 * cached for CACHE_TTL_MS per organization and user, as API keys are: a change made through this
 * process applies at once (`forget`), through another within the TTL.
 */
import type { Config } from '../../config/config.ts';
import type { Sql } from '../../ledger/connection.ts';
import { readUserLimits, type StoredUserLimits } from '../../ledger/user-limits.ts';
import { withTimeout } from '../../util/timeout.ts';

const CACHE_TTL_MS = 5_000;
const CACHE_MAX_ENTRIES = 10_000;
/**
 * How long ingestion waits for a user's limits it has never read. Past it (a ledger restarting, a
 * lock), the server's defaults apply to that request: the limit is a guard, and an event must never
 * wait on it longer than on its own commit. Measured before: during a Postgres restart an ingest
 * request naming a user waited for this read and then for its commit, 10.4 s in all.
 */
const FIRST_READ_TIMEOUT_MS = 500;

export type EffectiveUserLimits = {
  max_endpoints: number;
  /** 0: no limit. */
  events_per_second: number;
  events_burst: number;
};

export function resolveUserLimits(stored: StoredUserLimits, defaults: Config['users']): EffectiveUserLimits {
  const { organization: o, user: u } = stored;
  return {
    max_endpoints: u?.max_endpoints ?? o?.max_endpoints_per_user ?? defaults.maxEndpoints,
    events_per_second: u?.events_per_second ?? o?.user_events_per_second ?? defaults.eventsPerSecond,
    events_burst: u?.events_burst ?? o?.user_events_burst ?? defaults.eventsBurst,
  };
}

export type UserLimitsReader = {
  /** Read through the cache (ingestion). */
  get(organizationId: string, userId: string): Promise<EffectiveUserLimits>;
  /** Read from the ledger (quotas, and what the API shows). */
  fresh(organizationId: string, userId: string): Promise<EffectiveUserLimits & { overridden: boolean }>;
  /** Drops an organization's entries (after its defaults or one of its users' overrides changed). */
  forget(organizationId: string): void;
};

export function createUserLimitsReader(sql: Sql, defaults: Config['users']): UserLimitsReader {
  const cache = new Map<string, { limits: EffectiveUserLimits; at: number }>();
  const fresh = async (organizationId: string, userId: string) => {
    const stored = await readUserLimits(sql, organizationId, userId);
    const limits = resolveUserLimits(stored, defaults);
    const key = `${organizationId}\u0000${userId}`;
    if (cache.size >= CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
    cache.set(key, { limits, at: Date.now() });
    return { ...limits, overridden: stored.user !== undefined };
  };
  const refreshing = new Map<string, Promise<unknown>>();
  /** One read at a time per user; its failure leaves the cache as it was. */
  const refresh = (organizationId: string, userId: string, key: string) => {
    let pending = refreshing.get(key);
    if (!pending) {
      pending = fresh(organizationId, userId).catch(() => undefined).finally(() => refreshing.delete(key));
      refreshing.set(key, pending);
    }
    return pending;
  };
  return {
    async get(organizationId, userId) {
      const key = `${organizationId}\u0000${userId}`;
      const hit = cache.get(key);
      if (hit) {
        // Stale: served as is while one read in the background brings it up to date.
        if (Date.now() - hit.at >= CACHE_TTL_MS) void refresh(organizationId, userId, key);
        return hit.limits;
      }
      try {
        await withTimeout(refresh(organizationId, userId, key), FIRST_READ_TIMEOUT_MS, () => new Error('user limits read timed out'));
      } catch {
        /* the defaults below */
      }
      return cache.get(key)?.limits ?? resolveUserLimits({ organization: undefined, user: undefined }, defaults);
    },
    fresh,
    forget(organizationId) {
      for (const key of cache.keys()) if (key.startsWith(`${organizationId}\u0000`)) cache.delete(key);
    },
  };
}
