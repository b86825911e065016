/**
 * Resolves the secrets that sign a claimed dispatch, decrypting each endpoint's secret once per
 * version (the cache is keyed by the endpoint's updated_at, which changes on rotation).
 */
import type { SecretBox } from '../crypto/secret-box.ts';
import { prepareSigningKeys, type SigningKeys } from '../delivery/signature.ts';
import type { ClaimedDispatch } from '../ledger/dispatches.ts';

export type SecretResolver = (d: ClaimedDispatch, now: number) => SigningKeys | null;

const CACHE_LIMIT = 10_000;

export function createSecretResolver(box: SecretBox, fallbackSecret: string | undefined): SecretResolver {
  type Entry = { version: number; withPrevious: SigningKeys | null; alone: SigningKeys | null; previousUntil: number };
  const cache = new Map<string, Entry>();
  return (d, now) => {
    const version = d.endpoint_updated_at.getTime();
    let entry = cache.get(d.webhook_endpoint_id);
    // The newest version seen wins: a dispatch claimed before a rotation, signed after a later claim
    // brought the new secret, signs with the new one (signing happens when a connection takes it).
    if (!entry || entry.version < version) {
      // n8n workflows have no secret of their own in the seed: they are signed with WEBHOOK_SECRET.
      const current = d.secret ? box.open(d.secret) : fallbackSecret;
      const previous = d.previous_secret ? box.open(d.previous_secret) : null;
      entry = {
        version,
        alone: current ? prepareSigningKeys({ current, previous: null }) : null,
        withPrevious: current && previous ? prepareSigningKeys({ current, previous }) : null,
        previousUntil: d.previous_secret_expires_at?.getTime() ?? 0,
      };
      if (cache.size > CACHE_LIMIT) cache.clear();
      cache.set(d.webhook_endpoint_id, entry);
    }
    return entry.withPrevious && entry.previousUntil > now ? entry.withPrevious : entry.alone;
  };
}
