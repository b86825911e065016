/**
 * n8n workflows as destinations, against a local fake n8n (fake-n8n.ts): the seed set, routing by
 * event type with verifiable signatures, per-workflow secrets, n8n/sync, the inactive workflow's 404,
 * test-URL mode and the workflow API. The same flows run against a real n8n in test/n8n/.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startCarteiro, createEndpoint, eventually, settled, trigger, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { SEED_WORKFLOWS } from '../../src/integrations/n8n/seed-workflows.ts';
import { startFakeN8n, type FakeN8n } from './fake-n8n.ts';
import { SEED_EVENT_DATA, verifyDelivery } from './signatures.ts';

describe('n8n workflows as destinations (fake n8n)', () => {
  let c: TestCarteiro;
  let fake: FakeN8n;
  let receiver: TestReceiver;
  let webhookSecret: string;

  before(async () => {
    fake = await startFakeN8n();
    for (const s of SEED_WORKFLOWS) fake.addWebhookWorkflow({ id: s.workflowId, name: s.name, path: s.path });
    receiver = await startReceiver();
    c = await startCarteiro({ env: { N8N_WEBHOOK_URL: fake.url } });
    webhookSecret = c.config.keys.webhookSecret as string;
  });
  after(async () => {
    await c.stop();
    await fake.close();
    await receiver.close();
  });

  const workflow = async (id: string) => (await c.request('GET', `n8n/workflows/${id}`)).body;
  /** How many of an event's deliveries go to n8n workflows (a `*` endpoint joins in after the sync test). */
  const n8nDeliveries = async (eventId: string) =>
    ((await c.request('GET', `events/${eventId}/status`)).body.deliveries as { destination: string }[]).filter((d) => d.destination === 'n8n').length;

  test('the seed loads its seven workflows at N8N_WEBHOOK_URL, idempotently, and /endpoints does not list them', async () => {
    const first = await c.request('POST', 'n8n/workflows/seed', {});
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.deepEqual(
      first.body.data.map((o: { result: string }) => o.result),
      Array(7).fill('created'),
    );

    const list = await c.request('GET', 'n8n/workflows');
    assert.equal(list.body.data.length, 7);
    for (const s of SEED_WORKFLOWS) {
      const w = list.body.data.find((x: { workflow_id: string }) => x.workflow_id === s.workflowId);
      assert.ok(w, s.workflowId);
      assert.equal(w.name, s.name);
      assert.equal(w.path, s.path);
      assert.equal(w.webhook_url, `${fake.url}/webhook/${s.path}`);
      assert.equal(w.delivery_url, w.webhook_url);
      assert.deepEqual(w.event_types, s.eventTypes);
      assert.equal(w.signing, 'webhook_secret');
      assert.equal(w.source, 'seed');
      assert.equal(w.is_active, true);
    }

    const again = await c.request('POST', 'n8n/workflows/seed', {});
    assert.deepEqual(
      again.body.data.map((o: { result: string }) => o.result),
      Array(7).fill('unchanged'),
    );
    assert.equal((await c.request('GET', 'n8n/workflows')).body.data.length, 7);

    const endpoints = await c.request('GET', 'endpoints');
    assert.equal(endpoints.body.data.length, 0, 'the linked endpoints are kind n8n, not listed as endpoints');
    const linked = list.body.data[0].webhook_endpoint_id;
    assert.equal((await c.request('GET', `endpoints/${linked}`)).status, 404);
  });

  test('each seed event reaches exactly its seed workflow, signed with WEBHOOK_SECRET', async () => {
    for (const s of SEED_WORKFLOWS) {
      const type = s.eventTypes[0] as string;
      const eventId = await trigger(c, { event_type: type, data: SEED_EVENT_DATA[type] });
      const [hit] = await fake.waitForHits(s.path, 1);
      assert.ok(hit);
      const body = JSON.parse(hit.body);
      assert.equal(body.id, eventId);
      assert.equal(body.type, type);
      assert.deepEqual(body.data, SEED_EVENT_DATA[type]);
      assert.equal(hit.headers['webhook-id'], eventId);
      assert.equal(hit.headers['user-agent'], 'AgentesDeConversao-Webhook/1.0');
      assert.deepEqual(verifyDelivery(webhookSecret, hit.body, hit.headers), { seed: true, standard: true }, `${s.path}: signatures verify`);
    }
    // One request per workflow, none elsewhere.
    assert.equal(fake.hits.length, 7);
    const counted = await eventually(
      async () => {
        const rows = (await c.request('GET', 'n8n/workflows')).body.data as { success_count: number; state: string }[];
        return rows.every((r) => r.success_count === 1 && r.state === 'active') && rows;
      },
      { what: 'success counters and state' },
    );
    assert.equal(counted.length, 7);
  });

  test('a workflow secret of its own signs instead of WEBHOOK_SECRET, and can be dropped again', async () => {
    const own = await c.request('PATCH', 'n8n/workflows/dkbY8I5uombxmvgj', { generate_secret: true });
    assert.equal(own.status, 200, JSON.stringify(own.body));
    assert.match(own.body.secret, /^whsec_/);
    assert.equal(own.body.signing, 'workflow_secret');
    const before = fake.hitsOn('user-registration').length;
    await trigger(c, { event_type: 'user.registered', data: SEED_EVENT_DATA['user.registered'] });
    const hit = (await fake.waitForHits('user-registration', before + 1)).at(-1);
    assert.ok(hit);
    assert.deepEqual(verifyDelivery(own.body.secret, hit.body, hit.headers), { seed: true, standard: true });
    assert.equal(verifyDelivery(webhookSecret, hit.body, hit.headers).seed, false);

    const dropped = await c.request('PATCH', 'n8n/workflows/dkbY8I5uombxmvgj', { secret: null });
    assert.equal(dropped.body.signing, 'webhook_secret');
    assert.equal(dropped.body.secret, undefined, 'a secret is shown only when generated');
    await trigger(c, { event_type: 'user.registered', data: SEED_EVENT_DATA['user.registered'] });
    const next = (await fake.waitForHits('user-registration', before + 2)).at(-1);
    assert.ok(next);
    assert.equal(verifyDelivery(webhookSecret, next.body, next.headers).seed, true);
  });

  test('n8n/sync sends data to the workflow whose path is sync_type, through the ledger, and answers with the result', async () => {
    // A catch-all endpoint: a sync is addressed to one workflow, not broadcast.
    await createEndpoint(c, { url: `${receiver.url}/all`, events: ['*'] });
    const before = fake.hitsOn('user-registration').length;
    const data = { user_id: 'test-123', email: 'test@example.com' };
    const res = await c.request('POST', 'n8n/sync', { sync_type: 'user-registration', data, wait_ms: 20_000 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'delivered');
    assert.equal(res.body.sync_type, 'user-registration');
    assert.equal(res.body.workflow.workflow_id, 'dkbY8I5uombxmvgj');
    assert.equal(res.body.delivery.status_code, 200);
    assert.equal(res.body.delivery.attempts, 1);
    assert.match(res.body.delivery.response_body, /Workflow was started/);

    const hit = (await fake.waitForHits('user-registration', before + 1)).at(-1);
    assert.ok(hit);
    const body = JSON.parse(hit.body);
    assert.equal(body.id, res.body.event_id);
    assert.equal(body.type, 'n8n.sync');
    assert.deepEqual(body.data, data);
    assert.deepEqual(verifyDelivery(webhookSecret, hit.body, hit.headers), { seed: true, standard: true });

    // Logged like any delivery.
    const status = await c.request('GET', `events/${res.body.event_id}/status`);
    assert.equal(status.body.status, 'completed');
    assert.deepEqual(
      status.body.deliveries.map((d: { destination: string }) => d.destination),
      ['n8n'],
    );
    const event = await c.request('GET', `events/${res.body.event_id}`);
    assert.equal(event.body.event_source, 'n8n');
    assert.equal(event.body.record_id, 'user-registration');

    // An Idempotency-Key repeated returns the first event and sends nothing again.
    const k1 = await c.request('POST', 'n8n/sync', { sync_type: 'user-registration', data }, { 'idempotency-key': 'sync-1' });
    const k2 = await c.request('POST', 'n8n/sync', { sync_type: 'user-registration', data }, { 'idempotency-key': 'sync-1' });
    assert.equal(k2.body.event_id, k1.body.event_id);
    assert.equal(k2.body.duplicate, true);
    // The repeat made no event of its own, and the first one's delivery is settled: nothing more is coming.
    assert.equal((await settled(c, { eventIds: [k1.body.event_id] })).attempts, 1);
    assert.equal(fake.hitsOn('user-registration').length, before + 2);
    assert.equal(receiver.received.length, 0, 'the * endpoint got no sync event');
  });

  test('an unknown sync_type is a 404 that lists the known ones', async () => {
    const res = await c.request('POST', 'n8n/sync', { sync_type: 'no-such-flow', data: {} });
    assert.equal(res.status, 404);
    assert.equal(res.body.code, 'CARTEIRO_NOT_FOUND');
    assert.match(res.body.message, /no-such-flow/);
    assert.deepEqual(res.body.details.known_sync_types, SEED_WORKFLOWS.map((s) => s.path).sort());
  });

  test('a 404 from an inactive workflow is recorded as "n8n workflow inactive", retried per policy, and marks the workflow', async () => {
    (fake.workflows.get('jd2ydLGtQhvbC2q8') as { active: boolean }).active = false;
    const eventId = await trigger(c, { event_type: 'agent.created', data: SEED_EVENT_DATA['agent.created'] });
    await eventually(async () => (await c.request('GET', `events/${eventId}/status`)).body.status === 'failed', { what: 'the delivery to give up' });

    const w0 = await workflow('jd2ydLGtQhvbC2q8');
    const attempts = (
      (await c.request('GET', `events/${eventId}/attempts`)).body.data as { webhook_endpoint_id: string; status_code: number; error: string }[]
    ).filter((a) => a.webhook_endpoint_id === w0.webhook_endpoint_id);
    // WEBHOOK_MAX_RETRIES=3 in the tests: the first attempt and three retries.
    assert.equal(attempts.length, 4);
    for (const a of attempts) {
      assert.equal(a.status_code, 404);
      assert.match(a.error, /^n8n workflow inactive/);
    }
    assert.match(attempts.at(-1)?.error ?? '', /gave up after 4 attempts/);

    const w = await workflow('jd2ydLGtQhvbC2q8');
    assert.equal(w.state, 'inactive');
    assert.match(w.last_error, /n8n workflow inactive/);
    assert.ok(w.last_error_at);
    assert.equal(w.failure_count, 4);
    assert.equal(w.is_active, true, 'still routed: a 404 marks the state, it does not unsubscribe the workflow');
    // The workflow's own attempt log: the earlier success, then these four, newest first.
    const viaWorkflow = (await c.request('GET', 'n8n/workflows/jd2ydLGtQhvbC2q8/attempts')).body.data as { webhook_event_id: string; success: boolean }[];
    assert.deepEqual(
      viaWorkflow.map((a) => a.webhook_event_id === eventId && !a.success),
      [true, true, true, true, false],
    );

    // Activated again in n8n: a replay goes through and the state is cleared.
    (fake.workflows.get('jd2ydLGtQhvbC2q8') as { active: boolean }).active = true;
    assert.equal((await c.request('POST', `events/${eventId}/replay`, {})).status, 202);
    await fake.waitForHits('agent-created', 2);
    const healed = await eventually(
      async () => {
        const x = await workflow('jd2ydLGtQhvbC2q8');
        return x.state === 'active' && x;
      },
      { what: 'state active again' },
    );
    assert.equal(healed.last_error, null);
    assert.equal(healed.success_count, 2);
  });

  test('test-URL mode delivers to /webhook-test/<path> while the editor listens, and switches back', async () => {
    const on = await c.request('PATCH', 'n8n/workflows/xFfJRPSsgxZpx0NH', { use_test_url: true });
    assert.equal(on.status, 200, JSON.stringify(on.body));
    assert.equal(on.body.use_test_url, true);
    assert.equal(on.body.delivery_url, `${fake.url}/webhook-test/template-applied`);
    assert.equal(on.body.test_url, on.body.delivery_url);
    assert.equal(on.body.webhook_url, `${fake.url}/webhook/template-applied`, 'the production URL is kept');

    fake.listen('template-applied');
    const listened = await trigger(c, { event_type: 'template.applied', data: SEED_EVENT_DATA['template.applied'] });
    const hit = (await fake.waitForHits('template-applied', 2)).at(-1);
    assert.equal(hit?.test, true);
    assert.equal(JSON.parse(hit?.body ?? '{}').id, listened);

    // The editor no longer listens: the test URL answers 404, recorded like any failed attempt.
    const missed = await trigger(c, { event_type: 'template.applied', data: SEED_EVENT_DATA['template.applied'] });
    await eventually(async () => (await c.request('GET', `events/${missed}/status`)).body.status === 'failed', { what: 'test-URL delivery to fail' });
    assert.equal((await workflow('xFfJRPSsgxZpx0NH')).state, 'inactive');

    const off = await c.request('PATCH', 'n8n/workflows/xFfJRPSsgxZpx0NH', { use_test_url: false });
    assert.equal(off.body.delivery_url, `${fake.url}/webhook/template-applied`);
    await trigger(c, { event_type: 'template.applied', data: SEED_EVENT_DATA['template.applied'] });
    const prod = (await fake.waitForHits('template-applied', 3)).at(-1);
    assert.equal(prod?.test, false);
  });

  test('a disabled workflow receives nothing; enabling it routes again', async () => {
    const off = await c.request('POST', 'n8n/workflows/5a8pr08Hyyw3DmHk/disable', { reason: 'maintenance' });
    assert.equal(off.body.is_active, false);
    assert.equal(off.body.inactive_reason, 'maintenance');
    const before = fake.hitsOn('onboarding-complete').length;
    const skipped = await trigger(c, { event_type: 'onboarding.completed', data: SEED_EVENT_DATA['onboarding.completed'] });
    assert.equal(await n8nDeliveries(skipped), 0);
    assert.equal((await c.request('POST', 'n8n/sync', { sync_type: 'onboarding-complete', data: {} })).status, 409);

    const on = await c.request('POST', 'n8n/workflows/5a8pr08Hyyw3DmHk/enable', {});
    assert.equal(on.body.is_active, true);
    await trigger(c, { event_type: 'onboarding.completed', data: SEED_EVENT_DATA['onboarding.completed'] });
    await fake.waitForHits('onboarding-complete', before + 1);
  });

  test('a 410 Gone disables the workflow (through its endpoint) until it is enabled again', async () => {
    fake.gone.add('openai-connected');
    const eventId = await trigger(c, { event_type: 'integration.openai.connected', data: SEED_EVENT_DATA['integration.openai.connected'] });
    await eventually(async () => (await c.request('GET', `events/${eventId}/status`)).body.status === 'failed', { what: 'the 410 to end the delivery' });
    const off = await workflow('azDbM1j9UpSvU1wl');
    assert.equal(off.is_active, false);
    assert.match(off.inactive_reason, /410 Gone/);
    assert.equal(
      (await c.request('GET', 'n8n/workflows?limit=50')).body.data.find((w: { workflow_id: string }) => w.workflow_id === 'azDbM1j9UpSvU1wl').is_active,
      false,
    );

    fake.gone.delete('openai-connected');
    const on = await c.request('PATCH', 'n8n/workflows/azDbM1j9UpSvU1wl', { is_active: true });
    assert.equal(on.body.is_active, true);
    const before = fake.hitsOn('openai-connected').length;
    await trigger(c, { event_type: 'integration.openai.connected', data: SEED_EVENT_DATA['integration.openai.connected'] });
    await fake.waitForHits('openai-connected', before + 1);
  });

  test('the workflow API: create by path, validation, conflicts, routing changes, delete', async () => {
    fake.addWebhookWorkflow({ id: 'crm0000000000001', name: 'CRM', path: 'crm-sync' });
    const created = await c.request('POST', 'n8n/workflows', {
      workflow_id: 'crm0000000000001',
      name: 'CRM',
      path: 'crm-sync',
      event_types: ['conversation.*'],
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.webhook_url, `${fake.url}/webhook/crm-sync`);
    assert.equal(created.body.source, 'api');
    assert.equal(created.body.state, 'unknown');

    assert.equal((await c.request('POST', 'n8n/workflows', { workflow_id: 'crm0000000000001', name: 'again', path: 'x' })).status, 409);
    assert.equal((await c.request('POST', 'n8n/workflows', { workflow_id: 'w2', name: 'bad', path: 'y', event_types: ['Not A Type'] })).status, 400);
    assert.equal((await c.request('POST', 'n8n/workflows', { workflow_id: 'w3', name: 'no url' })).status, 400);
    assert.equal(
      (await c.request('POST', 'n8n/workflows', { workflow_id: 'w4', name: 'not n8n', webhook_url: `${receiver.url}/hook`, use_test_url: true })).status,
      400,
    );

    // Wildcard routing, then narrowed.
    await trigger(c, { event_type: 'conversation.ended', data: { conversation_id: 'c1' } });
    await fake.waitForHits('crm-sync', 1);
    const narrowed = await c.request('PATCH', `n8n/workflows/${created.body.id}`, { event_types: ['conversation.created'] });
    assert.deepEqual(narrowed.body.event_types, ['conversation.created']);
    const ended = await trigger(c, { event_type: 'conversation.ended', data: { conversation_id: 'c2' } });
    assert.equal(await n8nDeliveries(ended), 0);

    const gone = await c.request('DELETE', `n8n/workflows/${created.body.id}`);
    assert.equal(gone.status, 204);
    assert.equal((await c.request('GET', 'n8n/workflows/crm0000000000001')).status, 404);
    const rows = await c.services.ledger.sql`SELECT count(*)::int AS n FROM webhook_endpoints WHERE id = ${created.body.webhook_endpoint_id}`;
    assert.equal(rows[0]?.n, 0, 'its endpoint went with it');
  });

  test('a webhook_url or sync data that cannot be stored is a 4xx naming its field, and changes nothing', async () => {
    const count = async (table: 'n8n_workflows' | 'webhook_events') =>
      (await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM ${c.services.ledger.sql(table)}`)[0]?.n;
    const workflowsBefore = await count('n8n_workflows');
    // Random CJK, three UTF-8 bytes each: 1,900 of them fit the URL's 2,048 characters but not the path index.
    const cjk = Array.from({ length: 1900 }, (_, i) => String.fromCharCode(0x4e00 + ((i * 7919) % 20000))).join('');
    const refused: [Record<string, unknown>, number, RegExp][] = [
      [{ workflow_id: 'wf-pct', name: 'w', webhook_url: `${fake.url}/webhook/%ZZ` }, 400, /^webhook_url: .*percent-escape/],
      [{ workflow_id: 'wf-cjk', name: 'w', webhook_url: `${fake.url}/webhook/${cjk}` }, 400, /^webhook_url: .*5700 bytes.*at most 2048/],
      [{ workflow_id: 'wf-ftp', name: 'w', webhook_url: 'ftp://127.0.0.1:3199/webhook/x' }, 422, /^webhook_url must use http or https/],
    ];
    for (const [body, status, message] of refused) {
      const res = await c.request('POST', 'n8n/workflows', body);
      assert.equal(res.status, status, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.details?.field, 'webhook_url');
      assert.match(res.body.message, message);
    }
    assert.equal(await count('n8n_workflows'), workflowsBefore);

    const stored = async () => {
      const w = await workflow('dkbY8I5uombxmvgj');
      return [w.webhook_url, w.path, w.updated_at];
    };
    const current = await stored();
    for (const webhook_url of [`${fake.url}/webhook/%E0%A4%A`, `${fake.url}/webhook/${cjk}`]) {
      const res = await c.request('PATCH', 'n8n/workflows/dkbY8I5uombxmvgj', { webhook_url });
      assert.equal(res.status, 400, JSON.stringify(res.body).slice(0, 300));
      assert.equal(res.body.details.field, 'webhook_url');
    }
    assert.deepEqual(await stored(), current);

    const seed = await c.request('POST', 'n8n/workflows/seed', { base_url: 'ftp://127.0.0.1:3199' });
    assert.equal(seed.status, 422);
    assert.equal(seed.body.details?.field, 'base_url');
    assert.match(seed.body.message, /^base_url must use http or https/);

    const eventsBefore = await count('webhook_events');
    const sync = await c.request('POST', 'n8n/sync', { sync_type: 'user-registration', data: { user_id: randomBytes(4000).toString('hex') } });
    assert.equal(sync.status, 400, JSON.stringify(sync.body));
    assert.equal(sync.body.details.field, 'data.user_id');
    assert.match(sync.body.message, /data\.user_id must be at most 200 characters/);
    assert.equal(await count('webhook_events'), eventsBefore);
  });

  test('health says n8n is configured when only N8N_WEBHOOK_URL is set', async () => {
    const res = await c.request('GET', 'health');
    assert.equal(res.body.services.n8n, 'configured');
  });
});
