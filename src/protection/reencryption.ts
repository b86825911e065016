/**
 * Key rotation: re-seals the ledger's ciphertexts (endpoint secrets, sealed personal fields) under a
 * secret box's newest key. `carteiro keys reencrypt` (cli/keys-command.ts) runs it.
 */
import type { Sql } from '../ledger/connection.ts';
import { reencryptLedger, type ReencryptCounts } from '../ledger/reencrypt.ts';
import type { SecretBox } from '../crypto/secret-box.ts';
import { createDataProtection } from './data-protection.ts';

/** Re-seals the ledger's ciphertexts under `box`'s newest key. */
export function reencryptWith(sql: Sql, box: SecretBox): Promise<ReencryptCounts> {
  const data = createDataProtection(box, { piiFields: [] });
  return reencryptLedger(sql, {
    primaryKeyId: box.primaryKeyId,
    resealString: (sealed) => box.seal(box.open(sealed)),
    resealValue: (value) => data.reseal(value),
  });
}
