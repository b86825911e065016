import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { generateWebhookSecret, signatureHeaders, verifySeedSignature } from '../../src/delivery/signature.ts';
import { createSecretBox, generateKeyringSpec, parseKeyring } from '../../src/crypto/secret-box.ts';
import { matchingPatterns, isValidEventFilter } from '../../src/catalog/patterns.ts';
import { buildEnvelope } from '../../src/delivery/envelope.ts';
import { createSecretResolver } from '../../src/worker/signing-secrets.ts';
import type { ClaimedDispatch } from '../../src/ledger/claims.ts';

test("the seed's signature is sha256=hex(HMAC(secret, '{timestamp}.{body}'))", () => {
  const secret = generateWebhookSecret();
  const body = '{"a": 1}';
  const headers = signatureHeaders({ current: secret, previous: null }, 'msg_1', 1700000000, body);
  const expected = createHmac('sha256', secret).update(`1700000000.${body}`).digest('hex');
  assert.equal(headers['x-webhook-signature'], `sha256=${expected}`);
  assert.equal(headers['x-webhook-timestamp'], '1700000000');
  assert.ok(verifySeedSignature(secret, '1700000000', body, headers['x-webhook-signature'] as string));
  assert.ok(!verifySeedSignature(secret, '1700000001', body, headers['x-webhook-signature'] as string));
});

test('the Standard Webhooks signature verifies with the standardwebhooks package, for both secrets in a rotation', () => {
  const oldSecret = generateWebhookSecret();
  const newSecret = generateWebhookSecret();
  const body = JSON.stringify({ id: 'e1', type: 'user.registered', data: {} });
  const ts = Math.floor(Date.now() / 1000);
  const headers = signatureHeaders({ current: newSecret, previous: oldSecret }, 'e1', ts, body);
  for (const secret of [oldSecret, newSecret]) {
    assert.doesNotThrow(() => new Webhook(secret).verify(body, headers));
  }
  assert.throws(() => new Webhook(generateWebhookSecret()).verify(body, headers));
  assert.ok(verifySeedSignature(newSecret, String(ts), body, headers['x-webhook-signature'] as string));
  assert.ok(verifySeedSignature(oldSecret, String(ts), body, headers['x-webhook-signature-previous'] as string));
});

test('the secret box seals with the first key and opens with any key in the ring', () => {
  const k1 = generateKeyringSpec('k1');
  const k2 = generateKeyringSpec('k2');
  const before = createSecretBox(parseKeyring(k1));
  const sealed = before.seal('whsec_abc');
  assert.match(sealed, /^enc:v1:k1:/);
  assert.ok(!sealed.includes('whsec_abc'));
  const after = createSecretBox(parseKeyring(`${k2},${k1}`));
  assert.equal(after.open(sealed), 'whsec_abc');
  assert.match(after.seal('x'), /^enc:v1:k2:/);
  assert.throws(() => createSecretBox(parseKeyring(k2)).open(sealed), /key "k1"/);
  assert.throws(() => parseKeyring('k1:short'), /32 bytes/);
});

test('event filters match exact names, prefix wildcards and *', () => {
  assert.deepEqual(
    matchingPatterns('integration.whatsapp.connected').sort(),
    ['*', 'integration.*', 'integration.whatsapp.*', 'integration.whatsapp.connected'].sort(),
  );
  assert.ok(isValidEventFilter('integration.*'));
  assert.ok(isValidEventFilter('*'));
  assert.ok(!isValidEventFilter('integ*'));
  assert.ok(!isValidEventFilter('a..b'));
});

test('the envelope is {id, type, timestamp, data} with data spliced verbatim', () => {
  const body = buildEnvelope('e1', 'agent.created', new Date('2026-01-02T03:04:05.000Z'), '{"name": "Jo\\u00e3o"}');
  assert.deepEqual(JSON.parse(body), { id: 'e1', type: 'agent.created', timestamp: '2026-01-02T03:04:05.000Z', data: { name: 'João' } });
});

test('a dispatch claimed before a rotation, signed after a newer claim, signs with the newer secret', () => {
  const box = createSecretBox(parseKeyring(generateKeyringSpec()));
  const resolve = createSecretResolver(box, undefined);
  const [oldSecret, newSecret] = [generateWebhookSecret(), generateWebhookSecret()];
  const claim = (secret: string, at: number) =>
    ({
      webhook_endpoint_id: 'ep-1',
      secret: box.seal(secret),
      previous_secret: null,
      previous_secret_expires_at: null,
      endpoint_updated_at: new Date(at),
    }) as unknown as ClaimedDispatch;
  const before = claim(oldSecret, 1_000);
  const after = claim(newSecret, 2_000);
  const sign = (keys: ReturnType<typeof resolve>) => signatureHeaders(keys!, 'evt', 1, Buffer.from('{}'))['webhook-signature'];
  const oldSignature = sign(resolve(before, 0));
  const newSignature = sign(resolve(after, 0));
  assert.notEqual(oldSignature, newSignature);
  assert.equal(sign(resolve(before, 0)), newSignature, 'the older claim now signs with the newest secret');
});
