/**
 * Numbers are stored and delivered exactly as sent, or refused: JSON.parse turns an integer above
 * 2^53 into the nearest double (1234567890123456789 became 1234567890123456800), so a number the
 * API cannot keep exact is a 422 naming where it is, on every route that stores data, and nothing is
 * stored. Postgres with DATABASE_URL, else PGlite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';

const SUPABASE_SECRET = 'supabase-secret-for-exact-numbers';
const USER = '"user_id":"u1","email":"maria@example.com","name":"Maria"';

describe('numbers the API cannot keep exact are refused', () => {
  let c: TestCarteiro;
  let receiver: TestReceiver;

  before(async () => {
    c = await startCarteiro({ env: { SUPABASE_WEBHOOK_SECRET: SUPABASE_SECRET } });
    receiver = await startReceiver();
    await createEndpoint(c, { url: `${receiver.url}/hook`, events: ['*'] });
  });
  after(async () => {
    await c?.stop();
    await receiver?.close();
  });

  async function eventCount(): Promise<number> {
    const [row] = await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_events`;
    return row?.n ?? -1;
  }

  async function post(path: string, body: string, headers: Record<string, string> = {}) {
    const res = await c.app.inject({
      method: 'POST',
      url: `/api/webhooks/${path}`,
      headers: { authorization: 'Bearer ck_admin_test_key_0123456789abcdef', 'content-type': 'application/json', ...headers },
      payload: body,
    });
    return { status: res.statusCode, body: res.body ? JSON.parse(res.body) : null };
  }

  test('trigger, batch and Supabase ingress answer 422 naming the field; nothing is stored', async () => {
    const before = await eventCount();
    const refused: [string, string, string, Record<string, string>?][] = [
      ['trigger', `{"event_type":"user.registered","data":{${USER},"snowflake":1234567890123456789}}`, 'body.data.snowflake'],
      ['trigger', `{"event_type":"user.registered","data":{${USER},"n":-9007199254740993}}`, 'body.data.n'],
      ['trigger', `{"event_type":"user.registered","data":{${USER},"ratio":0.10000000000000000001}}`, 'body.data.ratio'],
      ['trigger', `{"event_type":"user.registered","data":{${USER},"huge":1e400}}`, 'body.data.huge'],
      [
        'events/batch',
        `{"events":[{"event_type":"user.registered","data":{${USER}}},{"event_type":"user.registered","data":{${USER},"ids":[1,2,12345678901234567890]}}]}`,
        'body.events.1.data.ids.2',
      ],
      ['events/user-registered', `{${USER},"snowflake":1234567890123456789}`, 'body.snowflake'],
      [
        'supabase',
        JSON.stringify({
          type: 'INSERT',
          table: 'users',
          schema: 'public',
          record: { id: '8d0fd2b3-9ca7-4d9e-a95f-9e13dded323e', email: 'm@example.com', name: 'M', big: 0 },
          old_record: null,
        }).replace('"big":0', '"big":1234567890123456789'),
        'body.record.big',
        { 'x-supabase-webhook-secret': SUPABASE_SECRET },
      ],
    ];
    for (const [path, body, field, headers] of refused) {
      const res = await post(path, body, headers);
      assert.equal(res.status, 422, `${path} ${body}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.details?.field, field, JSON.stringify(res.body));
      assert.match(res.body.message, new RegExp(field.replaceAll('.', '\\.')));
    }
    assert.equal(await eventCount(), before, 'nothing refused was stored');
  });

  test('numbers a double holds exactly are accepted and delivered as sent', async () => {
    const body = `{"event_type":"user.registered","data":{${USER},"max":9007199254740991,"min":-9007199254740991,"price":99.9,"tiny":0.1,"exp":1.5e3,"big":1e300}}`;
    const res = await post('trigger', body);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const hit = await eventually(() => receiver.received.find((r) => JSON.parse(r.body).id === res.body.event_id), { what: 'the delivery' });
    const data = JSON.parse(hit.body).data;
    assert.equal(data.max, 9007199254740991);
    assert.equal(data.min, -9007199254740991);
    assert.equal(data.price, 99.9);
    assert.equal(data.exp, 1500);
    assert.equal(data.big, 1e300);
    assert.match(hit.body, /"max":9007199254740991,/);
  });

  test("the API shows stored data exactly: a big integer written in the database, and the client's key order", async () => {
    const sql = c.services.ledger.sql;
    const [ep] = await sql<{ organization_id: string }[]>`SELECT organization_id FROM webhook_endpoints LIMIT 1`;
    const [row] = await sql<{ id: string }[]>`
      INSERT INTO webhook_events (organization_id, event_type, event_source, data)
      VALUES (${ep!.organization_id}, 'user.registered', 'supabase', ${'{"user_id": "u2", "big": 1234567890123456789}'}::text::jsonb) RETURNING id`;
    const auth = { authorization: 'Bearer ck_admin_test_key_0123456789abcdef' };
    const one = await c.app.inject({ method: 'GET', url: `/api/webhooks/events/${row!.id}`, headers: auth });
    assert.equal(one.statusCode, 200);
    assert.match(one.body, /"big":1234567890123456789[,}]/, one.body);
    const listed = await c.app.inject({ method: 'GET', url: '/api/webhooks/events?limit=5', headers: auth });
    assert.match(listed.body, /"big":1234567890123456789[,}]/);

    const id = (await post('trigger', `{"event_type":"user.registered","data":{"zeta":1,${USER},"alpha":2}}`)).body.event_id;
    const shown = await c.app.inject({ method: 'GET', url: `/api/webhooks/events/${id}`, headers: auth });
    assert.deepEqual(Object.keys(JSON.parse(shown.body).data), ['zeta', 'user_id', 'email', 'name', 'alpha']);
    assert.equal(JSON.parse(shown.body).data.name, 'Maria', 'sealed fields are shown opened');
  });
});
