/**
 * Keys for the embedded default. With no CARTEIRO_ADMIN_KEY / CARTEIRO_ENCRYPTION_KEYS, a first
 * start makes them and keeps them in the data folder (mode 0600) beside the embedded database, so a
 * restart finds the same keys. With a real DATABASE_URL the keys must come from the environment:
 * several processes on several machines have to agree on them.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Config } from '../config/config.ts';
import { ConfigError } from '../config/config.ts';
import { generateKeyringSpec } from '../crypto/secret-box.ts';

export type ResolvedKeys = { adminKey: string; encryptionKeys: string; generatedAdminKey: boolean };

export function resolveKeys(config: Config): ResolvedKeys {
  const embedded = !config.database.url;
  const missing = [!config.keys.adminKey && 'CARTEIRO_ADMIN_KEY', !config.keys.encryptionKeys && 'CARTEIRO_ENCRYPTION_KEYS'].filter(Boolean);
  if (!embedded && missing.length) {
    throw new ConfigError(`${missing.join(' and ')} must be set when DATABASE_URL is (every process must share them)`);
  }
  const dir = resolve(config.database.dataDir);
  let generatedAdminKey = false;
  const adminKey =
    config.keys.adminKey ??
    readOrCreate(dir, 'admin-key', () => {
      generatedAdminKey = true;
      return `ck_admin_${randomBytes(24).toString('base64url')}`;
    });
  const encryptionKeys = config.keys.encryptionKeys ?? readOrCreate(dir, 'encryption-keys', () => generateKeyringSpec('k1'));
  return { adminKey, encryptionKeys, generatedAdminKey };
}

function readOrCreate(dir: string, name: string, make: () => string): string {
  const file = join(dir, name);
  if (existsSync(file)) return readFileSync(file, 'utf8').trim();
  // Private: it holds the keys and the embedded database (see ledger/connection.ts).
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const value = make();
  try {
    // Exclusive create: of two processes starting at once on a new folder, both must end up with the
    // same key, the first one's, rather than the second overwriting a key the first already uses.
    writeFileSync(file, value + '\n', { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    return readFileSync(file, 'utf8').trim();
  }
  return value;
}

/**
 * The admin key the embedded default generated, if this data folder has one: read only, never made.
 * The operator CLI uses it so `carteiro send` works against a local `npm start` with no flags.
 */
export function readLocalAdminKey(config: Config): string | undefined {
  const file = join(resolve(config.database.dataDir), 'admin-key');
  try {
    return readFileSync(file, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}
