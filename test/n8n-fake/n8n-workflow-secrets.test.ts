/**
 * Without WEBHOOK_SECRET, every n8n workflow is still signed: it gets a secret of its own, generated,
 * sealed at rest and shown once (like an endpoint's), rotatable. Nothing is ever sent unsigned, and the
 * secrets never come back in a later API response or in the logs. A real loopback receiver plays the
 * n8n webhook.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { rmSync } from 'node:fs';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { compose, type Composed } from '../../src/runtime/compose.ts';
import { buildApp } from '../../src/api/app.ts';
import { dropSchema, eventually, TEST_ADMIN_KEY, testEnv } from '../support/carteiro.ts';
import { startReceiver, type Received, type TestReceiver } from '../support/receiver.ts';
import { SEED_WORKFLOWS } from '../../src/integrations/n8n/seed-workflows.ts';
import { SEED_EVENT_DATA, verifyDelivery } from './signatures.ts';
import { startFakeN8n, type FakeN8n } from './fake-n8n.ts';

describe('n8n workflows without WEBHOOK_SECRET: each signed with a secret of its own', () => {
  let env: Record<string, string>;
  let config: Config;
  let fake: FakeN8n;
  let logs = '';
  const log = pino(
    { level: 'trace' },
    new Writable({
      write(chunk, _enc, done) {
        logs += chunk;
        done();
      },
    }),
  );
  let composed: Composed;
  let app: Awaited<ReturnType<typeof buildApp>>;
  let receiver: TestReceiver;
  /** Every response body, and every secret the API showed with how many bodies there were by then. */
  const bodies: string[] = [];
  const shown: { secret: string; at: number }[] = [];

  async function request(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await app.inject({
      method: method as 'GET',
      url: `/api/webhooks/${path}`,
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
      ...(body === undefined ? {} : { payload: body as object }),
    });
    bodies.push(res.body);
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
  }

  function showOnce(secret: unknown): string {
    assert.match(String(secret), /^whsec_/);
    shown.push({ secret: secret as string, at: bodies.length });
    return secret as string;
  }

  const hitsOn = (path: string) => receiver.received.filter((r) => r.path === `/webhook/${path}`);
  async function nextHit(path: string, before: number): Promise<Received> {
    return eventually(() => hitsOn(path)[before], { what: `a delivery to /webhook/${path}` });
  }
  async function trigger(eventType: string, data: Record<string, unknown>): Promise<string> {
    const res = await request('POST', 'trigger', { event_type: eventType, data });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.event_id;
  }

  before(async () => {
    receiver = await startReceiver();
    fake = await startFakeN8n();
    env = testEnv({ env: { WEBHOOK_SECRET: '', LOG_LEVEL: 'trace', N8N_API_URL: fake.url, N8N_API_KEY: fake.apiKey } });
    config = loadConfig(env);
    assert.equal(config.keys.webhookSecret, undefined);
    composed = await compose(config, 'all', { log });
    app = await buildApp(composed.services);
    await app.ready();
  });
  after(async () => {
    await app.close();
    await composed.dispose();
    await receiver.close();
    await fake.close();
    await dropSchema(env);
    if (env.CARTEIRO_DATA_DIR) rmSync(env.CARTEIRO_DATA_DIR, { recursive: true, force: true });
  });

  test('a workflow registered without a secret gets its own, shown once, and its deliveries verify with it', async () => {
    const created = await request('POST', 'n8n/workflows', {
      workflow_id: 'ownSecretWf00001',
      name: 'Agent created',
      webhook_url: `${receiver.url}/webhook/agent-created`,
      event_types: ['agent.created'],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.signing, 'workflow_secret');
    const secret = showOnce(created.body.secret);

    const before = hitsOn('agent-created').length;
    const eventId = await trigger('agent.created', SEED_EVENT_DATA['agent.created'] as Record<string, unknown>);
    const hit = await nextHit('agent-created', before);
    assert.equal(hit.headers['webhook-id'], eventId);
    assert.match(hit.headers['x-webhook-signature'] ?? '', /^sha256=[0-9a-f]{64}$/);
    assert.deepEqual(verifyDelivery(secret, hit.body, hit.headers), { seed: true, standard: true });

    const again = await request('GET', 'n8n/workflows/ownSecretWf00001');
    assert.equal(again.body.secret, undefined);
    assert.equal(again.body.signing, 'workflow_secret');
  });

  test('rotation: the new secret is shown once and signs; the old one only alongside, during the overlap', async () => {
    const old = shown[0]!.secret;
    const rotated = await request('POST', 'n8n/workflows/ownSecretWf00001/rotate-secret', { overlap_seconds: 3600 });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    const secret = showOnce(rotated.body.secret);
    assert.notEqual(secret, old);

    let before = hitsOn('agent-created').length;
    await trigger('agent.created', SEED_EVENT_DATA['agent.created'] as Record<string, unknown>);
    let hit = await nextHit('agent-created', before);
    assert.deepEqual(verifyDelivery(secret, hit.body, hit.headers), { seed: true, standard: true });
    assert.ok(
      verifyDelivery(old, hit.body, { ...hit.headers, 'x-webhook-signature': hit.headers['x-webhook-signature-previous'] as string }).seed,
      'the old secret signs alongside during the overlap',
    );

    const immediate = await request('POST', 'n8n/workflows/ownSecretWf00001/rotate-secret', { overlap_seconds: 0 });
    const newest = showOnce(immediate.body.secret);
    before = hitsOn('agent-created').length;
    await trigger('agent.created', SEED_EVENT_DATA['agent.created'] as Record<string, unknown>);
    hit = await nextHit('agent-created', before);
    assert.deepEqual(verifyDelivery(newest, hit.body, hit.headers), { seed: true, standard: true });
    assert.equal(hit.headers['x-webhook-signature-previous'], undefined, 'no overlap asked for: the old secret no longer signs');
    assert.equal(verifyDelivery(secret, hit.body, hit.headers).seed, false);
  });

  test('the seed gives each workflow it creates a secret of its own, shown once in its answer', async () => {
    const seeded = await request('POST', 'n8n/workflows/seed', { base_url: receiver.url });
    assert.equal(seeded.status, 200, JSON.stringify(seeded.body));
    const created = (seeded.body.data as { workflow_id: string; path: string; result: string; secret?: string }[]).filter((o) => o.result === 'created');
    assert.equal(created.length, SEED_WORKFLOWS.length - 1, 'agent-created was registered by the first test');
    for (const o of created) showOnce(o.secret);
    const registration = created.find((o) => o.path === 'user-registration');
    assert.ok(registration?.secret);
    const before = hitsOn('user-registration').length;
    await trigger('user.registered', SEED_EVENT_DATA['user.registered'] as Record<string, unknown>);
    const hit = await nextHit('user-registration', before);
    assert.deepEqual(verifyDelivery(registration.secret, hit.body, hit.headers), { seed: true, standard: true });
    const list = await request('GET', 'n8n/workflows');
    for (const w of list.body.data) assert.equal(w.signing, 'workflow_secret', w.workflow_id);
  });

  test('a workflow found by discovery gets a secret of its own too (seen by rotating it)', async () => {
    fake.addWebhookWorkflow({ id: 'discoveredWf0001', name: 'Found [agent.created]', path: 'found' });
    const found = await request('POST', 'n8n/discover', {});
    assert.equal(found.status, 200, JSON.stringify(found.body));
    assert.equal(found.body.created, 1);
    const w = (await request('GET', 'n8n/workflows/discoveredWf0001')).body;
    assert.equal(w.signing, 'workflow_secret');
    assert.equal(w.secret, undefined);
    const rotated = await request('POST', 'n8n/workflows/discoveredWf0001/rotate-secret', { overlap_seconds: 0 });
    assert.equal(rotated.status, 200, JSON.stringify(rotated.body));
    showOnce(rotated.body.secret);
  });

  test('going back to WEBHOOK_SECRET is refused while it is unset', async () => {
    const res = await request('PATCH', 'n8n/workflows/ownSecretWf00001', { secret: null });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(res.body.message, /WEBHOOK_SECRET/);
    assert.equal((await request('GET', 'n8n/workflows/ownSecretWf00001')).body.signing, 'workflow_secret');
  });

  test('a workflow left without a secret (an older install) is never sent to unsigned, and gets one at the next start', async () => {
    const sql = composed.services.ledger.sql;
    const [w] = await sql<{ webhook_endpoint_id: string }[]>`SELECT webhook_endpoint_id FROM n8n_workflows WHERE workflow_id = 'ownSecretWf00001'`;
    await sql`UPDATE webhook_endpoints SET secret = NULL, previous_secret = NULL, previous_secret_expires_at = NULL, updated_at = now() WHERE id = ${w!.webhook_endpoint_id}`;
    const before = hitsOn('agent-created').length;
    const eventId = await trigger('agent.created', SEED_EVENT_DATA['agent.created'] as Record<string, unknown>);
    const attempt = await eventually(
      async () => {
        const rows = (await request('GET', `events/${eventId}/attempts`)).body.data as { error: string | null }[];
        return rows.find((a) => /signing secret/.test(a.error ?? ''));
      },
      { what: 'the attempt refused for want of a signing secret' },
    );
    assert.ok(attempt);
    assert.equal(hitsOn('agent-created').length, before, 'nothing was sent unsigned');

    // A restart (of the same ledger) gives it a secret; rotating shows a new one, which then signs.
    await app.close();
    await composed.dispose();
    composed = await compose(config, 'all', { log });
    app = await buildApp(composed.services);
    await app.ready();
    assert.equal((await request('GET', 'n8n/workflows/ownSecretWf00001')).body.signing, 'workflow_secret');
    const rotated = await request('POST', 'n8n/workflows/ownSecretWf00001/rotate-secret', { overlap_seconds: 0 });
    const secret = showOnce(rotated.body.secret);
    const next = await trigger('agent.created', SEED_EVENT_DATA['agent.created'] as Record<string, unknown>);
    const hit = await eventually(() => hitsOn('agent-created').find((h) => h.headers['webhook-id'] === next), { what: 'the next delivery' });
    assert.deepEqual(verifyDelivery(secret, hit.body, hit.headers), { seed: true, standard: true });
    for (const h of hitsOn('agent-created').slice(before)) assert.match(h.headers['x-webhook-signature'] ?? '', /^sha256=/, 'every request sent was signed');
  });

  test('no secret appears in a later API response or in the logs', async () => {
    await request('GET', 'n8n/workflows');
    await request('GET', 'n8n/workflows/ownSecretWf00001');
    await request('GET', 'n8n/workflows/ownSecretWf00001/attempts');
    const endpointId = (await request('GET', 'n8n/workflows/ownSecretWf00001')).body.webhook_endpoint_id;
    await request('GET', `endpoints/${endpointId}`);
    assert.ok(shown.length >= 9);
    assert.ok(logs.length > 0, 'the logs were captured');
    for (const { secret, at } of shown) {
      const key = secret.slice('whsec_'.length);
      assert.ok(!bodies.slice(at).some((b) => b.includes(key)), 'a secret came back in a later response');
      assert.ok(!logs.includes(key), 'a secret was logged');
    }
  });
});
