/**
 * A seeded workflow must not point nowhere (issue 22 §5): with n8n's API configured, seeding checks
 * each seed path against the workflows the (fake) n8n lists and marks those it cannot confirm; a later
 * discovery deactivates seeded rows whose path n8n does not have and reactivates them when it does.
 * /health says what Carteiro knows of n8n. Only a fake n8n on loopback is ever contacted.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { dropSchema, eventually, startCarteiro, testEnv, type TestCarteiro } from '../support/carteiro.ts';
import { loadConfig } from '../../src/config/config.ts';
import { runN8n } from '../../src/cli/n8n-command.ts';
import { SEED_WORKFLOWS } from '../../src/integrations/n8n/seed-workflows.ts';
import { INACTIVE_IN_N8N, PATH_NOT_IN_N8N } from '../../src/integrations/n8n/discovery.ts';
import { startFakeN8n, type FakeN8n } from './fake-n8n.ts';
import { SEED_EVENT_DATA } from './signatures.ts';

type Outcome = { workflow_id: string; path: string; result: string; confirmed: boolean | null; note: string | null; is_active: boolean };
type Row = {
  workflow_id: string;
  path: string;
  source: string;
  is_active: boolean;
  inactive_reason: string | null;
  confirmed: boolean | null;
  confirmation_note: string | null;
  confirmed_at: string | null;
};

const [REG, PAY, WHATSAPP] = SEED_WORKFLOWS as [(typeof SEED_WORKFLOWS)[0], (typeof SEED_WORKFLOWS)[0], (typeof SEED_WORKFLOWS)[0]];

describe("seeding against n8n's API (fake n8n)", () => {
  let c: TestCarteiro;
  let fake: FakeN8n;

  before(async () => {
    fake = await startFakeN8n();
    // Of the seed's seven paths this n8n has two: one active (under the seed's own id), one inactive.
    fake.addWebhookWorkflow({ id: REG.workflowId, name: REG.name, path: REG.path });
    fake.addWebhookWorkflow({ id: PAY.workflowId, name: PAY.name, path: PAY.path, active: false });
    c = await startCarteiro({ env: { N8N_WEBHOOK_URL: fake.url, N8N_API_URL: fake.url, N8N_API_KEY: fake.apiKey } });
  });
  after(async () => {
    await c.stop();
    await fake.close();
  });

  const rows = async (): Promise<Map<string, Row>> => new Map(((await c.request('GET', 'n8n/workflows?limit=500')).body.data as Row[]).map((r) => [r.path, r]));

  test('health before anything is registered: the API reachable, no workflows, no discovery yet', async () => {
    const res = await c.request('GET', 'health');
    assert.equal(res.status, 200);
    assert.equal(res.body.services.n8n, 'reachable');
    assert.deepEqual(res.body.n8n, {
      api: 'reachable',
      webhook_url: 'configured',
      workflows: { registered: 0, active: 0, unconfirmed: 0 },
      last_discovery: null,
    });
  });

  test('the seed confirms the path n8n serves and leaves the others inactive, saying why', async () => {
    const res = await c.request('POST', 'n8n/workflows/seed', {});
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const out = new Map((res.body.data as Outcome[]).map((o) => [o.path, o]));
    assert.equal(out.size, 7);
    assert.deepEqual(
      [out.get(REG.path)?.result, out.get(REG.path)?.confirmed, out.get(REG.path)?.note, out.get(REG.path)?.is_active],
      ['created', true, null, true],
    );
    assert.deepEqual([out.get(PAY.path)?.confirmed, out.get(PAY.path)?.note, out.get(PAY.path)?.is_active], [false, INACTIVE_IN_N8N, false]);
    const missing = [...out.values()].filter((o) => o.path !== REG.path && o.path !== PAY.path);
    assert.equal(missing.length, 5);
    for (const o of missing) assert.deepEqual([o.confirmed, o.note, o.is_active], [false, PATH_NOT_IN_N8N, false], o.path);

    const byPath = await rows();
    const wa = byPath.get(WHATSAPP.path);
    assert.deepEqual([wa?.confirmed, wa?.confirmation_note, wa?.is_active, wa?.inactive_reason], [false, PATH_NOT_IN_N8N, false, PATH_NOT_IN_N8N]);
    assert.ok(wa?.confirmed_at);
    assert.equal(byPath.get(REG.path)?.confirmed, true);

    // No delivery is even attempted to a path n8n does not have: an event of its type reaches nothing.
    const type = WHATSAPP.eventTypes[0] as string;
    const ev = await c.request('POST', 'trigger', { event_type: type, data: SEED_EVENT_DATA[type] });
    assert.equal(ev.status, 202, JSON.stringify(ev.body));
    const status = await c.request('GET', `events/${ev.body.event_id ?? ev.body.id}/status`);
    assert.equal(status.status, 200, JSON.stringify(status.body));
    assert.deepEqual(
      (status.body.deliveries as { destination: string }[]).filter((d) => d.destination === 'n8n'),
      [],
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fake.hitsOn(WHATSAPP.path).length, 0);
  });

  test('health counts the registered, active and unconfirmed workflows', async () => {
    const res = await c.request('GET', 'health');
    assert.equal(res.body.services.n8n, 'reachable');
    assert.deepEqual(res.body.n8n.workflows, { registered: 7, active: 1, unconfirmed: 6 });
  });

  test('discovery reactivates a seeded workflow when n8n has its path, and deactivates it when the path goes', async () => {
    fake.addWebhookWorkflow({ id: 'n8nOwnWhatsApp01', name: 'WhatsApp Integration', path: WHATSAPP.path });
    const first = await c.request('POST', 'n8n/discover', {});
    assert.equal(first.status, 200, JSON.stringify(first.body));
    assert.equal(first.body.reactivated, 1);
    const wa = (await rows()).get(WHATSAPP.path);
    // Adopted by its URL: from now on it is n8n's workflow, under n8n's id.
    assert.deepEqual([wa?.workflow_id, wa?.source, wa?.is_active, wa?.confirmed, wa?.confirmation_note], ['n8nOwnWhatsApp01', 'discovery', true, true, null]);

    const health = await c.request('GET', 'health');
    assert.equal(health.body.n8n.last_discovery.ok, true);
    assert.equal(health.body.n8n.last_discovery.result.reactivated, 1);
    assert.equal(health.body.n8n.workflows.active, 2);

    // A seeded row that n8n confirmed, whose path then disappears from n8n, is deactivated by discovery.
    const org = (await c.request('POST', 'organizations', { name: 'seeded later' })).body.id as string;
    const headers = { 'x-organization-id': org };
    fake.workflows.delete(REG.workflowId);
    fake.addWebhookWorkflow({ id: 'otherIdForReg001', name: 'Registration elsewhere', path: 'somewhere-else' });
    fake.addWebhookWorkflow({ id: 'onbSeedPath00001', name: 'Onboarding', path: 'onboarding-complete' });
    const seeded = await c.request('POST', 'n8n/workflows/seed', {}, headers);
    const onboarding = (seeded.body.data as Outcome[]).find((o) => o.path === 'onboarding-complete');
    assert.deepEqual([onboarding?.confirmed, onboarding?.is_active], [true, true]);
    fake.workflows.delete('onbSeedPath00001');
    const second = await c.request('POST', 'n8n/discover', {}, headers);
    assert.equal(second.status, 200, JSON.stringify(second.body));
    assert.equal(second.body.deactivated, 1, 'the onboarding seed row');
    const mine = new Map(((await c.request('GET', 'n8n/workflows?limit=500', undefined, headers)).body.data as Row[]).map((r) => [r.path, r]));
    const onb = mine.get('onboarding-complete');
    assert.deepEqual(
      [onb?.source, onb?.is_active, onb?.inactive_reason, onb?.confirmed, onb?.confirmation_note],
      ['seed', false, PATH_NOT_IN_N8N, false, PATH_NOT_IN_N8N],
    );

    // And back when n8n has the path again.
    fake.addWebhookWorkflow({ id: 'onbSeedPath00002', name: 'Onboarding again', path: 'onboarding-complete' });
    const third = await c.request('POST', 'n8n/discover', {}, headers);
    assert.equal(third.body.reactivated, 1);
    const back = ((await c.request('GET', 'n8n/workflows?limit=500', undefined, headers)).body.data as Row[]).find((r) => r.path === 'onboarding-complete');
    assert.deepEqual([back?.is_active, back?.confirmed], [true, true]);
  });

  test('a seed at another base URL than the n8n the API describes is not checked, and discovery leaves it alone', async () => {
    const org = (await c.request('POST', 'organizations', { name: 'elsewhere' })).body.id as string;
    const headers = { 'x-organization-id': org };
    const seeded = await c.request('POST', 'n8n/workflows/seed', { base_url: 'http://127.0.0.1:9' }, headers);
    assert.equal(seeded.status, 200, JSON.stringify(seeded.body));
    for (const o of seeded.body.data as Outcome[]) {
      assert.deepEqual([o.result, o.confirmed, o.is_active], ['created', null, true], o.path);
      assert.match(o.note ?? '', /^not checked: the seed's base URL is not the n8n/);
    }
    const found = await c.request('POST', 'n8n/discover', {}, headers);
    // Only the payment row changes: n8n lists its workflow id (inactive), and a match by id is n8n's own word.
    assert.equal(found.body.deactivated, 1);
    const mine = ((await c.request('GET', 'n8n/workflows?limit=500', undefined, headers)).body.data as Row[]).filter((r) => r.source === 'seed');
    assert.equal(mine.length, 6);
    assert.ok(
      mine.every((r) => r.is_active && r.confirmed === null),
      JSON.stringify(mine),
    );
  });

  test('a discovery that fails is what health shows last', async () => {
    await fake.close();
    const res = await c.request('POST', 'n8n/discover', {});
    assert.equal(res.status, 502);
    // /health asks n8n at most every 2 s (its probe's cache): the last answer may still be 'reachable'.
    const health = await eventually(
      async () => {
        const h = await c.request('GET', 'health');
        return h.body.n8n.api === 'unreachable' ? h : null;
      },
      { what: "/health saying n8n's API is unreachable" },
    );
    assert.equal(health.body.n8n.last_discovery.ok, false);
    assert.equal(health.body.n8n.last_discovery.result, null);
    // Public: neither n8n's error text nor its address.
    assert.ok(!JSON.stringify(health.body).includes('127.0.0.1'), JSON.stringify(health.body));
    fake = await startFakeN8n(); // for after()
  });
});

describe('seeding against a slow n8n', () => {
  test("the seed waits for n8n's list past the answer deadline (each call has its own timeout)", async () => {
    const fake = await startFakeN8n();
    fake.addWebhookWorkflow({ id: REG.workflowId, name: REG.name, path: REG.path });
    fake.listDelayMs = 1_500;
    const c = await startCarteiro({ env: { N8N_WEBHOOK_URL: fake.url, N8N_API_URL: fake.url, N8N_API_KEY: fake.apiKey, CARTEIRO_ANSWER_DEADLINE_MS: '1000' } });
    try {
      const res = await c.request('POST', 'n8n/workflows/seed', {});
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal((res.body.data as Outcome[]).find((o) => o.path === REG.path)?.confirmed, true);
    } finally {
      await c.stop();
      await fake.close();
    }
  });
});

describe("health and the seed without n8n's API", () => {
  test('workflows registered with no N8N_* set: configured, counted, not checked', async () => {
    const c = await startCarteiro({});
    try {
      const before = await c.request('GET', 'health');
      assert.equal(before.body.services.n8n, 'not_configured');
      assert.equal((await c.request('GET', 'stats')).body.n8n_integration, 'not_configured');
      const seeded = await c.request('POST', 'n8n/workflows/seed', { base_url: 'http://127.0.0.1:9' });
      assert.equal(seeded.status, 200, JSON.stringify(seeded.body));
      for (const o of seeded.body.data as Outcome[]) assert.deepEqual([o.confirmed, o.is_active], [null, true]);
      assert.match((seeded.body.data as Outcome[])[0]?.note ?? '', /not checked: N8N_API_URL/);
      const res = await c.request('GET', 'health');
      assert.equal(res.body.services.n8n, 'configured');
      assert.equal((await c.request('GET', 'stats')).body.n8n_integration, 'active');
      assert.deepEqual(res.body.n8n, {
        api: 'not_configured',
        webhook_url: 'not_configured',
        workflows: { registered: 7, active: 7, unconfirmed: 0 },
        last_discovery: null,
      });
    } finally {
      await c.stop();
    }
  });
});

describe('carteiro n8n seed and list show the confirmation', () => {
  test('confirmed, unconfirmed with the reason, or not checked', async () => {
    const fake = await startFakeN8n();
    fake.addWebhookWorkflow({ id: REG.workflowId, name: REG.name, path: REG.path });
    const env = testEnv({ env: { N8N_WEBHOOK_URL: fake.url, N8N_API_URL: fake.url, N8N_API_KEY: fake.apiKey } });
    const lines: string[] = [];
    const io = { out: (l: string) => void lines.push(l), err: (l: string) => void lines.push(l) };
    try {
      assert.equal(await runN8n(loadConfig(env), ['seed'], io), 0);
      assert.ok(
        lines.some((l) => l.includes(REG.workflowId) && l.includes('[confirmed]')),
        lines.join('\n'),
      );
      assert.ok(
        lines.some((l) => l.includes(WHATSAPP.workflowId) && l.includes(`[unconfirmed: ${PATH_NOT_IN_N8N}; inactive]`)),
        lines.join('\n'),
      );
      lines.length = 0;
      assert.equal(await runN8n(loadConfig(env), ['list'], io), 0);
      assert.ok(
        lines.some((l) => l.startsWith(REG.workflowId) && l.includes('; confirmed')),
        lines.join('\n'),
      );
      assert.ok(
        lines.some((l) => l.startsWith(WHATSAPP.workflowId) && l.includes(`inactive (${PATH_NOT_IN_N8N})`) && l.includes('; unconfirmed')),
        lines.join('\n'),
      );
      // n8n not answering: the seed still loads, every row marked unconfirmed with the error, none deactivated by it.
      await fake.close();
      lines.length = 0;
      const other = loadConfig({ ...env, N8N_API_TIMEOUT_MS: '500' });
      assert.equal(await runN8n(other, ['seed'], io), 0);
      assert.ok(
        lines.every((l) => l.includes('unconfirmed: could not ask n8n:')),
        lines.join('\n'),
      );
    } finally {
      await fake.close().catch(() => {});
      await dropSchema(env);
      if (env.CARTEIRO_DATA_DIR) rmSync(env.CARTEIRO_DATA_DIR, { recursive: true, force: true });
    }
  });
});
