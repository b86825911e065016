/**
 * Limits per user id, resolved: a user's override, else its organization's default, else the
 * server's (config.users). Ingestion reads them on every request that names a user, so they are
 * cached for CACHE_TTL_MS per organization and user, as API keys are: a change made through this
 * process applies at once (`forget`), through another within the TTL.
 */
import type { Config } from '../../config/config.ts';
import type { Sql } from '../../ledger/connection.ts';
import { readUserLimits, type StoredUserLimits } from '../../ledger/user-limits.ts';

const CACHE_TTL_MS = 5_000;
const CACHE_MAX_ENTRIES = 10_000;

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
  return {
    async get(organizationId, userId) {
      const hit = cache.get(`${organizationId}\u0000${userId}`);
      if (hit && Date.now() - hit.at < CACHE_TTL_MS) return hit.limits;
      const { overridden: _, ...limits } = await fresh(organizationId, userId);
      return limits;
    },
    fresh,
    forget(organizationId) {
      for (const key of cache.keys()) if (key.startsWith(`${organizationId}\u0000`)) cache.delete(key);
    },
  };
}
