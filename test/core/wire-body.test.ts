/**
 * The body a receiver gets is one canonical form: compact JSON, the data's keys in the order the
 * client sent them, whether the data was sealed at rest or not, and compact too for events written
 * straight into the ledger (table capture). A receiver that re-serialises the body
 * (JSON.stringify(JSON.parse(body)), as an n8n Code node does) gets the very bytes that were signed.
 * Postgres with DATABASE_URL, else PGlite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, eventually, trigger, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithSeed, verifiesWithStandardWebhooks, type Received, type TestReceiver } from '../support/receiver.ts';

describe('the wire body is one canonical JSON form', () => {
  let c: TestCarteiro;
  let receiver: TestReceiver;
  let secret: string;
  let org: string;

  before(async () => {
    c = await startCarteiro();
    receiver = await startReceiver();
    const ep = await createEndpoint(c, { url: `${receiver.url}/hook`, events: ['wire.*'] });
    secret = ep.secret;
    [{ organization_id: org }] = (await c.services.ledger.sql<
      { organization_id: string }[]
    >`SELECT organization_id FROM webhook_endpoints WHERE id = ${ep.id}`) as unknown as [{ organization_id: string }];
    for (const name of ['wire.order', 'wire.user']) assert.equal((await c.request('POST', 'event-types', { name, schema: { type: 'object' } })).status, 201);
  });
  after(async () => {
    await c?.stop();
    await receiver?.close();
  });

  const delivered = (eventId: string) =>
    eventually(() => receiver.received.find((r) => r.body.includes(`"id":"${eventId}"`)), { what: `the delivery of ${eventId}` });

  function assertCanonical(hit: Received): void {
    assert.equal(hit.body, JSON.stringify(JSON.parse(hit.body)), 'the body is what re-serialising it gives');
    assert.ok(verifiesWithSeed(secret, hit), 'the seed signature verifies over the bytes received');
    assert.ok(verifiesWithStandardWebhooks(secret, hit), 'the Standard Webhooks signature verifies over the bytes received');
  }

  test("unsealed data goes out compact, in the client's key order", async () => {
    const data = { zeta: 1, amount: 99.9, currency: 'BRL', nested: { b: 1, a: [1, { y: 2, x: 'é "q" \n' }] }, alpha: null, empty: {}, list: [] };
    const hit = await delivered(await trigger(c, { event_type: 'wire.order', data }));
    assertCanonical(hit);
    assert.ok(hit.body.endsWith(`,"data":${JSON.stringify(data)}}`), hit.body);
  });

  test("sealed data goes out compact, in the client's key order", async () => {
    const data = { zeta: 2, name: 'Test User', amount: 10.5, email: 'test@example.com', profile: { phone: '+55 11 99999-0000', city: 'Recife' } };
    const id = await trigger(c, { event_type: 'wire.user', data });
    const [stored] = await c.services.ledger.sql<{ text: string }[]>`SELECT data::text AS text FROM webhook_events WHERE id = ${id}`;
    assert.doesNotMatch(stored!.text, /Test User/, 'the personal field is sealed at rest');
    const hit = await delivered(id);
    assertCanonical(hit);
    assert.ok(hit.body.endsWith(`,"data":${JSON.stringify(data)}}`), hit.body);
  });

  test('data written straight into the ledger goes out compact; its copy at rest is sealed too', async () => {
    const sql = c.services.ledger.sql;
    const [row] = await sql<{ id: string }[]>`
      INSERT INTO webhook_events (organization_id, event_type, event_source, data)
      VALUES (${org}, 'wire.order', 'supabase', ${'{"b": 1.50, "a": {"d": [1, 2.0, "x y"]}, "name": "Captured Person", "big": 1234567890123456789}'}::text::jsonb)
      RETURNING id`;
    const hit = await delivered(row!.id);
    assert.equal(
      hit.body,
      JSON.stringify(JSON.parse(hit.body)).replace('1234567890123456800', '1234567890123456789'),
      'compact, as re-serialising gives (but for the exact big integer)',
    );
    assert.match(hit.body, /"big":1234567890123456789[,}]/, 'a big integer stays exact');
    assert.match(hit.body, /"name":"Captured Person"/);
    assert.ok(verifiesWithSeed(secret, hit));
    // The sealing pass reaches every copy of the data at rest.
    await eventually(async () => (await sql<{ sealed: boolean }[]>`SELECT data_sealed AS sealed FROM webhook_events WHERE id = ${row!.id}`)[0]?.sealed, {
      what: 'the sealing pass',
    });
    const [rest] = await sql<{ text: string }[]>`SELECT row_to_json(e)::text AS text FROM webhook_events e WHERE id = ${row!.id}`;
    assert.doesNotMatch(rest!.text, /Captured Person/, 'no copy of the personal field is left in clear');
  });
});
