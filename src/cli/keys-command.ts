/**
 * `carteiro keys reencrypt`: after putting a new key first in CARTEIRO_ENCRYPTION_KEYS (keeping the
 * old ones after it), re-seals every endpoint secret and sealed personal field under the new key.
 * Once it reports nothing left, the old keys can be dropped from the list.
 */
import type { Config } from '../config/config.ts';
import type { CliCommand } from './sub-command.ts';
import { openLedger } from '../ledger/connection.ts';
import { migrate } from '../ledger/migrate.ts';
import { createSecretBox, parseKeyring } from '../crypto/secret-box.ts';
import { resolveKeys } from '../runtime/local-keys.ts';
import { reencryptWith } from '../protection/reencryption.ts';

const KEYS_USAGE = `usage:
  carteiro keys reencrypt
      re-seal every endpoint secret and sealed personal field under the first key of CARTEIRO_ENCRYPTION_KEYS`;

export const keysCommand: CliCommand = {
  name: 'keys',
  usage: KEYS_USAGE,
  async run(config: Config, args: string[]): Promise<number> {
    if (args[0] !== 'reencrypt' || args.length > 1) {
      console.error(KEYS_USAGE);
      return 2;
    }
    const box = createSecretBox(parseKeyring(resolveKeys(config).encryptionKeys));
    const ledger = await openLedger(config, { poolSize: 2, applicationName: 'carteiro-keys' });
    try {
      await migrate(ledger.sql, ledger.schema);
      const counts = await reencryptWith(ledger.sql, box);
      console.log(
        `re-sealed under key "${box.primaryKeyId}": ${counts.endpoint_secrets} endpoint secrets, ${counts.endpoint_headers} static header values, ${counts.event_fields} personal fields in ${counts.events} events`,
      );
      return 0;
    } finally {
      await ledger.close();
    }
  },
};
