/**
 * End to end: events in through the API, signed webhooks out to real loopback receivers.
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, trigger, eventually, settled, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithSeed, verifiesWithStandardWebhooks, type TestReceiver } from '../support/receiver.ts';
import { storableOutcome, type OutcomeRecord } from '../../src/ledger/outcomes.ts';

describe('fan-out and signed delivery', () => {
  let c: TestCarteiro;
  let receivers: TestReceiver[];
  before(async () => {
    c = await startCarteiro();
    receivers = await Promise.all([startReceiver(), startReceiver(), startReceiver()]);
  });
  after(async () => {
    await c.stop();
    await Promise.all(receivers.map((r) => r.close()));
  });

  test('each event reaches exactly the endpoints whose filters match, signed both ways', async () => {
    const [all, integrations, agents] = receivers as [TestReceiver, TestReceiver, TestReceiver];
    const epAll = await createEndpoint(c, { url: `${all.url}/all`, events: ['*'] });
    const epInt = await createEndpoint(c, { url: `${integrations.url}/int`, events: ['integration.*'] });
    const epAgent = await createEndpoint(c, { url: `${agents.url}/agent`, events: ['agent.created', 'agent.deleted'] });

    const whatsapp = await trigger(c, { event_type: 'integration.whatsapp.connected', data: { user_id: 'u1', phone_number: '+55 11 90000-0000' } });
    const agent = await trigger(c, { event_type: 'agent.created', data: { agent_id: 'a1', name: 'Assistente de Vendas', user_id: 'u1' } });
    const updated = await trigger(c, { event_type: 'agent.updated', data: { agent_id: 'a1' } });

    await all.waitFor(3);
    await integrations.waitFor(1);
    await agents.waitFor(1);
    // Every dispatch settled: the requests above are all there will be.
    const ledger = await settled(c, { eventIds: [whatsapp, agent, updated] });
    assert.equal(ledger.dispatches, 5, 'one dispatch per matching endpoint');
    assert.equal(ledger.attempts, 5);
    assert.deepEqual(all.received.map((r) => r.headers['webhook-id']).sort(), [whatsapp, agent, updated].sort());
    assert.deepEqual(
      integrations.received.map((r) => r.headers['webhook-id']),
      [whatsapp],
    );
    assert.deepEqual(
      agents.received.map((r) => r.headers['webhook-id']),
      [agent],
    );

    const secrets = new Map([
      [all, epAll.secret],
      [integrations, epInt.secret],
      [agents, epAgent.secret],
    ]);
    for (const [receiver, secret] of secrets) {
      for (const r of receiver.received) {
        assert.ok(verifiesWithSeed(secret, r), "verifies with the seed's function");
        assert.ok(verifiesWithStandardWebhooks(secret, r), 'verifies with the standardwebhooks package');
        assert.equal(r.headers['user-agent'], 'AgentesDeConversao-Webhook/1.0');
        assert.equal(r.headers['content-type'], 'application/json');
      }
    }
    const body = JSON.parse((agents.received[0] as { body: string }).body);
    assert.equal(body.id, agent);
    assert.equal(body.type, 'agent.created');
    assert.deepEqual(body.data, { agent_id: 'a1', name: 'Assistente de Vendas', user_id: 'u1' });
    assert.ok(!Number.isNaN(Date.parse(body.timestamp)));
  });

  test('status shows completed with each delivery, and counters and the attempt log are true', async (t: TestContext) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const ep = await createEndpoint(c, { url: receiver.url, events: ['payment.confirmed'] });
    const id = await trigger(c, { event_type: 'payment.confirmed', data: { payment_id: 'p1', amount: 99.9, currency: 'BRL' } });
    await receiver.waitFor(1);
    const status = await eventually(
      async () => {
        const s = await c.request('GET', `events/${id}/status`);
        return s.body.status === 'completed' && s.body.processed_at ? s.body : null;
      },
      { what: 'event completed' },
    );
    assert.equal(status.retry_count, 0);
    assert.equal(status.error_message, null);
    // The catch-all endpoint from the first test gets it too.
    assert.equal(status.deliveries.length, 2);
    const mine = status.deliveries.find((d: { endpoint_id: string }) => d.endpoint_id === ep.id);
    assert.equal(mine.status, 'succeeded');
    assert.equal(mine.last_status_code, 200);
    assert.equal(mine.attempts, 1);

    const attempts = await c.request('GET', `events/${id}/attempts`);
    const attempt = attempts.body.data.find((a: { webhook_endpoint_id: string }) => a.webhook_endpoint_id === ep.id);
    assert.equal(attempts.body.data.length, 2);
    assert.equal(attempt.status_code, 200);
    assert.equal(attempt.attempt_number, 1);
    assert.equal(attempt.success, true);
    assert.equal(attempt.response_body, 'ok');
    assert.equal(typeof attempt.delivery_duration_ms, 'number');

    const endpoint = await c.request('GET', `endpoints/${ep.id}`);
    assert.equal(endpoint.body.success_count, 1);
    assert.equal(endpoint.body.failure_count, 0);
    assert.equal(endpoint.body.secret, undefined, 'the secret is shown only once');
  });

  test('a receiver answering NUL bytes gets its attempt logged, and other outcomes in the batch are kept', async (t: TestContext) => {
    // Postgres text cannot hold NUL: stored as is, the batch failed on every retry and the worker
    // stopped recording every endpoint's outcomes. Sealed whole, the body keeps its bytes exactly.
    const receiver = await startReceiver(() => ({ status: 200, body: 'bin\u0000ary\u0000' }));
    t.after(() => receiver.close());
    const ep = await createEndpoint(c, { url: receiver.url, events: ['payment.failed'] });
    const id = await trigger(c, { event_type: 'payment.failed', data: { payment_id: 'p2', reason: 'card declined' } });
    await receiver.waitFor(1);
    const status = await eventually(
      async () => {
        const s = await c.request('GET', `events/${id}/status`);
        return s.body.status === 'completed' ? s.body : null;
      },
      { what: 'event completed' },
    );
    assert.equal(status.deliveries.length, 2, 'the catch-all endpoint from the first test has its outcome recorded too');
    assert.ok(status.deliveries.every((d: { status: string }) => d.status === 'succeeded'));
    const attempts = await c.request('GET', `events/${id}/attempts`);
    const attempt = attempts.body.data.find((a: { webhook_endpoint_id: string }) => a.webhook_endpoint_id === ep.id);
    assert.equal(attempt.response_body, 'bin\u0000ary\u0000');
    assert.equal(receiver.received.length, 1, 'delivered once: the outcome was recorded, so nothing was sent again');
  });

  test('unsealed text with NUL bytes is stored with U+FFFD in their place', () => {
    const outcome = { responseBody: 'a\u0000b', responseSealed: false, error: 'x\u0000', dispatchId: 'd' } as unknown as OutcomeRecord;
    const stored = storableOutcome(outcome);
    assert.equal(stored.responseBody, 'a\uFFFDb');
    assert.equal(stored.error, 'x\uFFFD');
    const clean = { responseBody: 'ok', error: null } as unknown as OutcomeRecord;
    assert.equal(storableOutcome(clean), clean, 'clean outcomes are not copied');
  });

  test('an event no endpoint wants is completed at once, with no deliveries', async () => {
    // Another organization (the admin may act for any): none of its endpoints exist. Organizations
    // must exist to be named (an unknown one is 404), so these two are made first.
    const [otherOrg, thirdOrg] = await Promise.all(
      ['other', 'third'].map(async (name) => (await c.request('POST', 'organizations', { name })).body.id as string),
    );
    const other = { 'x-organization-id': otherOrg as string };
    const id = await trigger(c, { event_type: 'onboarding.completed', data: { user_id: 'nobody-listens' } }, other);
    const status = await c.request('GET', `events/${id}/status`, undefined, other);
    assert.equal(status.body.status, 'completed');
    assert.deepEqual(status.body.deliveries, []);
    const hidden = await c.request('GET', `events/${id}/status`, undefined, { 'x-organization-id': thirdOrg as string });
    assert.equal(hidden.status, 404, 'another organization does not see it');
  });
});
