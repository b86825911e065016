/**
 * Ingestion: the seed's routes, idempotency, and bad input that is rejected with a message naming
 * the problem while nothing at all is stored.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startCarteiro, type TestCarteiro } from '../support/carteiro.ts';
import { toErrorBody } from '../../src/api/error-handler.ts';

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
      user_id: 'test-user-123',
      email: 'test@example.com',
      name: 'Test User',
      metadata: { source: 'landing_page' },
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
    assert.deepEqual(
      res.body.events.map((e: { duplicate: boolean }) => e.duplicate),
      [false, true, false],
    );
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
    [
      'a batch with one bad event',
      'events/batch',
      {
        events: [
          { event_type: 'agent.created', data: { agent_id: 'ok' } },
          { event_type: 'agent.created', data: {} },
        ],
      },
      422,
      /events\[1\].*agent_id/,
    ],
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
    const batch = await c.request('POST', 'events/batch', {
      events: [
        { event_type: 'agent.created', data: { agent_id: 'ok' } },
        { event_type: 'agent.created', data: {} },
      ],
    });
    assert.equal(batch.status, 422);
    assert.equal(batch.body.details.field, 'events[1].data.agent_id');
  });

  test('a user id taken from data.user_id is held to the top-level limit: 400 naming it, in a batch with its index', async () => {
    assert.equal((await c.request('POST', 'event-types', { name: 'acme.thing', schema: { type: 'object' } })).status, 201);
    const before = await countEvents(c);
    // Random, so Postgres cannot compress it into the index entry: 8,000 characters overflow its 2,704 bytes.
    const long = randomBytes(4000).toString('hex');
    const single = await c.request('POST', 'trigger', { event_type: 'acme.thing', data: { user_id: long } });
    assert.equal(single.status, 400, JSON.stringify(single.body));
    assert.equal(single.body.details.field, 'data.user_id');
    assert.match(single.body.message, /data\.user_id must be at most 200 characters/);
    const batch = await c.request('POST', 'events/batch', {
      events: [
        { event_type: 'acme.thing', data: {} },
        { event_type: 'acme.thing', data: { user_id: long } },
      ],
    });
    assert.equal(batch.status, 400, JSON.stringify(batch.body));
    assert.equal(batch.body.details.field, 'events[1].data.user_id');
    assert.match(batch.body.message, /^events\[1\]: data\.user_id/);
    assert.equal(await countEvents(c), before);
    // At the limit it is stored; a top-level user_id wins over data's, which is then not checked.
    assert.equal((await c.request('POST', 'trigger', { event_type: 'acme.thing', data: { user_id: 'u'.repeat(200) } })).status, 202);
    assert.equal((await c.request('POST', 'trigger', { event_type: 'acme.thing', user_id: 'u1', data: { user_id: long } })).status, 202);
  });

  test('a Postgres program-limit error (54000, e.g. an index row too large) that gets past validation is a 400, not a 500', () => {
    const err = Object.assign(new Error('index row size 8016 exceeds btree version 4 maximum 2704'), { name: 'PostgresError', code: '54000' });
    const { body } = toErrorBody(err);
    assert.equal(body.statusCode, 400);
    assert.equal(body.code, 'CARTEIRO_INVALID_INPUT');
    assert.doesNotMatch(body.message, /btree/, 'no internals');
  });

  test("an unknown event type in a batch is named with the event's index", async () => {
    const res = await c.request('POST', 'events/batch', {
      events: [
        { event_type: 'agent.created', data: { agent_id: 'ok' } },
        { event_type: 'nope.nope', data: {} },
      ],
    });
    assert.equal(res.status, 422);
    assert.equal(res.body.code, 'CARTEIRO_UNKNOWN_EVENT_TYPE');
    assert.match(res.body.message, /^events\[1\]: event_type "nope\.nope" is not in the catalog/);
  });

  test("the router's and the body parser's refusals come in the error envelope, naming what to fix", async () => {
    const badUrl = await c.request('GET', 'events/%ff%fe');
    assert.equal(badUrl.status, 400);
    assert.deepEqual([badUrl.body.code, badUrl.body.error, badUrl.body.details], ['CARTEIRO_INVALID_INPUT', 'Bad Request', { field: 'url' }]);
    assert.match(badUrl.body.message, /%ff%fe.*not valid/);

    const before = await countEvents(c);
    const tooLarge = await c.request('POST', 'trigger', { event_type: 'agent.created', data: { agent_id: 'a', blob: 'x'.repeat(70_000) } });
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.body.code, 'CARTEIRO_BODY_TOO_LARGE');
    assert.equal(tooLarge.body.details.field, 'body');
    assert.match(tooLarge.body.message, /too large.*65536 bytes/);

    const xml = await c.request('POST', 'trigger', '<event/>', { 'content-type': 'application/xml' });
    assert.equal(xml.status, 415);
    assert.equal(xml.body.code, 'CARTEIRO_UNSUPPORTED_MEDIA_TYPE');
    assert.equal(xml.body.details.field, 'headers.content-type');
    assert.match(xml.body.message, /application\/xml.*send application\/json/);
    assert.equal(await countEvents(c), before);
  });

  test('without a key every route but health is closed', async () => {
    const open = await c.request('GET', '/api/webhooks/health', undefined, { authorization: '' });
    assert.equal(open.status, 200);
    for (const [method, path] of [
      ['GET', 'stats'],
      ['POST', 'trigger'],
      ['GET', 'events'],
      ['GET', 'endpoints'],
    ]) {
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
    assert.deepEqual(
      page2.body.data.map((e: { data: { step: string } }) => e.data.step),
      ['s1', 's0'],
    );
    assert.equal(page2.body.next_cursor, null);
    const bad = await c.request('GET', 'events?since=yesterday');
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /since/);
  });
});
