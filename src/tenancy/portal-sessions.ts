/**
 * Portal session tokens: `cp_sess_` + 43 base64url characters (256 random bits), stored as their
 * SHA-256 like API keys (api-key-authenticator.ts says why a plain hash is enough for a random 256-bit secret).
 *
 * Unlike API keys, a token is looked up on every request, uncached: portal traffic is a person
 * clicking, and an uncached lookup makes a revocation or an expiry take effect at once, in every API
 * process. Expiry is judged by the ledger's clock (`expires_at > now()`), one clock for all processes.
 */
import { randomBytes } from 'node:crypto';
import type { Sql } from '../ledger/connection.ts';
import { findLivePortalSessionByHash } from '../ledger/portal-sessions.ts';
import { hashApiKey } from './api-key-authenticator.ts';
import type { PortalPrincipal } from './portal-principal.ts';

const PORTAL_TOKEN_PREFIX = 'cp_sess_';
/** Characters of the token kept in the ledger and shown in listings ("cp_sess_" + 6). */
const PORTAL_TOKEN_SHOWN_CHARS = 14;
const PORTAL_TOKEN_PATTERN = /^cp_sess_[A-Za-z0-9_-]{43}$/;

/** Looks a bearer token up; null when it is not one this authenticator knows (tenancy/principal.ts's Authenticator). */
type TokenLookup<P> = (token: string) => Promise<P | null>;

export type NewPortalToken = { token: string; tokenHash: string; prefix: string };

export function generatePortalToken(): NewPortalToken {
  const token = PORTAL_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  return { token, tokenHash: hashApiKey(token), prefix: token.slice(0, PORTAL_TOKEN_SHOWN_CHARS) };
}

export function createPortalSessionAuthenticator(sql: Sql): TokenLookup<PortalPrincipal> {
  return async (token) => {
    // Anything not shaped like a portal token is rejected without a query.
    if (!PORTAL_TOKEN_PATTERN.test(token)) return null;
    const row = await findLivePortalSessionByHash(sql, hashApiKey(token));
    if (!row) return null;
    const principal: PortalPrincipal = {
      kind: 'portal',
      organizationId: row.organization_id,
      userId: row.user_id,
      sessionId: row.id,
      scope: row.scope,
      theme: row.theme,
    };
    return principal;
  };
}

/** Tries each authenticator in turn; the first that knows the token wins. */
export function firstAuthenticator<P>(...authenticators: TokenLookup<P>[]): TokenLookup<P> {
  return async (token) => {
    for (const authenticate of authenticators) {
      const principal = await authenticate(token);
      if (principal) return principal;
    }
    return null;
  };
}
