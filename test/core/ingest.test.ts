/**
 * Ingestion: the seed's routes, idempotency, and bad input that is rejected with a message naming
 * the problem while nothing at all is stored.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, type TestCarteiro } from '../support/carteiro.ts';

async function countEvents(c: TestCarteiro): Promise<number> {
  const [row] = await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_events`;
  return row?.n ?? -1;
}

describe('ingestion', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro({ env: { CARTEIRO_BODY_LIMIT_BYTES: '65536' } });
  });
  after(async () => c.stop());

  test("the seed's per-type route takes the event's data as its body", async () => {
    const res = await c.request('POST', 'events/user-registered', {
      user_id: 'test-user-123', email: 'test@example.com', name: 'Test User', metadata: { source: 'landing_page' },
    });
    assert.equal(res.status, 202);
    const event = (await c.request('GET', `events/${res.body.event_id}`)).body;
    assert.equal(event.event_type, 'user.registered');
    assert.equal(event.user_id, 'test-user-123');
    assert.equal(event.event_source, 'api');
    assert.deepEqual(event.data.metadata, { source: 'landing_page' });
    for (const kebab of ['payment-confirmed', 'conversation-message-added', 'integration-whatsapp-connected', 'onboarding-step-completed']) {
      const route = await c.request('POST', `events/${kebab}`, {});
      assert.equal(route.status, 422, `${kebab} exists and validates its data`);
    }
  });

  test('payments are high priority by the catalog; a caller may override', async () => {
    const paid = await c.request('POST', 'trigger', { event_type: 'payment.confirmed', data: { payment_id: 'p1' } });
    const low = await c.request('POST', 'trigger', { event_type: 'payment.failed', data: { payment_id: 'p2' }, priority: 'normal' });
    assert.equal((await c.request('GET', `events/${paid.body.event_id}`)).body.priority, 'high');
    assert.equal((await c.request('GET', `events/${low.body.event_id}`)).body.priority, 'normal');
  });

  test('the same Idempotency-Key returns the first event, never a second one, even when requests race', async () => {
    const before = await countEvents(c);
    const body = { event_type: 'agent.created', data: { agent_id: 'idem-1' } };
    const results = await Promise.all(Array.from({ length: 10 }, () => c.request('POST', 'trigger', body, { 'idempotency-key': 'order-42' })));
    assert.ok(results.every((r) => r.status === 202));
    const ids = new Set(results.map((r) => r.body.event_id));
    assert.equal(ids.size, 1);
    assert.equal(results.filter((r) => r.body.duplicate === false).length, 1);
    const viaField = await c.request('POST', 'trigger', { ...body, idempotency_key: 'order-42' });
    assert.equal(viaField.body.event_id, [...ids][0]);
    assert.equal(viaField.body.duplicate, true);
    assert.equal(await countEvents(c), before + 1);
  });

  test('a batch commits all its events at once, deduplicating keys inside it', async () => {
    const res = await c.request('POST', 'events/batch', {
      events: [
        { event_type: 'agent.created', data: { agent_id: 'b1' }, idempotency_key: 'batch-k' },
        { event_type: 'agent.created', data: { agent_id: 'b1' }, idempotency_key: 'batch-k' },
        { event_type: 'conversation.created', data: { conversation_id: 'c1' } },
      ],
    });
    assert.equal(res.status, 202);
    assert.equal(res.body.events.length, 3);
    assert.equal(res.body.events[0].event_id, res.body.events[1].event_id);
    assert.deepEqual(res.body.events.map((e: { duplicate: boolean }) => e.duplicate), [false, true, false]);
  });

  const bad: [string, string, unknown, number, RegExp][] = [
    ['unknown event type', 'trigger', { event_type: 'user.exploded', data: {} }, 422, /user\.exploded.*not in the catalog/],
    ['missing event_type', 'trigger', { data: {} }, 400, /event_type/],
    ['missing data', 'trigger', { event_type: 'agent.created' }, 400, /data/],
    ['data of the wrong type', 'trigger', { event_type: 'agent.created', data: 'x' }, 400, /data/],
    ['a required data field missing', 'trigger', { event_type: 'user.registered', data: { user_id: 'u' } }, 422, /data\.email is required/],
    ['a data field of the wrong type', 'trigger', { event_type: 'payment.confirmed', data: { payment_id: 'p', amount: 'ten' } }, 422, /data\.amount/],
    ['an unknown top-level field', 'trigger', { event_type: 'agent.created', data: { agent_id: 'a' }, colour: 'red' }, 400, /colour/],
    ['a malformed event type name', 'trigger', { event_type: 'Agent Created!', data: {} }, 400, /event_type/],
    ['priority outside the enum', 'trigger', { event_type: 'agent.created', data: { agent_id: 'a' }, priority: 'urgent' }, 400, /priority/],
    ['malformed JSON', 'trigger', '{"event_type": "agent.created", "data": {', 400, /JSON/i],
    ['an empty batch', 'events/batch', { events: [] }, 400, /events/],
    ['a batch with one bad event', 'events/batch', { events: [{ event_type: 'agent.created', data: { agent_id: 'ok' } }, { event_type: 'agent.created', data: {} }] }, 422, /events\[1\].*agent_id/],
    ['an unknown per-type route', 'events/user-exploded', { user_id: 'u' }, 404, /user-exploded/],
    ['a prototype-pollution key', 'trigger', '{"event_type":"agent.created","data":{"agent_id":"a"},"__proto__":{"x":1}}', 400, /./],
    ['an oversized body', 'trigger', { event_type: 'agent.created', data: { agent_id: 'a', blob: 'x'.repeat(70_000) } }, 413, /too large/i],
  ];
  for (const [what, path, body, status, message] of bad) {
    test(`rejects ${what} with ${status} and stores nothing`, async () => {
      const before = await countEvents(c);
      const res = await c.request('POST', path, body);
      assert.equal(res.status, status, JSON.stringify(res.body));
      assert.match(res.body.message, message);
      assert.equal(typeof res.body.code, 'string');
      assert.equal(await countEvents(c), before);
    });
  }

  test('a missing data field is named by its own path, in a batch with its index', async () => {
    const single = await c.request('POST', 'trigger', { event_type: 'user.registered', data: { user_id: 'u' } });
    assert.equal(single.status, 422);
    assert.equal(single.body.details.field, 'data.email');
    const wrongType = await c.request('POST', 'trigger', { event_type: 'payment.confirmed', data: { payment_id: 'p', amount: 'ten' } });
    assert.equal(wrongType.body.details.field, 'data.amount');
    const batch = await c.request('POST', 'events/batch', { events: [{ event_type: 'agent.created', data: { agent_id: 'ok' } }, { event_type: 'agent.created', data: {} }] });
    assert.equal(batch.status, 422);
    assert.equal(batch.body.details.field, 'events[1].data.agent_id');
  });

  test('without a key every route but health is closed', async () => {
    const open = await c.request('GET', '/api/webhooks/health', undefined, { authorization: '' });
    assert.equal(open.status, 200);
    for (const [method, path] of [['GET', 'stats'], ['POST', 'trigger'], ['GET', 'events'], ['GET', 'endpoints']]) {
      const none = await c.request(method as string, path as string, method === 'POST' ? {} : undefined, { authorization: '' });
      assert.equal(none.status, 401, `${method} ${path}`);
      const wrong = await c.request(method as string, path as string, method === 'POST' ? {} : undefined, { authorization: 'Bearer not-a-key' });
      assert.equal(wrong.status, 401);
    }
  });

  test('events are listed newest first with filters and a cursor', async () => {
    for (let i = 0; i < 5; i++) await c.request('POST', 'trigger', { event_type: 'onboarding.step.completed', data: { user_id: 'list-user', step: `s${i}` } });
    const page1 = await c.request('GET', 'events?event_type=onboarding.step.completed&user_id=list-user&limit=3');
    assert.equal(page1.body.data.length, 3);
    assert.equal(page1.body.data[0].data.step, 's4');
    const page2 = await c.request('GET', `events?event_type=onboarding.step.completed&user_id=list-user&limit=3&cursor=${page1.body.next_cursor}`);
    assert.deepEqual(page2.body.data.map((e: { data: { step: string } }) => e.data.step), ['s1', 's0']);
    assert.equal(page2.body.next_cursor, null);
    const bad = await c.request('GET', 'events?since=yesterday');
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /since/);
  });
});
