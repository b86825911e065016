/**
 * POST /api/webhooks/supabase: the body Supabase Database Webhooks send, authenticated by the shared
 * secret header. Accepted payloads become the same events the seed triggers make, delivered signed;
 * a wrong secret (401), a malformed body (400) or an unmapped table (422) store nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startCarteiro, createEndpoint, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithSeed, type TestReceiver } from '../support/receiver.ts';

const SECRET = 'supabase-shared-secret-for-tests';
const PATH = '/api/webhooks/supabase';

/** As Supabase sends it: every column of the row, timestamps as Postgres prints them. */
const userInsert = {
  type: 'INSERT',
  table: 'users',
  schema: 'public',
  record: {
    id: '8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e',
    email: 'maria@example.com',
    name: 'Maria Oliveira',
    avatar_url: null,
    created_at: '2024-01-15T10:30:00.123456+00:00',
    updated_at: '2024-01-15T10:30:00.123456+00:00',
  },
  old_record: null,
};

describe('Supabase Database Webhooks ingress', () => {
  let c: TestCarteiro;
  let receiver: TestReceiver;
  let secret: string;

  before(async () => {
    c = await startCarteiro({
      env: {
        SUPABASE_WEBHOOK_SECRET: SECRET,
        SUPABASE_WEBHOOK_EVENT_MAP: JSON.stringify({ orders: { INSERT: 'order.created' }, 'billing.invoices': { UPDATE: 'invoice.updated' } }),
      },
    });
    receiver = await startReceiver();
    secret = (await createEndpoint(c, { url: `${receiver.url}/hook`, events: ['*'] })).secret;
  });
  after(async () => {
    await c.stop();
    await receiver.close();
  });

  /** Unauthenticated as far as API keys go: only the Supabase secret header. */
  async function post(body: unknown, headers: Record<string, string> = { 'x-supabase-webhook-secret': SECRET }) {
    const res = await c.app.inject({
      method: 'POST',
      url: PATH,
      headers: { 'content-type': 'application/json', ...headers },
      payload: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
  }

  async function eventCount(): Promise<number> {
    const [row] = await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_events`;
    return row?.n ?? -1;
  }

  test('a real-shaped INSERT on users becomes user.registered, stored and delivered signed', async () => {
    const res = await post(userInsert);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.event_type, 'user.registered');
    const [hit] = await receiver.waitFor(1);
    assert.ok(hit && verifiesWithSeed(secret, hit));
    const delivered = JSON.parse(hit.body);
    assert.equal(delivered.id, res.body.event_id);
    assert.deepEqual(delivered.data, { user_id: userInsert.record.id, email: 'maria@example.com', name: 'Maria Oliveira' });

    const event = (await c.request('GET', `events/${res.body.event_id}`)).body;
    assert.equal(event.event_source, 'supabase');
    assert.equal(event.table_name, 'users');
    assert.equal(event.record_id, userInsert.record.id);
    assert.equal(event.user_id, userInsert.record.id);
  });

  test('a wrong or missing secret is 401 and stores nothing, whatever the body', async () => {
    const before = await eventCount();
    const attempts: Record<string, string>[] = [
      { 'x-supabase-webhook-secret': 'wrong-secret-wrong-secret' },
      {},
      { authorization: 'Bearer ck_admin_test_key_0123456789abcdef' },
    ];
    for (const headers of attempts) {
      const res = await post(userInsert, headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
      assert.equal(res.body.code, 'CARTEIRO_UNAUTHORIZED');
    }
    assert.equal((await post('{not json', { 'x-supabase-webhook-secret': 'nope' })).status, 401, 'secret checked before the body is read');
    assert.equal(await eventCount(), before);
  });

  test('a malformed body is 400 and stores nothing', async () => {
    const before = await eventCount();
    const bad: unknown[] = [
      '{"type": "INSERT", "table": "users",',
      { ...userInsert, type: 'TRUNCATE' },
      { ...userInsert, record: null },
      { ...userInsert, record: [1, 2] },
      { type: 'UPDATE', table: 'external_integrations', schema: 'public', record: { id: 'i1', provider: 'whatsapp' }, old_record: null },
      { table: 'users', schema: 'public', record: userInsert.record },
    ];
    for (const body of bad) {
      const res = await post(body);
      assert.equal(res.status, 400, `${JSON.stringify(body)} → ${JSON.stringify(res.body)}`);
    }
    assert.equal(await eventCount(), before);
  });

  test('a table (or operation) nothing is mapped to is 422, naming what is mapped, and stores nothing', async () => {
    const before = await eventCount();
    const res = await post({ ...userInsert, table: 'profiles' });
    assert.equal(res.status, 422);
    assert.equal(res.body.code, 'CARTEIRO_UNMAPPED_TABLE');
    assert.ok(res.body.details.mapped.includes('users: INSERT'));
    assert.equal((await post({ ...userInsert, type: 'DELETE', record: null, old_record: userInsert.record })).status, 422);
    // A row the mapping cannot use (no id for user.registered) is 422 too.
    const noId = await post({ ...userInsert, record: { email: 'x@example.com' } });
    assert.equal(noId.status, 422, JSON.stringify(noId.body));
    assert.match(noId.body.message, /"id"/);
    assert.equal(await eventCount(), before);
  });

  test('external_integrations updates: disconnected when it goes inactive, ignored when nothing changes', async () => {
    const row = { id: '0b7f4e8e-8a41-4c4e-9d39-1a8a3b3b9f10', user_id: 'u-42', provider: 'whatsapp', is_active: true, phone_number: '+5511900000000' };
    const off = await post({ type: 'UPDATE', table: 'external_integrations', schema: 'public', record: { ...row, is_active: false }, old_record: row });
    assert.equal(off.status, 202);
    assert.equal(off.body.event_type, 'integration.disconnected');
    const same = await post({
      type: 'UPDATE',
      table: 'external_integrations',
      schema: 'public',
      record: { ...row, phone_number: '+5511911111111' },
      old_record: row,
    });
    assert.equal(same.status, 200);
    assert.deepEqual([same.body.event_id, same.body.ignored], [null, true]);
  });

  test('SUPABASE_WEBHOOK_EVENT_MAP adds tables: data is the row; the type must be in the catalog', async () => {
    assert.equal((await c.request('POST', 'event-types', { name: 'order.created', description: 'Pedido criado' })).status, 201);
    const order = { id: 7, user_id: 'u-7', total: 120.5, status: 'open' };
    const res = await post({ type: 'INSERT', table: 'orders', schema: 'public', record: order, old_record: null });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const event = (await c.request('GET', `events/${res.body.event_id}`)).body;
    assert.deepEqual([event.event_type, event.data, event.record_id, event.user_id], ['order.created', order, '7', 'u-7']);
    // schema.table entries match only that schema; the type here is not registered: 422, nothing stored.
    const before = await eventCount();
    const invoice = { id: 1, status: 'paid' };
    assert.equal((await post({ type: 'UPDATE', table: 'invoices', schema: 'public', record: invoice, old_record: invoice })).status, 422);
    const unknownType = await post({ type: 'UPDATE', table: 'invoices', schema: 'billing', record: invoice, old_record: { ...invoice, status: 'open' } });
    assert.equal(unknownType.status, 422);
    assert.equal(unknownType.body.code, 'CARTEIRO_UNKNOWN_EVENT_TYPE');
    assert.equal(await eventCount(), before);
  });

  test("a row whose user id is longer than the API's user_id limit is refused naming the user id, and stores nothing", async () => {
    const registered = await c.request('POST', 'event-types', { name: 'order.created', description: 'Pedido criado' });
    assert.ok(registered.status === 201 || registered.status === 409, JSON.stringify(registered.body));
    const before = await eventCount();
    // Random, so Postgres cannot compress it into the user_id index entry (at most 2,704 bytes).
    const order = { id: 8, user_id: randomBytes(4000).toString('hex'), total: 1 };
    const res = await post({ type: 'INSERT', table: 'orders', schema: 'public', record: order, old_record: null });
    // Refused by the same mapping table capture uses (migration 0015), before ingestion sees it.
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.match(res.body.message, /the user id is 8000 characters long; at most 200 can be stored/);
    assert.equal(await eventCount(), before);
  });

  test('an Idempotency-Key makes a resent payload return the first event', async () => {
    const body = { ...userInsert, record: { ...userInsert.record, id: 'd2c8d3c9-5e1f-4a51-9b0e-2f1f8f8e8e01', email: 'again@example.com' } };
    const headers = { 'x-supabase-webhook-secret': SECRET, 'idempotency-key': 'supabase-users-d2c8d3c9' };
    const first = await post(body, headers);
    const second = await post(body, headers);
    assert.deepEqual([first.status, second.status], [202, 202]);
    assert.equal(second.body.event_id, first.body.event_id);
    assert.equal(second.body.duplicate, true);
  });
});

describe('Supabase ingress without SUPABASE_WEBHOOK_SECRET', () => {
  test('answers 404 saying how to turn it on', async () => {
    const c = await startCarteiro();
    try {
      const res = await c.app.inject({ method: 'POST', url: PATH, headers: { 'content-type': 'application/json' }, payload: JSON.stringify(userInsert) });
      assert.equal(res.statusCode, 404);
      const body = JSON.parse(res.body);
      assert.equal(body.code, 'CARTEIRO_FEATURE_DISABLED');
      assert.match(body.message, /SUPABASE_WEBHOOK_SECRET/);
    } finally {
      await c.stop();
    }
  });
});
