/**
 * Encryption at rest: AES-256-GCM with a keyring. Each ciphertext names the key that sealed it
 * (`enc:v1:<keyId>:<iv>:<tag>:<data>`, base64url parts), so keys rotate by adding a new first key
 * while older ones keep opening what they sealed.
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';

const PREFIX = 'enc:v1:';
const IV_BYTES = 12;

export class SecretBoxError extends Error {
  override name = 'SecretBoxError';
}

export type SecretBox = {
  readonly primaryKeyId: string;
  seal(plaintext: string): string;
  open(ciphertext: string): string;
  isSealed(value: string): boolean;
};

/** Parses `keyId:base64key[,keyId:base64key…]`; the first key seals. */
export function parseKeyring(spec: string): Map<string, Buffer> {
  const keys = new Map<string, Buffer>();
  for (const part of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const colon = part.indexOf(':');
    if (colon < 1) throw new SecretBoxError('encryption key entries look like keyId:base64key');
    const id = part.slice(0, colon);
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(id)) throw new SecretBoxError(`encryption key id "${id}" must be 1-32 of [A-Za-z0-9_-]`);
    const key = Buffer.from(part.slice(colon + 1), 'base64');
    if (key.length !== 32) throw new SecretBoxError(`encryption key "${id}" must be 32 bytes of base64 (got ${key.length})`);
    keys.set(id, key);
  }
  if (keys.size === 0) throw new SecretBoxError('no encryption keys given');
  return keys;
}

export function generateKeyringSpec(keyId = 'k1'): string {
  return `${keyId}:${randomBytes(32).toString('base64')}`;
}

export function createSecretBox(keyring: Map<string, Buffer>): SecretBox {
  // Imported once: a raw Buffer key is re-imported by every createCipheriv call (seen in the ingest profile).
  const keys = new Map<string, KeyObject>([...keyring].map(([id, raw]) => [id, createSecretKey(raw)]));
  const [primaryKeyId, primaryKey] = [...keys.entries()][0] as [string, KeyObject];
  return {
    primaryKeyId,
    seal(plaintext) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', primaryKey, iv);
      const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      return `${PREFIX}${primaryKeyId}:${iv.toString('base64url')}:${tag.toString('base64url')}:${data.toString('base64url')}`;
    },
    open(ciphertext) {
      if (!ciphertext.startsWith(PREFIX)) throw new SecretBoxError('value is not sealed');
      const [keyId, iv, tag, data] = ciphertext.slice(PREFIX.length).split(':');
      const key = keyId ? keys.get(keyId) : undefined;
      if (!key || iv === undefined || tag === undefined || data === undefined) {
        throw new SecretBoxError(`cannot open a value sealed with key "${keyId}": key not in the keyring`);
      }
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
    },
    isSealed(value) {
      return value.startsWith(PREFIX);
    },
  };
}
