/** The admin key from the environment, compared in constant time. */
import { createHash, timingSafeEqual } from 'node:crypto';
import type { Authenticator, Principal } from './principal.ts';

const digest = (s: string) => createHash('sha256').update(s).digest();

export function adminAuthenticator(adminKey: string, next?: Authenticator): Authenticator {
  const expected = digest(adminKey);
  const admin: Principal = { kind: 'admin' };
  return async (token) => {
    if (timingSafeEqual(digest(token), expected)) return admin;
    return next ? next(token) : null;
  };
}
