/**
 * Resolves the secrets that sign a claimed dispatch, decrypting each endpoint's secret once per
 * version (the cache is keyed by the endpoint's updated_at, which changes on rotation).
 */
import type { SecretBox } from '../crypto/secret-box.ts';
import { prepareSigningKeys, type SigningKeys } from '../delivery/signature.ts';
import type { ClaimedDispatch } from '../ledger/claims.ts';

/** Throws NoSigningSecretError rather than let a delivery go out unsigned. */
export type SecretResolver = (d: ClaimedDispatch, now: number) => SigningKeys;

const CACHE_LIMIT = 10_000;

export function createSecretResolver(box: SecretBox, fallbackSecret: string | undefined): SecretResolver {
  type Entry = { version: number; withPrevious: SigningKeys | null; alone: SigningKeys; previousUntil: number };
  const cache = new Map<string, Entry>();
  return (d, now) => {
    const version = d.endpoint_updated_at.getTime();
    let entry = cache.get(d.webhook_endpoint_id);
    // The newest version seen wins: a dispatch claimed before a rotation, signed after a later claim
    // brought the new secret, signs with the new one (signing happens when a connection takes it).
    if (!entry || entry.version < version) {
      // n8n workflows have no secret of their own in the seed: they are signed with WEBHOOK_SECRET.
      const current = d.secret ? box.open(d.secret) : fallbackSecret;
      // Never unsigned: without either secret the attempt fails (and is retried) instead of being sent.
      if (!current) throw new NoSigningSecretError(d.kind);
      const previous = d.previous_secret ? box.open(d.previous_secret) : null;
      entry = {
        version,
        alone: prepareSigningKeys({ current, previous: null }),
        withPrevious: previous ? prepareSigningKeys({ current, previous }) : null,
        previousUntil: d.previous_secret_expires_at?.getTime() ?? 0,
      };
      if (cache.size > CACHE_LIMIT) cache.clear();
      cache.set(d.webhook_endpoint_id, entry);
    }
    return entry.withPrevious && entry.previousUntil > now ? entry.withPrevious : entry.alone;
  };
}

/**
 * A destination with no signing secret: an n8n workflow without one of its own while WEBHOOK_SECRET
 * is unset (registered before workflows got their own). The next start gives it one.
 */
export class NoSigningSecretError extends Error {
  constructor(kind: string) {
    super(
      `no signing secret: this ${kind === 'n8n' ? 'n8n workflow' : 'endpoint'} has no secret of its own and WEBHOOK_SECRET is not set; ` +
        'not sent unsigned (restart Carteiro to give it one, or rotate its secret)',
    );
    this.name = 'NoSigningSecretError';
  }
}
