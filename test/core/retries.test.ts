/**
 * Failure paths with a fast retry policy (base 40 ms, factor 2, 3 retries, 2 s timeout):
 * every kind of failure is retried until success or exhaustion, and every attempt is logged.
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, trigger, eventually, settled, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithSeed, type Reply } from '../support/receiver.ts';

async function finalStatus(c: TestCarteiro, id: string, wanted: string[] = ['completed', 'failed']) {
  return eventually(
    async () => {
      const s = await c.request('GET', `events/${id}/status`);
      return wanted.includes(s.body.status) ? s.body : null;
    },
    { what: `event ${id} to finish` },
  );
}

describe('retries', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro();
  });
  after(async () => c.stop());

  test('500, timeout and connection reset are retried, then a 200 completes the event', async (t: TestContext) => {
    const script: Reply[] = [{ status: 500, body: 'boom' }, { delayMs: 2500 }, { reset: true }, { status: 200 }];
    const receiver = await startReceiver((_r, i) => script[i] ?? { status: 200 });
    t.after(() => receiver.close());
    const ep = await createEndpoint(c, { url: receiver.url, events: ['user.updated'] });
    const id = await trigger(c, { event_type: 'user.updated', data: { user_id: 'u-retry' } });
    const status = await finalStatus(c, id);
    assert.equal(status.status, 'completed');
    assert.equal(status.retry_count, 3);

    const attempts = (await c.request('GET', `events/${id}/attempts`)).body.data;
    assert.deepEqual(
      attempts.map((a: { attempt_number: number }) => a.attempt_number),
      [1, 2, 3, 4],
    );
    assert.equal(attempts[0].status_code, 500);
    assert.equal(attempts[0].response_body, 'boom');
    assert.match(attempts[1].error, /timeout/);
    assert.equal(attempts[2].status_code, null);
    assert.ok(attempts[2].error, 'a reset is recorded with its error');
    assert.equal(attempts[3].success, true);
    // Backoff: each retry waits at least the policy's delay (40, 80, 160 ms) after the previous attempt ended.
    const gaps = receiver.received.slice(1).map((r, i) => r.at - (receiver.received[i] as { at: number }).at);
    assert.ok((gaps[0] as number) >= 40 && (gaps[2] as number) >= 160, `gaps ${gaps}`);
    // The same webhook-id on every attempt, so receivers can de-duplicate.
    assert.equal(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size, 1);
    assert.ok(receiver.received.every((r) => verifiesWithSeed(ep.secret, r)));

    const endpoint = (await c.request('GET', `endpoints/${ep.id}`)).body;
    assert.equal(endpoint.success_count, 1);
    assert.equal(endpoint.failure_count, 3);
  });

  test('exhausting the retries fails the delivery and the event says why', async (t: TestContext) => {
    const receiver = await startReceiver(() => ({ status: 503, body: 'down' }));
    t.after(() => receiver.close());
    await createEndpoint(c, { url: receiver.url, events: ['agent.deleted'] });
    const id = await trigger(c, { event_type: 'agent.deleted', data: { agent_id: 'a-gone' } });
    const status = await finalStatus(c, id);
    assert.equal(status.status, 'failed');
    assert.equal(receiver.received.length, 4, 'one attempt plus three retries');
    assert.match(status.error_message, /HTTP 503.*gave up after 4 attempts/);
    assert.equal(status.deliveries[0].status, 'failed');
    const event = (await c.request('GET', `events/${id}`)).body;
    assert.equal(event.status, 'failed', 'the seed-visible status column is written too');
    assert.ok(event.processed_at);
  });

  test('410 Gone disables the endpoint and holds its other deliveries', async (t: TestContext) => {
    const receiver = await startReceiver(() => ({ status: 410 }));
    t.after(() => receiver.close());
    const ep = await createEndpoint(c, { url: receiver.url, events: ['template.applied'] });
    const id = await trigger(c, { event_type: 'template.applied', data: { template_id: 't1', agent_id: 'a1' } });
    const status = await finalStatus(c, id);
    assert.equal(status.status, 'failed');
    assert.equal(receiver.received.length, 1, '410 is not retried');
    const endpoint = (await c.request('GET', `endpoints/${ep.id}`)).body;
    assert.equal(endpoint.is_active, false);
    assert.match(endpoint.disabled_reason, /410/);
    // A disabled endpoint gets no new events: the new one has no dispatch for it, so it can never be sent.
    const later = await trigger(c, { event_type: 'template.applied', data: { template_id: 't2', agent_id: 'a1' } });
    assert.equal((await settled(c, { endpointId: ep.id })).dispatches, 1);
    assert.equal((await settled(c, { eventIds: [later] })).dispatches, 0);
    assert.equal(receiver.received.length, 1);
  });

  test('429 with Retry-After waits as long as the receiver asks', async (t: TestContext) => {
    let first = true;
    const receiver = await startReceiver(() => {
      if (first) {
        first = false;
        return { status: 429, headers: { 'retry-after': '1' } };
      }
      return { status: 200 };
    });
    t.after(() => receiver.close());
    await createEndpoint(c, { url: receiver.url, events: ['conversation.ended'] });
    const id = await trigger(c, { event_type: 'conversation.ended', data: { conversation_id: 'c1' } });
    await finalStatus(c, id, ['completed']);
    const [a, b] = receiver.received as unknown as [{ at: number }, { at: number }];
    assert.ok(b.at - a.at >= 950, `retried after ${b.at - a.at} ms, asked for 1 s`);
  });

  test('disabling an endpoint pauses its deliveries; enabling resumes them', async (t: TestContext) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const ep = await createEndpoint(c, { url: receiver.url, events: ['user.registered'], is_active: true });
    const off = await c.request('POST', `endpoints/${ep.id}/disable`, { reason: 'maintenance' });
    assert.equal(off.body.is_active, false);
    assert.equal(off.body.disabled_reason, 'maintenance');
    // Events created while disabled are not routed to it (like Svix): fan-out uses active endpoints.
    await trigger(c, { event_type: 'user.registered', data: { user_id: 'u1', email: 'a@b.c' } });
    assert.equal((await settled(c, { endpointId: ep.id })).dispatches, 0, 'nothing was routed to it, so nothing can be sent');
    assert.equal(receiver.received.length, 0);
    const on = await c.request('POST', `endpoints/${ep.id}/enable`);
    assert.equal(on.body.is_active, true);
    await trigger(c, { event_type: 'user.registered', data: { user_id: 'u2', email: 'b@b.c' } });
    await receiver.waitFor(1);
  });
});
