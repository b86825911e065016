/**
 * Webhook signatures, two schemes on every request:
 * - the seed's: `X-Webhook-Signature: sha256=<hex HMAC-SHA256("{timestamp}.{body}")>` keyed with the
 *   secret string's bytes, plus `X-Webhook-Timestamp`;
 * - Standard Webhooks: `webhook-signature: v1,<base64 HMAC-SHA256("{id}.{timestamp}.{body}")>` keyed
 *   with the base64 part of a `whsec_` secret, so `standardwebhooks`/`svix` verify it as is.
 * During a secret rotation both secrets sign (space-separated in `webhook-signature`).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SECRET_PREFIX = 'whsec_';
export const SIGNATURE_TOLERANCE_SECONDS = 5 * 60;

export function generateWebhookSecret(): string {
  return SECRET_PREFIX + randomBytes(24).toString('base64');
}

/** Key bytes for the Standard Webhooks scheme: base64 after `whsec_`, or the raw bytes of any other secret. */
export function standardKey(secret: string): Buffer {
  return secret.startsWith(SECRET_PREFIX) ? Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64') : Buffer.from(secret, 'utf8');
}

export function seedSignature(secret: string, timestamp: number, body: string): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');
}

export function standardSignature(key: Buffer, msgId: string, timestamp: number, body: string): string {
  return 'v1,' + createHmac('sha256', key).update(`${msgId}.${timestamp}.${body}`).digest('base64');
}

export type SigningSecrets = { current: string; previous: string | null };

export function signatureHeaders(secrets: SigningSecrets, msgId: string, timestamp: number, body: string): Record<string, string> {
  const standard = [standardSignature(standardKey(secrets.current), msgId, timestamp, body)];
  const headers: Record<string, string> = {
    'x-webhook-signature': seedSignature(secrets.current, timestamp, body),
    'x-webhook-timestamp': String(timestamp),
    'webhook-id': msgId,
    'webhook-timestamp': String(timestamp),
  };
  if (secrets.previous) {
    standard.push(standardSignature(standardKey(secrets.previous), msgId, timestamp, body));
    headers['x-webhook-signature-previous'] = seedSignature(secrets.previous, timestamp, body);
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
