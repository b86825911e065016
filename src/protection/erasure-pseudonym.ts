/**
 * How the audit log names a user without keeping the user id: an erasure must leave nothing that
 * re-identifies the user, yet its record must stay findable by whoever is entitled to ask.
 *
 * The pseudonym is HMAC-SHA256 of the user id under a key derived (HKDF-SHA256, a label of its own)
 * from the admin key. The same id always gives the same pseudonym, so an operator holding the admin
 * key finds an erasure by computing it (GET /audit-log?target_id=<pseudonym>); whoever reads only
 * the database (a dump, a backup, a tenant's role) can neither reverse it nor test guesses against
 * it, which a plain hash of a user id (an e-mail, a CPF) would allow. Changing the admin key changes
 * the pseudonyms of later entries; earlier ones are found with the key that was in use then.
 */
import { createHmac, hkdfSync } from 'node:crypto';

/** HKDF `info`: keys derived from the admin key for other purposes never coincide with this one. */
const LABEL = 'carteiro audit-log user pseudonym v1';
const PSEUDONYM_PREFIX = 'user-hmac:';

export type Pseudonymizer = (userId: string) => string;

export function userPseudonymizer(adminKey: string): Pseudonymizer {
  const key = Buffer.from(hkdfSync('sha256', adminKey, Buffer.alloc(0), LABEL, 32));
  return (userId) => PSEUDONYM_PREFIX + createHmac('sha256', key).update(userId, 'utf8').digest('hex');
}
