// Signing exactly as Carteiro signs a delivery, so that the ceiling and the
// baseline pay the same per-request crypto cost as the real dispatcher.
//
// Two schemes are emitted side by side:
//  - legacy:  X-Webhook-Signature: sha256=<hex HMAC-SHA256("{ts}.{body}")>,
//             keyed with the secret string's UTF-8 bytes (the whole string,
//             "whsec_" prefix included, as consumers paste it);
//  - Standard Webhooks: webhook-signature: v1,<base64 HMAC-SHA256("{id}.{ts}.{body}")>,
//             keyed with the base64-decoded part after "whsec_".
import { createHmac, createSecretKey } from 'node:crypto';

export const USER_AGENT = 'AgentesDeConversao-Webhook/1.0';

export type SignedHeaders = {
  'content-type': string;
  'user-agent': string;
  'x-webhook-signature': string;
  'x-webhook-timestamp': string;
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
};

export interface Signer {
  /** Headers for one delivery. `timestampSec` defaults to the current unix second. */
  headers(id: string, body: string, timestampSec?: number): SignedHeaders;
}

/** A fixed secret for benchmarks: "whsec_" + base64 of 32 bytes. */
export const BENCH_SECRET = 'whsec_' + Buffer.alloc(32, 7).toString('base64');

/**
 * Key material is derived once per secret, not per request. The keys are
 * KeyObjects: handing createHmac a raw Buffer re-imports the key on every
 * call (~11 µs each on this machine, i.e. ~22 of ~27 µs per signed delivery);
 * a KeyObject brings a ~1 KB signature pair down to ~5 µs.
 */
export function createSigner(secret: string = BENCH_SECRET): Signer {
  const legacyKey = createSecretKey(Buffer.from(secret, 'utf8'));
  const stdKey = createSecretKey(Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64'));
  return {
    headers(id, body, timestampSec = Math.floor(Date.now() / 1000)) {
      const ts = String(timestampSec);
      const legacy = createHmac('sha256', legacyKey).update(`${ts}.${body}`, 'utf8').digest('hex');
      const std = createHmac('sha256', stdKey).update(`${id}.${ts}.${body}`, 'utf8').digest('base64');
      return {
        'content-type': 'application/json',
        'user-agent': USER_AGENT,
        'x-webhook-signature': `sha256=${legacy}`,
        'x-webhook-timestamp': ts,
        'webhook-id': id,
        'webhook-timestamp': ts,
        'webhook-signature': `v1,${std}`,
      };
    },
  };
}
