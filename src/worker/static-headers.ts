/**
 * The static headers of a claimed dispatch's endpoint (migration 0027), opened once per endpoint
 * version. Their values are sealed in the ledger (they often carry the receiver's credentials), and
 * opening them per delivery would put an AES-GCM decryption per header on the hot path. The claim
 * brings the sealed map with the dispatch (no query of its own); the cache is keyed by the endpoint's
 * updated_at, which every change of its headers moves.
 */
import type { SecretBox } from '../crypto/secret-box.ts';
import type { ClaimedDispatch } from '../ledger/claims.ts';

/** The endpoint's static headers, names in lower case; null when it has none. Throws when a value cannot be opened. */
export type StaticHeaderResolver = (d: ClaimedDispatch) => Readonly<Record<string, string>> | null;

const CACHE_LIMIT = 10_000;

export function createStaticHeaderResolver(box: Pick<SecretBox, 'open'>): StaticHeaderResolver {
  const cache = new Map<string, { version: number; headers: Readonly<Record<string, string>> }>();
  return (d) => {
    if (!d.static_headers) return null;
    const version = d.endpoint_updated_at.getTime();
    let entry = cache.get(d.webhook_endpoint_id);
    // The newest version seen wins, as for signing secrets: a dispatch claimed before a change that
    // sends after a later claim brought the new headers sends those.
    if (!entry || entry.version < version) {
      const headers: Record<string, string> = {};
      for (const [name, sealed] of Object.entries(d.static_headers)) headers[name.toLowerCase()] = box.open(sealed);
      entry = { version, headers: Object.freeze(headers) };
      if (cache.size > CACHE_LIMIT) cache.clear();
      cache.set(d.webhook_endpoint_id, entry);
    }
    return entry.headers;
  };
}
