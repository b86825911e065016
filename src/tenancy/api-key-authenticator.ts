/**
 * Organization API keys: `ck_live_` + 43 base64url characters (256 random bits). Only the key's
 * SHA-256 is stored; a plain hash is enough for a random 256-bit secret (a slow password hash only
 * helps against guessable inputs) and lets a lookup be one indexed equality.
 *
 * The authenticator caches a resolved key for KEY_CACHE_TTL_MS so the hot ingestion path does not pay
 * a query per request. Revoking through this process takes effect at once (`forget`); another API
 * process notices within the TTL. last_used_at is written at most once per LAST_USED_WRITE_INTERVAL_MS
 * per key and process: writing it on every request would turn every read into a hot-row update.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Sql } from '../ledger/connection.ts';
import { findActiveApiKeyByHash, touchApiKeys } from '../ledger/api-keys.ts';
import type { Authenticator, Principal } from './principal.ts';

export const API_KEY_PREFIX = 'ck_live_';
/** Characters of the key kept in the ledger and shown in listings ("ck_live_" + 6). */
export const API_KEY_SHOWN_CHARS = 14;
const API_KEY_PATTERN = /^ck_live_[A-Za-z0-9_-]{43}$/;
const KEY_CACHE_TTL_MS = 5_000;
const KEY_CACHE_MAX_ENTRIES = 10_000;
const LAST_USED_WRITE_INTERVAL_MS = 60_000;

export type NewApiKey = { key: string; keyHash: string; prefix: string };

export function generateApiKey(): NewApiKey {
  const key = API_KEY_PREFIX + randomBytes(32).toString('base64url');
  return { key, keyHash: hashApiKey(key), prefix: key.slice(0, API_KEY_SHOWN_CHARS) };
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export type ApiKeyAuthenticator = {
  authenticate: Authenticator;
  /** Drops a key from this process' cache (after revoking it). */
  forget(keyId: string): void;
};

export function createApiKeyAuthenticator(sql: Sql, log: Logger): ApiKeyAuthenticator {
  const cache = new Map<string, { principal: Principal & { kind: 'organization' }; at: number }>();
  const lastWritten = new Map<string, number>();

  function noteUse(keyId: string): void {
    const now = Date.now();
    if (now - (lastWritten.get(keyId) ?? 0) < LAST_USED_WRITE_INTERVAL_MS) return;
    if (lastWritten.size >= KEY_CACHE_MAX_ENTRIES) lastWritten.clear();
    lastWritten.set(keyId, now);
    touchApiKeys(sql, [keyId]).catch((err) => log.warn({ err, keyId }, 'could not record an API key use'));
  }

  return {
    async authenticate(token) {
      // Anything not shaped like a key is rejected without a query, so junk tokens cost nothing.
      if (!API_KEY_PATTERN.test(token)) return null;
      const hash = hashApiKey(token);
      const hit = cache.get(hash);
      if (hit && Date.now() - hit.at < KEY_CACHE_TTL_MS) {
        noteUse(hit.principal.keyId);
        return hit.principal;
      }
      const row = await findActiveApiKeyByHash(sql, hash);
      if (!row) {
        cache.delete(hash);
        return null;
      }
      const principal = { kind: 'organization', organizationId: row.organization_id, keyId: row.id } as const;
      if (cache.size >= KEY_CACHE_MAX_ENTRIES) cache.delete(cache.keys().next().value as string);
      cache.set(hash, { principal, at: Date.now() });
      noteUse(row.id);
      return principal;
    },
    forget(keyId) {
      for (const [hash, entry] of cache) if (entry.principal.keyId === keyId) cache.delete(hash);
    },
  };
}
