/**
 * Limits per user id, resolved: a user's override, else its organization's default, else the
 * server's (config.users). Ingestion reads them on every request that names a user, so they are
 * cached for CACHE_TTL_MS, as API keys are: per organization (its defaults, and whether any of its
 * users has an override), and per user only in organizations where one has. A change made through
 * this process applies at once (`forget`), through another within the TTL.
 */
import type { Config } from '../config/config.ts';
import type { Sql } from '../ledger/connection.ts';
import { readOrganizationUserLimits, readUserLimits, type StoredUserLimits } from '../ledger/user-limits.ts';
import { withTimeout } from '../util/timeout.ts';

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

/**
 * A value read from the ledger and kept CACHE_TTL_MS: a stale one is served while one read in the
 * background brings it up to date; one never read waits at most FIRST_READ_TIMEOUT_MS, then the
 * caller's fallback applies. A failed read leaves the cache as it was.
 */
function createReadThrough<T>(read: (key: string) => Promise<T>) {
  const cache = new Map<string, { value: T; at: number }>();
  const refreshing = new Map<string, Promise<T | undefined>>();
  const load = async (key: string): Promise<T> => {
    const value = await read(key);
    if (cache.size >= CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
    cache.set(key, { value, at: Date.now() });
    return value;
  };
  const refresh = (key: string) => {
    let pending = refreshing.get(key);
    if (!pending) {
      pending = load(key)
        .catch(() => undefined)
        .finally(() => refreshing.delete(key));
      refreshing.set(key, pending);
    }
    return pending;
  };
  return {
    load,
    async get(key: string): Promise<T | undefined> {
      const hit = cache.get(key);
      if (hit) {
        if (Date.now() - hit.at >= CACHE_TTL_MS) void refresh(key);
        return hit.value;
      }
      try {
        await withTimeout(refresh(key), FIRST_READ_TIMEOUT_MS, () => new Error('limits read timed out'));
      } catch {
        /* the caller's fallback */
      }
      return cache.get(key)?.value;
    },
    forget(prefix: string) {
      for (const key of cache.keys()) if (key.startsWith(prefix)) cache.delete(key);
    },
  };
}

export function createUserLimitsReader(sql: Sql, defaults: Config['users']): UserLimitsReader {
  const SEP = '\u0000';
  const serverDefaults = resolveUserLimits({ organization: undefined, user: undefined }, defaults);
  // Per organization: its defaults, and whether any user of it has an override (one read per
  // organization, not one per user id, which ingestion may see thousands of).
  const organizations = createReadThrough((organizationId) => readOrganizationUserLimits(sql, organizationId));
  const users = createReadThrough(async (key) => {
    const [organizationId, userId] = key.split(SEP) as [string, string];
    return readUserLimits(sql, organizationId, userId);
  });
  const fresh = async (organizationId: string, userId: string) => {
    const stored = await users.load(`${organizationId}${SEP}${userId}`);
    return { ...resolveUserLimits(stored, defaults), overridden: stored.user !== undefined };
  };
  return {
    async get(organizationId, userId) {
      const organization = await organizations.get(organizationId);
      if (!organization) return serverDefaults;
      if (!organization.anyUserOverrides) return resolveUserLimits({ organization: organization.organization, user: undefined }, defaults);
      const stored = await users.get(`${organizationId}${SEP}${userId}`);
      return stored ? resolveUserLimits(stored, defaults) : resolveUserLimits({ organization: organization.organization, user: undefined }, defaults);
    },
    fresh,
    forget(organizationId) {
      organizations.forget(organizationId);
      users.forget(`${organizationId}${SEP}`);
    },
  };
}
