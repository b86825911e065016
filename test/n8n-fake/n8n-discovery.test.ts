/**
 * Discovery from n8n's API against a local fake n8n (fake-n8n.ts): pagination, which workflows count,
 * the routing convention, and creating, updating, deactivating and reactivating rows across runs.
 * Also: the 'n8n-discovery' job, `carteiro n8n`, health, and what happens when n8n's API says no.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startCarteiro, dropSchema, eventually, testEnv, trigger, TEST_ADMIN_KEY, type TestCarteiro } from '../support/carteiro.ts';
import { loadConfig } from '../../src/config/config.ts';
import { DEFAULT_ORGANIZATION_ID } from '../../src/tenancy/principal.ts';
import { discoverN8nWorkflows, GONE_FROM_N8N, INACTIVE_IN_N8N } from '../../src/integrations/n8n/discovery.ts';
import { createN8nApi } from '../../src/integrations/n8n/n8n-api.ts';
import { runN8n } from '../../src/cli/n8n-command.ts';
import { workflowSecretsOf } from '../../src/integrations/n8n/integration.ts';
import { startFakeN8n, webhookNode, type FakeN8n } from './fake-n8n.ts';
import { SEED_EVENT_DATA, verifyDelivery } from './signatures.ts';

type Row = {
  workflow_id: string;
  name: string;
  path: string;
  webhook_url: string;
  event_types: string[];
  is_active: boolean;
  inactive_reason: string | null;
  state: string;
  source: string;
  last_discovered_at: string | null;
};

describe('n8n discovery (fake n8n)', () => {
  let c: TestCarteiro;
  let fake: FakeN8n;

  before(async () => {
    fake = await startFakeN8n();
    c = await startCarteiro({ env: { N8N_WEBHOOK_URL: fake.url, N8N_API_URL: `${fake.url}/api/v1`, N8N_API_KEY: fake.apiKey, N8N_DISCOVERY_PAGE_SIZE: '2' } });
  });
  after(async () => {
    await c.stop();
    await fake.close();
  });

  const rows = async (org?: string): Promise<Map<string, Row>> => {
    const res = await c.request('GET', 'n8n/workflows?limit=500', undefined, org ? { 'x-organization-id': org } : {});
    return new Map((res.body.data as Row[]).map((r) => [r.workflow_id, r]));
  };
  const discover = async (org?: string) => {
    const res = await c.request('POST', 'n8n/discover', {}, org ? { 'x-organization-id': org } : {});
    assert.equal(res.status, 200, JSON.stringify(res.body));
    return res.body;
  };

  test('first run: every page read, webhook workflows created with their routing, the rest skipped', async () => {
    fake.addWebhookWorkflow({ id: 'wfUserReg0000001', name: 'User Registration', path: 'user-registration', tags: ['on:user.registered', 'team:growth'] });
    fake.addWebhookWorkflow({ id: 'wfWhatsApp000001', name: 'WhatsApp Integration [integration.whatsapp.connected]', path: 'wa-in' });
    fake.addWebhookWorkflow({ id: 'wfPayment0000001', name: 'Payment Processed', path: 'payment-processed' });
    fake.addWebhookWorkflow({ id: 'wfCustom00000001', name: 'Custom hook', path: 'custom-hook' });
    fake.addWebhookWorkflow({
      id: 'wfNoPath00000001',
      name: 'Agents',
      path: '7d0c3a4e-5b1f-4c55-9f57-3c2b1d0e9a88',
      pathEmpty: true,
      active: false,
      tags: ['on:agent.*'],
    });
    fake.addWorkflow({
      id: 'wfCron0000000001',
      name: 'Nightly report',
      active: true,
      tags: [],
      nodes: [{ name: 'Schedule', type: 'n8n-nodes-base.scheduleTrigger', typeVersion: 1, parameters: {} }],
    });
    fake.addWebhookWorkflow({ id: 'wfGetHook0000001', name: 'Status page [user.registered]', path: 'status', method: 'GET' });
    fake.addWorkflow({
      id: 'wfPublished00001',
      name: 'Onboarding',
      active: true,
      tags: ['carteiro:onboarding.*'],
      nodes: [webhookNode('draft-path')],
      activeVersion: { nodes: [webhookNode('live-path')] },
    });

    const r = await discover();
    assert.deepEqual(
      {
        pages: r.pages,
        listed: r.listed,
        webhook_workflows: r.webhook_workflows,
        skipped: r.skipped,
        created: r.created,
        updated: r.updated,
        unchanged: r.unchanged,
        deactivated: r.deactivated,
        reactivated: r.reactivated,
      },
      { pages: 4, listed: 8, webhook_workflows: 6, skipped: 2, created: 6, updated: 0, unchanged: 0, deactivated: 0, reactivated: 0 },
    );
    assert.equal(r.organization_id, DEFAULT_ORGANIZATION_ID);
    // Four pages of two, each asked with the cursor the previous one gave.
    assert.deepEqual(
      fake.listCalls.map((call) => call.limit),
      [2, 2, 2, 2],
    );
    assert.equal(fake.listCalls[0]?.cursor, null);
    assert.ok(fake.listCalls.slice(1).every((call) => call.cursor));

    const byId = await rows();
    assert.equal(byId.size, 6);
    const expect = (id: string, fields: Partial<Row>) => {
      const row = byId.get(id);
      assert.ok(row, `${id} discovered`);
      for (const [k, v] of Object.entries(fields)) assert.deepEqual(row[k as keyof Row], v, `${id}.${k}`);
    };
    expect('wfUserReg0000001', {
      path: 'user-registration',
      webhook_url: `${fake.url}/webhook/user-registration`,
      event_types: ['user.registered'],
      is_active: true,
      state: 'active',
      source: 'discovery',
    });
    expect('wfWhatsApp000001', { name: 'WhatsApp Integration [integration.whatsapp.connected]', event_types: ['integration.whatsapp.connected'] });
    expect('wfPayment0000001', { event_types: ['payment.confirmed'] }); // the seed's path map
    expect('wfCustom00000001', { event_types: [] }); // nothing names its events: it receives nothing yet
    expect('wfNoPath00000001', {
      path: '7d0c3a4e-5b1f-4c55-9f57-3c2b1d0e9a88',
      event_types: ['agent.*'],
      is_active: false,
      inactive_reason: INACTIVE_IN_N8N,
      state: 'inactive',
    });
    expect('wfPublished00001', { path: 'live-path', webhook_url: `${fake.url}/webhook/live-path`, event_types: ['onboarding.*'] });
    assert.ok(byId.get('wfUserReg0000001')?.last_discovered_at);

    // Discovered workflows are destinations at once.
    await trigger(c, { event_type: 'user.registered', data: SEED_EVENT_DATA['user.registered'] });
    const [hit] = await fake.waitForHits('user-registration', 1);
    assert.ok(hit);
    assert.equal(verifyDelivery(c.config.keys.webhookSecret as string, hit.body, hit.headers).seed, true);
  });

  test('second run: renamed and retagged workflows are updated, inactive and deleted ones deactivated, reactivated ones come back', async () => {
    const userReg = fake.workflows.get('wfUserReg0000001');
    assert.ok(userReg);
    userReg.name = 'User Signup';
    userReg.tags = ['on:user.registered', 'on:user.updated'];
    (fake.workflows.get('wfWhatsApp000001') as { active: boolean }).active = false;
    fake.workflows.delete('wfPayment0000001');
    (fake.workflows.get('wfNoPath00000001') as { active: boolean }).active = true;
    // Routing set through Carteiro for a workflow n8n says nothing about is kept.
    await c.request('PATCH', 'n8n/workflows/wfCustom00000001', { event_types: ['conversation.created'] });
    // A workflow a person disabled in Carteiro stays disabled, whatever n8n says.
    await c.request('POST', 'n8n/workflows/wfPublished00001/disable', { reason: 'paused by ops' });

    const r = await discover();
    assert.deepEqual(
      {
        pages: r.pages,
        listed: r.listed,
        created: r.created,
        updated: r.updated,
        unchanged: r.unchanged,
        deactivated: r.deactivated,
        reactivated: r.reactivated,
      },
      { pages: 4, listed: 7, created: 0, updated: 1, unchanged: 2, deactivated: 2, reactivated: 1 },
    );
    const byId = await rows();
    assert.equal(byId.size, 6, 'nothing is deleted');
    assert.equal(byId.get('wfUserReg0000001')?.name, 'User Signup');
    assert.deepEqual(byId.get('wfUserReg0000001')?.event_types, ['user.registered', 'user.updated']);
    assert.equal(byId.get('wfWhatsApp000001')?.is_active, false);
    assert.equal(byId.get('wfWhatsApp000001')?.inactive_reason, INACTIVE_IN_N8N);
    assert.equal(byId.get('wfWhatsApp000001')?.state, 'inactive');
    assert.equal(byId.get('wfPayment0000001')?.is_active, false);
    assert.equal(byId.get('wfPayment0000001')?.inactive_reason, GONE_FROM_N8N);
    assert.equal(byId.get('wfNoPath00000001')?.is_active, true);
    assert.deepEqual(byId.get('wfCustom00000001')?.event_types, ['conversation.created']);
    assert.equal(byId.get('wfPublished00001')?.is_active, false);
    assert.equal(byId.get('wfPublished00001')?.inactive_reason, 'paused by ops');

    // A deactivated workflow gets nothing.
    const ev = await trigger(c, { event_type: 'payment.confirmed', data: SEED_EVENT_DATA['payment.confirmed'] });
    assert.equal((await c.request('GET', `events/${ev}/status`)).body.deliveries.length, 0);
  });

  test('third run: a workflow re-created in n8n with a new id but the same webhook takes over its old row', async () => {
    fake.addWebhookWorkflow({ id: 'wfPayment0000002', name: 'Payment Processed', path: 'payment-processed' });
    (fake.workflows.get('wfWhatsApp000001') as { active: boolean }).active = true;
    const r = await discover();
    assert.equal(r.created, 0);
    assert.equal(r.updated, 1);
    assert.equal(r.reactivated, 2);
    const byId = await rows();
    assert.equal(byId.size, 6);
    assert.equal(byId.has('wfPayment0000001'), false);
    assert.equal(byId.get('wfPayment0000002')?.is_active, true);
    assert.equal(byId.get('wfWhatsApp000001')?.is_active, true);
  });

  test('seed rows are adopted by discovery (same webhook URL), never duplicated', async () => {
    const org = (await c.request('POST', 'organizations', { name: 'seeded' })).body.id as string;
    const seeded = await c.request('POST', 'n8n/workflows/seed', {}, { 'x-organization-id': org });
    assert.equal(seeded.body.data.length, 7);
    const r = await discover(org);
    // user-registration and payment-processed exist in this n8n: the seed rows take their n8n ids.
    assert.equal(r.created, 4, 'six webhook workflows, two of them adopted seed rows');
    assert.equal(r.updated, 2);
    const byId = await rows(org);
    assert.equal(byId.size, 7 + 4);
    assert.equal(byId.has('dkbY8I5uombxmvgj'), false);
    assert.equal(byId.get('wfUserReg0000001')?.source, 'discovery');
    assert.deepEqual(byId.get('wfUserReg0000001')?.event_types, ['user.registered', 'user.updated']);
    // Seeding again adds nothing that discovery already has.
    const again = await c.request('POST', 'n8n/workflows/seed', {}, { 'x-organization-id': org });
    assert.deepEqual(
      again.body.data.filter((o: { result: string }) => o.result === 'created'),
      [],
    );
  });

  test('discovery runs as the n8n-discovery job', async () => {
    const job = await c.services.jobs.enqueue('n8n-discovery', { organizationId: DEFAULT_ORGANIZATION_ID });
    const done = await eventually(
      async () => {
        const s = await c.services.jobs.get(job.id);
        return s?.state === 'completed' && s;
      },
      { what: 'the discovery job' },
    );
    assert.deepEqual((done.result as { unchanged: number; listed: number }).listed, 8);
  });

  test('n8n refusing the key, or not answering, is a clear 502 and changes nothing', async () => {
    const before = await rows();
    const wrongKey = { ...c.config, n8n: { ...c.config.n8n, apiKey: 'wrong' } };
    await assert.rejects(
      discoverN8nWorkflows(
        { sql: c.services.ledger.sql, config: wrongKey, secrets: workflowSecretsOf(c.services) },
        { organizationId: DEFAULT_ORGANIZATION_ID },
      ),
      (err: Error & { statusCode?: number }) => {
        assert.equal(err.statusCode, 502);
        assert.match(err.message, /refused the key/);
        return true;
      },
    );
    const nowhere = { ...c.config, n8n: { ...c.config.n8n, apiUrl: 'http://127.0.0.1:9', apiTimeoutMs: 500 } };
    await assert.rejects(
      discoverN8nWorkflows(
        { sql: c.services.ledger.sql, config: nowhere, secrets: workflowSecretsOf(c.services) },
        { organizationId: DEFAULT_ORGANIZATION_ID },
      ),
      /did not answer/,
    );
    assert.deepEqual(await rows(), before);
  });

  test('discovery and the seed are admin actions', async () => {
    const org = (await c.request('POST', 'organizations', { name: 'tenant' })).body.id as string;
    const key = (await c.request('POST', `organizations/${org}/keys`, { name: 'k' })).body.key as string;
    assert.ok(key);
    assert.notEqual(key, TEST_ADMIN_KEY);
    for (const path of ['n8n/discover', 'n8n/workflows/seed']) {
      const res = await c.request('POST', path, {}, { authorization: `Bearer ${key}` });
      assert.equal(res.status, 403, path);
    }
    // Its own workflows it may manage.
    const own = await c.request('GET', 'n8n/workflows', undefined, { authorization: `Bearer ${key}` });
    assert.deepEqual(own.body.data, []);
  });

  test('health: reachable when n8n answers with the key; the probe tells a refused key and silence apart', async () => {
    const res = await c.request('GET', 'health');
    assert.equal(res.body.services.n8n, 'reachable');
    assert.equal(await createN8nApi({ apiUrl: fake.url, apiKey: 'wrong', timeoutMs: 1000 }).probe(), 'unhealthy');
    assert.equal(await createN8nApi({ apiUrl: fake.url, apiKey: undefined, timeoutMs: 1000 }).probe(), 'reachable');
    assert.equal(await createN8nApi({ apiUrl: 'http://127.0.0.1:9', apiKey: 'k', timeoutMs: 500 }).probe(), 'unreachable');
  });
});

describe('carteiro n8n (command line)', () => {
  test('seed, discover with a page size, list; usage and configuration errors', async () => {
    const fake = await startFakeN8n();
    fake.addWebhookWorkflow({ id: 'cliWf00000000001', name: 'A [agent.created]', path: 'a' });
    fake.addWebhookWorkflow({ id: 'cliWf00000000002', name: 'B', path: 'b', tags: ['on:agent.deleted'] });
    fake.addWebhookWorkflow({ id: 'cliWf00000000003', name: 'C', path: 'c', active: false });
    const env = testEnv({ env: { N8N_WEBHOOK_URL: fake.url, N8N_API_URL: fake.url, N8N_API_KEY: fake.apiKey } });
    const config = loadConfig(env);
    const lines: string[] = [];
    const errors: string[] = [];
    const io = { out: (l: string) => void lines.push(l), err: (l: string) => void errors.push(l) };
    try {
      assert.equal(await runN8n(config, ['seed'], io), 0);
      assert.equal(lines.filter((l) => l.startsWith('created')).length, 7);

      lines.length = 0;
      assert.equal(await runN8n(config, ['discover', '--page-size', '2'], io), 0);
      assert.match(lines[0] ?? '', /3 workflow\(s\) in 2 page\(s\), 3 with a POST Webhook trigger: 3 created/);

      lines.length = 0;
      assert.equal(await runN8n(config, ['list'], io), 0);
      assert.equal(lines.length, 10);
      assert.ok(lines.some((l) => l.startsWith('cliWf00000000003') && l.includes('inactive')));

      assert.equal(await runN8n(config, ['frobnicate'], io), 2);
      assert.equal(await runN8n(config, ['seed', '--every', '5m'], io), 2);
      const noApi = loadConfig({ ...env, N8N_API_URL: '' });
      assert.equal(await runN8n(noApi, ['discover'], io), 1);
      assert.match(errors.at(-1) ?? '', /N8N_API_URL/);
    } finally {
      await fake.close();
      await dropSchema(env);
      if (env.CARTEIRO_DATA_DIR) rmSync(env.CARTEIRO_DATA_DIR, { recursive: true, force: true });
    }
  });
});

describe('periodic discovery (N8N_DISCOVERY_INTERVAL_MS)', () => {
  test('the n8n-discovery job is scheduled and picks up a workflow added to n8n later', async () => {
    const fake = await startFakeN8n();
    fake.addWebhookWorkflow({ id: 'tick000000000001', name: 'First [agent.created]', path: 'first' });
    const c = await startCarteiro({ env: { N8N_API_URL: fake.url, N8N_API_KEY: fake.apiKey, N8N_DISCOVERY_INTERVAL_MS: '300' } });
    try {
      const listed = async () => ((await c.request('GET', 'n8n/workflows')).body.data as { workflow_id: string }[]).map((w) => w.workflow_id).sort();
      await eventually(async () => (await listed()).length === 1, { what: 'the first scheduled discovery' });
      fake.addWebhookWorkflow({ id: 'tick000000000002', name: 'Second [agent.deleted]', path: 'second' });
      await eventually(async () => (await listed()).length === 2, { what: 'a later scheduled discovery' });
      assert.deepEqual(await listed(), ['tick000000000001', 'tick000000000002']);
    } finally {
      await c.stop();
      await fake.close();
    }
  });
});
