/**
 * Webhook signatures, two schemes on every request:
 * - the seed's: `X-Webhook-Signature: sha256=<hex HMAC-SHA256("{timestamp}.{body}")>` keyed with the
 *   secret string's bytes, plus `X-Webhook-Timestamp`;
 * - Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>` keyed
 *   with the base64 part of a `whsec_` secret, so `standardwebhooks`/`svix` verify it as is.
 * During a secret rotation both secrets sign (space-separated in `webhook-signature`).
 */
import { createHmac, createSecretKey, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';

export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(24).toString('base64');
}

/** Key bytes for the Standard Webhooks scheme: base64 after `whsec_`, or the raw bytes of any other secret. */
export function standardKey(secret: string): Buffer {
  return secret.startsWith(SECRET_PREFIX) ? Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64') : Buffer.from(secret, 'utf8');
}

// The body is fed to the HMAC after its prefix rather than concatenated to it: the worker signs the
// very bytes it sends, encoded once, and no second copy of every payload is made per signature.
export function seedSignature(secret: string | KeyObject, timestamp: number, body: string | Buffer): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex');
}

export function standardSignature(key: Buffer | KeyObject, msgId: string, timestamp: number, body: string | Buffer): string {
  return 'v1,' + createHmac('sha256', key).update(`${msgId}.${timestamp}.`).update(body).digest('base64');
}

export type SigningSecrets = { current: string; previous: string | null };

/** A secret's two HMAC keys, imported once: importing a raw key on every HMAC costs more than the HMAC. */
type KeyPair = { seed: KeyObject; standard: KeyObject };
export type SigningKeys = { current: KeyPair; previous: KeyPair | null };

function keyPair(secret: string): KeyPair {
  return { seed: createSecretKey(Buffer.from(secret, 'utf8')), standard: createSecretKey(standardKey(secret)) };
}

export function prepareSigningKeys(secrets: SigningSecrets): SigningKeys {
  return { current: keyPair(secrets.current), previous: secrets.previous ? keyPair(secrets.previous) : null };
}

export function signatureHeaders(secrets: SigningSecrets | SigningKeys, msgId: string, timestamp: number, body: string | Buffer): Record<string, string> {
  const keys = typeof secrets.current === 'string' ? prepareSigningKeys(secrets as SigningSecrets) : (secrets as SigningKeys);
  const standard = [standardSignature(keys.current.standard, msgId, timestamp, body)];
  const headers: Record<string, string> = {
    'x-webhook-signature': seedSignature(keys.current.seed, timestamp, body),
    'x-webhook-timestamp': String(timestamp),
    'webhook-id': msgId,
    'webhook-timestamp': String(timestamp),
  };
  if (keys.previous) {
    standard.push(standardSignature(keys.previous.standard, msgId, timestamp, body));
    headers['x-webhook-signature-previous'] = seedSignature(keys.previous.seed, timestamp, body);
  }
  headers['webhook-signature'] = standard.join(' ');
  return headers;
}

/** The seed's verify function, in TypeScript, for receivers written in Node. */
export function verifySeedSignature(secret: string, timestamp: string, body: string, signature: string): boolean {
  const expected = Buffer.from(seedSignature(secret, Number(timestamp), body));
  const given = Buffer.from(signature);
  return expected.length === given.length && timingSafeEqual(expected, given);
}

/** Constant-time comparison of two signature strings. */
function sameSignature(expected: string, given: string): boolean {
  const a = Buffer.from(expected);
  const b = Buffer.from(given);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * The Standard Webhooks check: whether any `v1,` entry of a `webhook-signature` header (entries are
 * space-separated; two during a rotation) is this secret's signature of `{id}.{timestamp}.{body}`.
 */
export function verifyStandardSignature(secret: string, msgId: string, timestamp: string, body: string | Buffer, header: string): boolean {
  const expected = standardSignature(standardKey(secret), msgId, Number(timestamp), body);
  return header.split(' ').some((entry) => entry.startsWith('v1,') && sameSignature(expected, entry));
}

/** How one scheme came out: signed with this secret, signed but not with it, or not signed at all. */
export type SchemeVerdict = 'valid' | 'invalid' | 'missing';

export type WebhookVerification = {
  seed: SchemeVerdict;
  standard: SchemeVerdict;
  /** Seconds between the request's timestamp and now (positive: in the past); null without one. */
  ageSeconds: number | null;
  /** The timestamp is further from now than the tolerance allows. */
  stale: boolean;
  /** At least one scheme is signed, every signed one verifies, and the timestamp is fresh. */
  ok: boolean;
};

/**
 * Checks a received request's signatures, both schemes, as a receiver would: `headers` with lower-case
 * names, `body` the raw bytes. `toleranceSeconds` bounds the timestamp's distance from `now` (0: not
 * checked). The seed's scheme also accepts `x-webhook-signature-previous` (a rotation's old secret).
 */
export function verifyWebhook(
  secret: string,
  headers: Record<string, string | undefined>,
  body: string | Buffer,
  opts: { toleranceSeconds?: number; nowMs?: number } = {},
): WebhookVerification {
  const text = typeof body === 'string' ? body : body.toString('utf8');
  const seedTs = headers['x-webhook-timestamp'];
  const seedSigs = [headers['x-webhook-signature'], headers['x-webhook-signature-previous']].filter((s): s is string => !!s);
  let seed: SchemeVerdict = 'missing';
  if (seedSigs.length) {
    seed = seedTs && /^\d+$/.test(seedTs) && seedSigs.some((s) => verifySeedSignature(secret, seedTs, text, s)) ? 'valid' : 'invalid';
  }
  const id = headers['webhook-id'];
  const stdTs = headers['webhook-timestamp'];
  const stdSig = headers['webhook-signature'];
  let standard: SchemeVerdict = 'missing';
  if (stdSig) standard = id && stdTs && /^\d+$/.test(stdTs) && verifyStandardSignature(secret, id, stdTs, body, stdSig) ? 'valid' : 'invalid';
  const ts = stdTs ?? seedTs;
  const ageSeconds = ts && /^\d+$/.test(ts) ? Math.round((opts.nowMs ?? Date.now()) / 1000 - Number(ts)) : null;
  const tolerance = opts.toleranceSeconds ?? 0;
  const stale = tolerance > 0 && (ageSeconds === null || Math.abs(ageSeconds) > tolerance);
  const signed = [seed, standard].filter((v) => v !== 'missing');
  return { seed, standard, ageSeconds, stale, ok: signed.length > 0 && signed.every((v) => v === 'valid') && !stale };
}
