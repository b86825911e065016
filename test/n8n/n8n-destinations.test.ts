/**
 * n8n workflows as destinations, against a REAL n8n on loopback (test/support/n8n.ts; one n8n for the
 * whole file). Needs n8n installed outside the clone (`bash scripts/n8n/install.sh`); skipped when it
 * is missing, except in CI, where that is a failure.
 *
 *   1. the seed's seven workflows exist in n8n (Webhook trigger, raw body kept); `n8n/workflows/seed`
 *      registers them in Carteiro; each seed event is triggered through Carteiro's API and read back
 *      from n8n's execution log, with both signatures verified over the exact bytes n8n received;
 *   2. n8n/sync through n8n, and an unknown sync_type;
 *   3. a deactivated workflow: n8n answers 404, recorded as "n8n workflow inactive", workflow marked;
 *   4. discovery from n8n's API across two pages, then again after changes in n8n.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fetch } from 'undici';
import { isN8nInstalled, n8nInstallDir, N8N_INSTALL_HINT, startN8n, type CreatedWorkflow, type ReceivedItem, type RunningN8n } from '../support/n8n.ts';
import { startCarteiro, eventually, trigger, type TestCarteiro } from '../support/carteiro.ts';
import { SEED_WORKFLOWS } from '../../src/integrations/n8n/seed-workflows.ts';
import { GONE_FROM_N8N, INACTIVE_IN_N8N } from '../../src/integrations/n8n/discovery.ts';
import { SEED_EVENT_DATA, verifyDelivery } from '../n8n-fake/signatures.ts';

/** After deactivation, until n8n no longer serves the production webhook (OPTIONS stops answering 204; nothing runs). */
async function waitForWebhookGone(n8n: RunningN8n, path: string, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await fetch(`${n8n.baseUrl}/webhook/${path}`, {
      method: 'OPTIONS',
      headers: { origin: 'http://127.0.0.1', 'access-control-request-method': 'POST' },
      signal: AbortSignal.timeout(5_000),
    });
    await res.arrayBuffer();
    if (res.status !== 204) return;
    if (Date.now() > until) throw new Error(`n8n still serves /webhook/${path} ${timeoutMs} ms after deactivation`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * A loaded machine can make n8n answer slower than the tests' usual 2 s timeout; a timed-out attempt is
 * retried and n8n would run the event twice (delivery is at-least-once). Realistic timeouts here.
 */
const REAL_N8N_ENV = { WEBHOOK_TIMEOUT_MS: '15000', CARTEIRO_LEASE_MS: '45000' };

/** The workflow's execution for one event (by the body's id), waiting for it to be saved. */
async function executionOf(n8n: RunningN8n, workflowId: string, eventId: string, timeoutMs = 30_000): Promise<ReceivedItem & { rawBody: Buffer }> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const found = (await n8n.listExecutions(workflowId)).find((i) => i.rawBody && JSON.parse(i.rawBody.toString('utf8')).id === eventId);
    if (found) return found as ReceivedItem & { rawBody: Buffer };
    if (Date.now() > until) throw new Error(`workflow ${workflowId} has no execution for event ${eventId} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const installed = isN8nInstalled();
const skip = !installed && !process.env['CI'] ? `${N8N_INSTALL_HINT} (looked in ${n8nInstallDir()})` : false;

/**
 * How each seed workflow carries its routing in n8n, one of each convention (docs/n8n.md):
 * `on:` tags, the older `carteiro:` tag, a [list] in the name for a type too long for a 24-character
 * tag, and nothing at all (the seed's path map).
 */
const ROUTING: Record<string, { name?: string; tags: string[] }> = {
  'user-registration': { tags: ['on:user.registered'] },
  'payment-processed': { tags: ['on:payment.confirmed'] },
  'whatsapp-connected': { name: 'WhatsApp Integration [integration.whatsapp.connected]', tags: [] },
  'openai-connected': { tags: [] },
  'agent-created': { tags: ['carteiro:agent.created'] },
  'template-applied': { tags: ['on:template.applied'] },
  'onboarding-complete': { tags: ['on:onboarding.completed'] },
};

describe('n8n workflows as destinations (real n8n)', { skip, timeout: 300_000 }, () => {
  let n8n: RunningN8n;
  let c: TestCarteiro;
  const workflows = new Map<string, CreatedWorkflow>();
  let secret: string;

  before(async () => {
    assert.ok(installed, `${N8N_INSTALL_HINT} (looked in ${n8nInstallDir()}); CI must not skip this test`);
    n8n = await startN8n();
    for (const s of SEED_WORKFLOWS) {
      const r = ROUTING[s.path] as { name?: string; tags: string[] };
      workflows.set(s.path, await n8n.createWebhookWorkflow({ name: r.name ?? s.name, path: s.path, tags: r.tags, rawBody: true, active: true }));
    }
    c = await startCarteiro({ env: { ...REAL_N8N_ENV, N8N_WEBHOOK_URL: n8n.baseUrl } });
    secret = c.config.keys.webhookSecret as string;
  });
  after(async () => {
    await c?.stop();
    await n8n?.stop();
  });

  const n8nId = (path: string) => (workflows.get(path) as CreatedWorkflow).id;

  test('each seed event, triggered through Carteiro, runs its seed workflow in n8n with signatures that verify', async () => {
    const seeded = await c.request('POST', 'n8n/workflows/seed', {});
    assert.equal(seeded.status, 200, JSON.stringify(seeded.body));
    assert.deepEqual(
      seeded.body.data.map((o: { webhook_url: string }) => o.webhook_url),
      SEED_WORKFLOWS.map((s) => `${n8n.baseUrl}/webhook/${s.path}`),
    );

    const sent = new Map<string, string>();
    for (const s of SEED_WORKFLOWS) {
      const type = s.eventTypes[0] as string;
      sent.set(s.path, await trigger(c, { event_type: type, data: SEED_EVENT_DATA[type] }));
    }
    for (const s of SEED_WORKFLOWS) {
      const type = s.eventTypes[0] as string;
      // Every run of the workflow is this event (a retry after a slow answer repeats the same webhook-id).
      for (const item of await n8n.waitForExecutions(n8nId(s.path), 1)) {
        assert.equal(item.status, 'success');
        assert.ok(item.rawBody, 'n8n kept the raw bytes');
        const body = JSON.parse(item.rawBody.toString('utf8'));
        assert.equal(body.id, sent.get(s.path), `${s.path} received only its own event`);
        assert.equal(body.type, type);
        assert.deepEqual(body.data, SEED_EVENT_DATA[type]);
        assert.equal(item.headers['webhook-id'], sent.get(s.path));
        assert.deepEqual(
          verifyDelivery(secret, item.rawBody, item.headers),
          { seed: true, standard: true },
          `${s.path}: signatures verify over the received bytes`,
        );
      }
    }
    for (const [path, eventId] of sent) {
      await eventually(async () => (await c.request('GET', `events/${eventId}/status`)).body.status === 'completed', {
        timeoutMs: 30_000,
        what: `${path} event completed`,
      });
    }
    const rows = await eventually(
      async () => {
        const data = (await c.request('GET', 'n8n/workflows')).body.data as { success_count: number; state: string }[];
        return data.every((w) => w.success_count === 1 && w.state === 'active') && data;
      },
      { what: 'counters and state' },
    );
    assert.equal(rows.length, 7);
  });

  test('n8n/sync sends data to the workflow by path, and an unknown sync_type is a 404 listing the known ones', async () => {
    const data = { user_id: 'test-123', email: 'test@example.com' };
    const res = await c.request('POST', 'n8n/sync', { sync_type: 'user-registration', data, wait_ms: 20_000 });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'delivered');
    assert.equal(res.body.delivery.status_code, 200);
    const last = await executionOf(n8n, n8nId('user-registration'), res.body.event_id);
    const body = JSON.parse(last.rawBody.toString('utf8'));
    assert.equal(body.id, res.body.event_id);
    assert.equal(body.type, 'n8n.sync');
    assert.deepEqual(body.data, data);
    assert.deepEqual(verifyDelivery(secret, last.rawBody, last.headers), { seed: true, standard: true });

    const unknown = await c.request('POST', 'n8n/sync', { sync_type: 'no-such-flow', data });
    assert.equal(unknown.status, 404);
    assert.deepEqual(unknown.body.details.known_sync_types, SEED_WORKFLOWS.map((s) => s.path).sort());
  });

  test('a workflow deactivated in n8n: its 404 is recorded as "n8n workflow inactive", retried, and the workflow marked', async () => {
    const before = (await c.request('GET', 'n8n/workflows/5a8pr08Hyyw3DmHk')).body;
    const ranBefore = (await n8n.listExecutions(n8nId('onboarding-complete'))).length;
    await n8n.deactivate(n8nId('onboarding-complete'));
    await waitForWebhookGone(n8n, 'onboarding-complete');
    const eventId = await trigger(c, { event_type: 'onboarding.completed', data: SEED_EVENT_DATA['onboarding.completed'] });
    await eventually(async () => (await c.request('GET', `events/${eventId}/status`)).body.status === 'failed', {
      timeoutMs: 20_000,
      what: 'the delivery to give up',
    });
    const attempts = (await c.request('GET', `events/${eventId}/attempts`)).body.data as { status_code: number; error: string }[];
    const seen = JSON.stringify(attempts.map((a) => [a.status_code, a.error]));
    assert.equal(attempts.length, 4, `first attempt and WEBHOOK_MAX_RETRIES=3 retries: ${seen}`);
    for (const a of attempts) {
      assert.equal(a.status_code, 404, seen);
      assert.match(a.error, /^n8n workflow inactive/, seen);
    }
    const w = (await c.request('GET', 'n8n/workflows/5a8pr08Hyyw3DmHk')).body;
    assert.equal(w.state, 'inactive');
    assert.match(w.last_error, /n8n workflow inactive/);
    assert.equal(w.failure_count - before.failure_count, 4);
    assert.equal((await n8n.listExecutions(n8nId('onboarding-complete'))).length, ranBefore, 'n8n ran nothing');
  });

  test('discovery reads n8n across two pages, then updates, deactivates and reactivates rows after changes in n8n', async () => {
    const d = await startCarteiro({ env: { ...REAL_N8N_ENV, N8N_WEBHOOK_URL: n8n.baseUrl, N8N_API_URL: n8n.baseUrl, N8N_API_KEY: n8n.apiKey } });
    try {
      assert.equal((await d.request('GET', 'health')).body.services.n8n, 'reachable');

      const first = await d.request('POST', 'n8n/discover', { page_size: 4 });
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.deepEqual(
        { pages: first.body.pages, listed: first.body.listed, created: first.body.created, skipped: first.body.skipped },
        { pages: 2, listed: 7, created: 7, skipped: 0 },
      );
      const rows = async () => new Map(((await d.request('GET', 'n8n/workflows')).body.data as Record<string, any>[]).map((r) => [r.path as string, r]));
      let byPath = await rows();
      for (const s of SEED_WORKFLOWS) {
        const row = byPath.get(s.path);
        assert.ok(row, s.path);
        assert.equal(row.workflow_id, n8nId(s.path));
        assert.equal(row.webhook_url, `${n8n.baseUrl}/webhook/${s.path}`);
        assert.deepEqual(row.event_types, s.eventTypes, `${s.path}: routing from n8n`);
      }
      assert.equal(byPath.get('onboarding-complete')?.is_active, false, 'inactive in n8n (previous test)');
      assert.equal(byPath.get('onboarding-complete')?.inactive_reason, INACTIVE_IN_N8N);

      // Discovered rows route at once.
      const routed = await trigger(d, { event_type: 'agent.created', data: SEED_EVENT_DATA['agent.created'] });
      const item = await executionOf(n8n, n8nId('agent-created'), routed);
      assert.equal(verifyDelivery(secret, item.rawBody, item.headers).seed, true);

      // Changes in n8n: a retag, a reactivation, a deactivation, a deletion.
      await n8n.setTags(n8nId('user-registration'), ['on:user.registered', 'on:user.updated']);
      await n8n.activate(n8nId('onboarding-complete'));
      await n8n.deactivate(n8nId('payment-processed'));
      await n8n.deleteWorkflow(n8nId('openai-connected'));

      const second = await d.request('POST', 'n8n/discover', { page_size: 4 });
      assert.deepEqual(
        {
          pages: second.body.pages,
          listed: second.body.listed,
          created: second.body.created,
          updated: second.body.updated,
          deactivated: second.body.deactivated,
          reactivated: second.body.reactivated,
        },
        { pages: 2, listed: 6, created: 0, updated: 1, deactivated: 2, reactivated: 1 },
      );
      byPath = await rows();
      assert.equal(byPath.size, 7, 'nothing deleted');
      assert.deepEqual(byPath.get('user-registration')?.event_types, ['user.registered', 'user.updated']);
      assert.equal(byPath.get('onboarding-complete')?.is_active, true);
      assert.equal(byPath.get('payment-processed')?.is_active, false);
      assert.equal(byPath.get('payment-processed')?.inactive_reason, INACTIVE_IN_N8N);
      assert.equal(byPath.get('openai-connected')?.is_active, false);
      assert.equal(byPath.get('openai-connected')?.inactive_reason, GONE_FROM_N8N);
    } finally {
      await d.stop();
    }
  });
});
