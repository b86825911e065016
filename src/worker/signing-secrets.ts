/**
 * Resolves the secrets that sign a claimed dispatch, decrypting each endpoint's secret once per
 * version (the cache is keyed by the endpoint's updated_at, which changes on rotation).
 */
import type { SecretBox } from '../crypto/secret-box.ts';
import type { SigningSecrets } from '../delivery/signature.ts';
import type { ClaimedDispatch } from '../ledger/dispatches.ts';

export type SecretResolver = (d: ClaimedDispatch, now: number) => SigningSecrets | null;

export function createSecretResolver(box: SecretBox, fallbackSecret: string | undefined): SecretResolver {
  const cache = new Map<string, { version: number; current: string | null; previous: string | null; previousUntil: number }>();
  return (d, now) => {
    const version = d.endpoint_updated_at.getTime();
    let entry = cache.get(d.webhook_endpoint_id);
    if (!entry || entry.version !== version) {
      entry = {
        version,
        current: d.secret ? box.open(d.secret) : null,
        previous: d.previous_secret ? box.open(d.previous_secret) : null,
        previousUntil: d.previous_secret_expires_at?.getTime() ?? 0,
      };
      if (cache.size > 10_000) cache.clear();
      cache.set(d.webhook_endpoint_id, entry);
    }
    // n8n workflows have no secret of their own in the seed: they are signed with WEBHOOK_SECRET.
    const current = entry.current ?? fallbackSecret;
    if (!current) return null;
    return { current, previous: entry.previous && entry.previousUntil > now ? entry.previous : null };
  };
}
