/**
 * Encryption at rest (personal fields and secrets, with key rotation) and minimal payloads:
 * pure pieces first, then through a running Carteiro to real receivers.
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { createSecretBox, parseKeyring, type SecretBox } from '../../src/crypto/secret-box.ts';
import { createDataProtection } from '../../src/protection/data-protection.ts';
import { pickFields, selectIncludeFields, validateIncludeFields } from '../../src/protection/minimal-payload.ts';
import { reencryptWith } from '../../src/protection/reencryption.ts';
import { ValidationError } from '../../src/errors/errors.ts';
import {
  startCarteiro,
  createEndpoint,
  trigger,
  eventually,
  restartableLedger,
  TEST_ENCRYPTION_KEYS,
  DATABASE_URL,
  dropSchema,
  type TestCarteiro,
} from '../support/carteiro.ts';
import { startReceiver, verifiesWithSeed, verifiesWithStandardWebhooks, type TestReceiver } from '../support/receiver.ts';

const K1 = `k1:${Buffer.alloc(32, 1).toString('base64')}`;
const K2 = `k2:${Buffer.alloc(32, 2).toString('base64')}`;
const box = (spec: string): SecretBox => createSecretBox(parseKeyring(spec));
const DEFAULT_PII = ['email', 'phone', 'name', 'cpf', 'document'];

describe('personal fields sealed at rest', () => {
  const dp = createDataProtection(box(K1), { piiFields: DEFAULT_PII });

  test('configured keys are sealed at any depth, in arrays, case-insensitively; the rest is untouched', () => {
    const data = {
      user_id: 'u1',
      Email: 'ana@example.com',
      profile: { phone: '+55 11 90000-0000', city: 'Recife', contacts: [{ name: 'Bia', relation: 'sister' }] },
      CPF: '123.456.789-09',
      note: null,
    };
    const text = dp.sealData(data);
    const stored = JSON.parse(text);
    for (const v of [stored.Email, stored.profile.phone, stored.profile.contacts[0].name, stored.CPF]) assert.match(v, /^enc:v1:k1:/);
    assert.equal(stored.user_id, 'u1');
    assert.equal(stored.profile.city, 'Recife');
    assert.equal(stored.profile.contacts[0].relation, 'sister');
    assert.equal(stored.note, null);
    // Checked outside the ciphertexts: base64 holds any three letters now and then ('Bia' included).
    const clear = text.replace(/"enc:v1:[^"]*"/g, '""');
    for (const plain of ['ana@example.com', '90000', 'Bia', '123.456']) assert.ok(!clear.includes(plain), `${plain} is not in the stored text`);
    assert.deepEqual(dp.reveal(stored), data);
  });

  test('response bodies: sealed whole; equal short ones share a ciphertext, long ones never do; all open back', () => {
    const keys = box(K1);
    const p = createDataProtection(keys, { piiFields: DEFAULT_PII });
    const ok = p.sealResponseBody('ok');
    assert.match(ok, /^enc:v1:k1:/);
    assert.equal(p.sealResponseBody('ok'), ok);
    assert.equal(keys.open(ok), 'ok');
    const long = 'x'.repeat(300);
    assert.notEqual(p.sealResponseBody(long), p.sealResponseBody(long));
    assert.equal(keys.open(p.sealResponseBody(long)), long);
    for (let i = 0; i < 300; i++) p.sealResponseBody(`other ${i}`); // pushes 'ok' out of the bounded cache
    assert.equal(keys.open(p.sealResponseBody('ok')), 'ok');
    assert.deepEqual(p.openAttempt({ response_body: ok, response_sealed: true, id: 1 }), { response_body: 'ok', id: 1 });
    assert.deepEqual(p.openAttempt({ response_body: ok, response_sealed: false, id: 2 }), { response_body: ok, id: 2 });
  });

  test('numbers, objects and arrays under a personal key come back as they were', () => {
    const data = { phone: 5511900000000, name: { first: 'Ana', last: 'Souza' }, document: ['RG', 123], email: '' };
    const stored = JSON.parse(dp.sealData(data));
    assert.equal(typeof stored.name, 'string');
    assert.deepEqual(dp.reveal(stored), data);
  });

  test('a client string that looks sealed is sealed too, so it round-trips exactly', () => {
    const data = { label: 'enc:v1:fake:not:really:sealed' };
    const stored = JSON.parse(dp.sealData(data));
    assert.notEqual(stored.label, data.label);
    assert.deepEqual(dp.reveal(stored), data);
    assert.deepEqual(JSON.parse(dp.prepareDispatchData({ event_type: 'x', data_text: JSON.stringify(stored) })), data);
  });

  test('with no personal fields configured nothing is sealed and the text is plain JSON', () => {
    const none = createDataProtection(box(K1), { piiFields: [] });
    assert.equal(none.sealData({ email: 'a@b.c' }), '{"email":"a@b.c"}');
  });

  test('data stored as written (not yet through sealing) is sent as is: a string that looks sealed is not opened', () => {
    const text = JSON.stringify({ note: 'enc:v1:k9:abc', email: 'ana@example.com' });
    assert.equal(dp.prepareDispatchData({ event_type: 'x', data_text: text, data_sealed: false }), text);
    assert.throws(() => dp.prepareDispatchData({ event_type: 'x', data_text: text, data_sealed: true }), /key not in the keyring/);
  });

  test('delivery fast path: data with nothing sealed and no allow-list is sent as stored, byte for byte', () => {
    const stored = '{"agent_id": "a1", "n": 1.50}';
    assert.equal(dp.prepareDispatchData({ event_type: 'agent.created', data_text: stored, include_fields: null }), stored);
  });
});

describe('key rotation', () => {
  test('seal with k1; rotate to k2,k1: old ciphertext still opens, new seals with k2; k1 removed: old no longer opens', () => {
    const v1 = box(K1);
    const sealed1 = v1.seal('whsec_old');
    assert.match(sealed1, /^enc:v1:k1:/);

    const rotated = box(`${K2},${K1}`);
    assert.equal(rotated.primaryKeyId, 'k2');
    assert.equal(rotated.open(sealed1), 'whsec_old');
    const sealed2 = rotated.seal('whsec_new');
    assert.match(sealed2, /^enc:v1:k2:/);
    assert.equal(rotated.open(sealed2), 'whsec_new');

    const only2 = box(K2);
    assert.equal(only2.open(sealed2), 'whsec_new');
    assert.throws(() => only2.open(sealed1), /key "k1": key not in the keyring/);
  });

  test('personal fields: reveal keeps a value whose key is gone as ciphertext; delivery refuses it', () => {
    const stored = JSON.parse(createDataProtection(box(K1), { piiFields: DEFAULT_PII }).sealData({ email: 'ana@example.com', n: 1 }));
    const dp = createDataProtection(box(K2), { piiFields: DEFAULT_PII });
    assert.deepEqual(dp.reveal(stored), stored);
    assert.throws(() => dp.prepareDispatchData({ event_type: 'x', data_text: JSON.stringify(stored) }), /key not in the keyring/);
  });

  test('reseal moves only values an older key sealed', () => {
    const old = createDataProtection(box(K1), { piiFields: DEFAULT_PII });
    const stored = JSON.parse(old.sealData({ email: 'ana@example.com', profile: { phone: '1' } }));
    const dp = createDataProtection(box(`${K2},${K1}`), { piiFields: DEFAULT_PII });
    const { value, changed } = dp.reseal(stored);
    assert.equal(changed, 2);
    assert.match((value as { email: string }).email, /^enc:v1:k2:/);
    assert.equal(dp.reseal(value).changed, 0);
    assert.deepEqual(createDataProtection(box(K2), { piiFields: [] }).reveal(value), { email: 'ana@example.com', profile: { phone: '1' } });
  });
});

describe('minimal payloads (pure)', () => {
  test('paths pick nested fields and reach into arrays', () => {
    const data = {
      user_id: 'u1',
      customer: { email: 'a@b.c', address: { city: 'Recife', zip: '50000' } },
      items: [{ sku: 'A', price: 1 }, { sku: 'B', price: 2 }, 'x'],
      secret: 's',
    };
    assert.deepEqual(pickFields(data, ['user_id', 'customer.address.city', 'items.sku', 'missing.path']), {
      user_id: 'u1',
      customer: { address: { city: 'Recife' } },
      items: [{ sku: 'A' }, { sku: 'B' }],
    });
    assert.deepEqual(pickFields(data, ['customer', 'customer.email']), { customer: data.customer }, 'a shorter path keeps the whole object');
    assert.deepEqual(pickFields(data, []), {});
  });

  test('a "__proto__" key is kept as a plain field, never as a prototype', () => {
    const data = JSON.parse('{"__proto__": {"polluted": true}, "a": 1}');
    const picked = pickFields(data, ['__proto__', 'a']);
    assert.equal(Object.getPrototypeOf(picked), Object.prototype);
    assert.equal((picked as { polluted?: boolean }).polluted, undefined);
    assert.equal(JSON.stringify(picked), '{"__proto__":{"polluted":true},"a":1}');
    const dp = createDataProtection(box(K1), { piiFields: DEFAULT_PII });
    assert.equal(JSON.stringify(dp.reveal(data)), '{"__proto__":{"polluted":true},"a":1}');
  });

  test('per event type: exact, then longest prefix wildcard, then *; unmatched types get everything', () => {
    const include = { 'order.*': ['a'], 'order.paid.*': ['b'], 'order.created': ['c'], '*': ['d'] };
    assert.deepEqual(selectIncludeFields(include, 'order.created'), ['c']);
    assert.deepEqual(selectIncludeFields(include, 'order.paid.pix'), ['b']);
    assert.deepEqual(selectIncludeFields(include, 'order.cancelled'), ['a']);
    assert.deepEqual(selectIncludeFields(include, 'orders.x'), ['d']);
    assert.deepEqual(selectIncludeFields({ 'order.*': ['a'] }, 'user.registered'), null);
    assert.deepEqual(selectIncludeFields(['x'], 'any.type'), ['x']);
    assert.equal(selectIncludeFields(null, 'any.type'), null);
  });

  test('validation names the bad path or filter', () => {
    validateIncludeFields(['user_id', 'customer.email']);
    validateIncludeFields({ 'order.*': ['id'], '*': [] });
    assert.throws(() => validateIncludeFields(['a..b']), ValidationError);
    assert.throws(() => validateIncludeFields(['.a']), ValidationError);
    assert.throws(() => validateIncludeFields({ 'Not A Type': ['a'] }), /not an event type/);
  });
});

describe('through Carteiro', () => {
  let c: TestCarteiro;
  let receiver: TestReceiver;
  before(async () => {
    c = await startCarteiro();
    receiver = await startReceiver();
  });
  after(async () => {
    await c.stop();
    await receiver.close();
  });

  test('personal fields are ciphertext in the ledger, plaintext to the receiver (signed) and to the API', async () => {
    const ep = await createEndpoint(c, { url: `${receiver.url}/pii`, events: ['user.registered'] });
    const data = { user_id: 'u-pii', email: 'ana@example.com', name: 'Ana Souza', metadata: { cpf: '123.456.789-09', source: 'form' } };
    const id = await trigger(c, { event_type: 'user.registered', data });

    const [row] = await c.services.ledger.sql<
      { text: string; email: string }[]
    >`SELECT data::text AS text, data->>'email' AS email FROM webhook_events WHERE id = ${id}`;
    assert.match(row!.email, /^enc:v1:t1:/);
    for (const plain of ['ana@example.com', 'Ana Souza', '123.456.789-09']) assert.ok(!row!.text.includes(plain), `${plain} is sealed in the ledger`);
    assert.ok(row!.text.includes('"source": "form"'));

    const [got] = await eventually(() => {
      const r = receiver.received.filter((x) => x.path === '/pii');
      return r.length ? r : null;
    });
    assert.deepEqual(JSON.parse(got!.body).data, data);
    assert.ok(verifiesWithSeed(ep.secret, got!));
    assert.ok(verifiesWithStandardWebhooks(ep.secret, got!));

    const one = await c.request('GET', `events/${id}`);
    assert.equal(one.status, 200);
    assert.deepEqual(one.body.data, data);
    const list = await c.request('GET', 'events?user_id=u-pii');
    assert.deepEqual(list.body.data[0].data, data);
  });

  test("by default the seed's own personal keys are sealed: the WhatsApp number under phone_number too", async () => {
    const id = await trigger(c, {
      event_type: 'integration.whatsapp.connected',
      data: { user_id: 'u-wa', integration_id: 'i-wa', phone_number: '+55 11 98888-7777' },
    });
    const [row] = await c.services.ledger.sql<{ text: string }[]>`SELECT data::text AS text FROM webhook_events WHERE id = ${id}`;
    assert.ok(!row!.text.includes('98888-7777'), row!.text);
    assert.equal((await c.request('GET', `events/${id}`)).body.data.phone_number, '+55 11 98888-7777');
  });

  test("receivers' response bodies are sealed at rest and opened for display; a copied ciphertext is shown as sent", async (t) => {
    const sql = c.services.ledger.sql;
    const [other] = await sql<
      { email: string }[]
    >`SELECT data->>'email' AS email FROM webhook_events WHERE data ? 'email' AND data->>'email' LIKE 'enc:v1:%' LIMIT 1`;
    assert.ok(other, 'a sealed value to copy');
    // One receiver echoes the event (an n8n workflow answering with its last node does); the other
    // answers with a ciphertext it got from elsewhere.
    const echo = await startReceiver((r) => ({ status: 200, body: r.body }));
    const copier = await startReceiver(() => ({ status: 200, body: other!.email }));
    t.after(() => Promise.all([echo.close(), copier.close()]));
    const epEcho = await createEndpoint(c, { url: `${echo.url}/echo`, events: ['user.updated'] });
    const epCopy = await createEndpoint(c, { url: `${copier.url}/copy`, events: ['user.updated'] });
    const id = await trigger(c, { event_type: 'user.updated', data: { user_id: 'u-echo', email: 'echo@example.com' } });
    const rows = await eventually(
      async () => {
        const r = await sql<{ webhook_endpoint_id: string; response_body: string; response_sealed: boolean }[]>`
        SELECT webhook_endpoint_id, response_body, response_sealed FROM webhook_deliveries WHERE webhook_event_id = ${id}`;
        return r.length === 2 ? r : null;
      },
      { what: 'both attempts recorded' },
    );
    for (const r of rows) {
      assert.equal(r.response_sealed, true);
      assert.match(r.response_body, /^enc:v1:t1:/);
      assert.ok(!r.response_body.includes('echo@example.com'));
    }
    const shown = (await c.request('GET', `events/${id}/attempts`)).body.data as {
      webhook_endpoint_id: string;
      response_body: string;
      response_sealed?: unknown;
    }[];
    const byEndpoint = new Map(shown.map((a) => [a.webhook_endpoint_id, a]));
    assert.equal(JSON.parse(byEndpoint.get(epEcho.id)!.response_body).data.email, 'echo@example.com');
    assert.equal(byEndpoint.get(epCopy.id)!.response_body, other!.email, 'the copied ciphertext is shown as the receiver sent it, not opened');
    assert.equal(byEndpoint.get(epEcho.id)!.response_sealed, undefined, 'the mark stays internal');
    const listed = (await c.request('GET', `endpoints/${epEcho.id}/attempts`)).body.data;
    assert.equal(JSON.parse(listed[0].response_body).data.email, 'echo@example.com');
  });

  test('events written straight into the database get their personal fields sealed shortly after commit', async () => {
    const sql = c.services.ledger.sql;
    const ep = await createEndpoint(c, { url: `${receiver.url}/captured`, events: ['user.registered'] });
    const [api] = await sql<
      { sealed: boolean }[]
    >`SELECT data_sealed AS sealed FROM webhook_events WHERE id = ${await trigger(c, { event_type: 'agent.deleted', data: { agent_id: 'a0' } })}`;
    assert.equal(api?.sealed, true, 'ingestion seals and marks its own events');

    // As table capture (or any other writer) would: straight into the table, in plain text. A string
    // that merely looks sealed is sealed too, so that every enc:v1: value in the ledger is Carteiro's.
    const data = { user_id: 'u-cap', email: 'bia@example.com', name: 'Bia Lima', note: 'enc:v1:not-ours', source: 'trigger' };
    const [event] = await sql<{ id: string }[]>`
      INSERT INTO webhook_events (organization_id, event_type, event_source, table_name, data)
      VALUES ('00000000-0000-7000-8000-000000000000', 'user.registered', 'supabase', 'users', ${JSON.stringify(data)}::text::jsonb)
      RETURNING id`;
    const id = event!.id;
    const row = await eventually(
      async () => {
        const [r] = await sql<{ sealed: boolean; text: string; email: string; note: string }[]>`
        SELECT data_sealed AS sealed, data::text AS text, data->>'email' AS email, data->>'note' AS note FROM webhook_events WHERE id = ${id}`;
        return r?.sealed ? r : null;
      },
      { what: 'the stored event sealed' },
    );
    assert.match(row.email, /^enc:v1:t1:/);
    assert.match(row.note, /^enc:v1:t1:/);
    for (const plain of ['bia@example.com', 'Bia Lima', 'not-ours']) assert.ok(!row.text.includes(plain), `${plain} is sealed in the ledger`);
    assert.ok(row.text.includes('"source": "trigger"'));

    const [got] = await eventually(() => {
      const r = receiver.received.filter((x) => x.path === '/captured');
      return r.length ? r : null;
    });
    assert.deepEqual(JSON.parse(got!.body).data, data, 'the receiver gets the plain data, sealed or not when it was sent');
    assert.ok(verifiesWithStandardWebhooks(ep.secret, got!));
    assert.deepEqual((await c.request('GET', `events/${id}`)).body.data, data);

    // An older row marked for the pass by an operator (docs/security.md) is sealed the same way.
    const older = { user_id: 'u-old', phone: '+55 81 98888-7777' };
    const [old] = await sql<{ id: string }[]>`
      INSERT INTO webhook_events (organization_id, event_type, event_source, table_name, data, data_sealed, status)
      VALUES ('00000000-0000-7000-8000-000000000000', 'user.updated', 'supabase', 'users', ${JSON.stringify(older)}::text::jsonb, true, 'completed')
      RETURNING id`;
    await sql`UPDATE webhook_events SET data_sealed = false WHERE event_source = 'supabase' AND data_sealed AND id = ${old!.id}`;
    const phone = await eventually(
      async () => {
        const [r] = await sql<
          { sealed: boolean; phone: string }[]
        >`SELECT data_sealed AS sealed, data->>'phone' AS phone FROM webhook_events WHERE id = ${old!.id}`;
        return r?.sealed ? r.phone : null;
      },
      { what: 'the older row sealed' },
    );
    assert.match(phone, /^enc:v1:t1:/);
    // Sealed once: the later pass that sealed the older row left the first one alone.
    const [again] = await sql<{ text: string }[]>`SELECT data::text AS text FROM webhook_events WHERE id = ${id}`;
    assert.equal(again!.text, row.text);
  });

  test('events with nothing sealed keep the no-parse path: data arrives exactly as stored, the compact text the client sent', async () => {
    await createEndpoint(c, { url: `${receiver.url}/fast`, events: ['agent.deleted'] });
    const id = await trigger(c, { event_type: 'agent.deleted', data: { agent_id: 'a1', user_id: 'u9' } });
    const [row] = await c.services.ledger.sql<{ text: string }[]>`SELECT data_json AS text FROM webhook_events WHERE id = ${id}`;
    assert.equal(row!.text, '{"agent_id":"a1","user_id":"u9"}');
    const [got] = await eventually(() => {
      const r = receiver.received.filter((x) => x.path === '/fast');
      return r.length ? r : null;
    });
    assert.ok(got!.body.endsWith(`"data":${row!.text}}`), `${got!.body} carries ${row!.text} verbatim`);
  });

  test('include_fields: an endpoint gets only the fields it names, per event type, decrypted; null restores everything', async () => {
    const create = await c.request('POST', 'endpoints', {
      name: 'minimal',
      url: `${receiver.url}/minimal`,
      events: ['user.*'],
      include_fields: { 'user.registered': ['user_id', 'email', 'metadata.plan'], '*': ['user_id'] },
    });
    assert.equal(create.status, 201);
    assert.deepEqual(create.body.include_fields, { 'user.registered': ['user_id', 'email', 'metadata.plan'], '*': ['user_id'] });
    await trigger(c, {
      event_type: 'user.registered',
      data: { user_id: 'u2', email: 'bia@example.com', name: 'Bia', metadata: { plan: 'pro', ip: '10.0.0.1' } },
    });
    await trigger(c, { event_type: 'user.updated', data: { user_id: 'u2', name: 'Bia S.', changes: { name: true } } });
    const got = await eventually(() => {
      const r = receiver.received.filter((x) => x.path === '/minimal');
      return r.length >= 2 ? r : null;
    });
    const byType = new Map(
      got.map((r) => {
        const b = JSON.parse(r.body);
        return [b.type, b.data];
      }),
    );
    assert.deepEqual(byType.get('user.registered'), { user_id: 'u2', email: 'bia@example.com', metadata: { plan: 'pro' } });
    assert.deepEqual(byType.get('user.updated'), { user_id: 'u2' });

    const patched = await c.request('PATCH', `endpoints/${create.body.id}`, { include_fields: null });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.include_fields, null);
    await trigger(c, { event_type: 'user.updated', data: { user_id: 'u3', name: 'Caio' } });
    const all = await eventually(() => receiver.received.find((x) => x.path === '/minimal' && JSON.parse(x.body).data.user_id === 'u3'));
    assert.deepEqual(JSON.parse(all.body).data, { user_id: 'u3', name: 'Caio' });

    const asList = await c.request('PATCH', `endpoints/${create.body.id}`, { include_fields: ['user_id'] });
    assert.deepEqual(asList.body.include_fields, ['user_id']);
  });

  test('malformed include_fields are rejected with 400', async () => {
    for (const include_fields of [['a..b'], { 'Bad Filter': ['a'] }, 'user_id', [1]]) {
      const res = await c.request('POST', 'endpoints', { name: 'bad', url: receiver.url, include_fields });
      assert.equal(res.status, 400, JSON.stringify(include_fields));
    }
  });
});

describe('key rotation through Carteiro, and keys reencrypt', () => {
  test('after rotating to k2,t1 old secrets, header values and fields still open; reencrypt moves everything to k2; then t1 can go', async (t: TestContext) => {
    const ledger = restartableLedger('rot');
    const schema = ledger.schema;
    const dataDir = DATABASE_URL ? undefined : ledger.dataDir;
    if (DATABASE_URL) rmSync(ledger.dataDir, { recursive: true, force: true });
    const receiver = await startReceiver();
    t.after(async () => {
      await receiver.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
      if (DATABASE_URL) await dropSchema({ DATABASE_URL, CARTEIRO_SCHEMA: schema });
    });
    const opts = { schema, ...(dataDir ? { dataDir } : {}) };
    const K2_ONLY = K2;

    // 1. Keys: t1 only (the harness default).
    let c = await startCarteiro(opts);
    const ep = await createEndpoint(c, { url: `${receiver.url}/rot`, events: ['user.registered'], headers: { authorization: 'Bearer rotated-with-the-keys' } });
    const oldEvent = await trigger(c, { event_type: 'user.registered', data: { user_id: 'r1', email: 'old@example.com' } });
    await receiver.waitFor(1);
    await c.stop({ keepSchema: true });

    // 2. Rotated: k2 seals, t1 still opens.
    c = await startCarteiro({ ...opts, env: { CARTEIRO_ENCRYPTION_KEYS: `${K2},${TEST_ENCRYPTION_KEYS}` } });
    const newEvent = await trigger(c, { event_type: 'user.registered', data: { user_id: 'r2', email: 'new@example.com' } });
    await receiver.waitFor(2);
    assert.ok(verifiesWithSeed(ep.secret, receiver.received[1]!), 'the endpoint secret sealed with t1 still signs');
    assert.equal(JSON.parse(receiver.received[1]!.body).data.email, 'new@example.com');
    const sql = c.services.ledger.sql;
    const emails = async () =>
      new Map((await sql<{ id: string; email: string }[]>`SELECT id, data->>'email' AS email FROM webhook_events`).map((r) => [r.id, r.email]));
    assert.match((await emails()).get(oldEvent)!, /^enc:v1:t1:/);
    assert.match((await emails()).get(newEvent)!, /^enc:v1:k2:/);
    assert.equal((await c.request('GET', `events/${oldEvent}`)).body.data.email, 'old@example.com');

    const counts = await reencryptWith(sql, c.services.secretBox);
    assert.deepEqual(counts, { endpoint_secrets: 1, endpoint_headers: 1, events: 1, event_fields: 1 });
    assert.match((await emails()).get(oldEvent)!, /^enc:v1:k2:/);
    assert.deepEqual(
      await reencryptWith(sql, c.services.secretBox),
      { endpoint_secrets: 0, endpoint_headers: 0, events: 0, event_fields: 0 },
      'a second run finds nothing',
    );
    await c.stop({ keepSchema: true });

    // 3. t1 removed: everything still opens.
    c = await startCarteiro({ ...opts, env: { CARTEIRO_ENCRYPTION_KEYS: K2_ONLY } });
    try {
      assert.equal((await c.request('GET', `events/${oldEvent}`)).body.data.email, 'old@example.com');
      await c.request('POST', `events/${oldEvent}/replay`);
      await receiver.waitFor(3);
      assert.ok(verifiesWithSeed(ep.secret, receiver.received[2]!));
      assert.equal(receiver.received[2]!.headers.authorization, 'Bearer rotated-with-the-keys', 'the static header re-sealed under k2 still opens');
      assert.equal(JSON.parse(receiver.received[2]!.body).data.email, 'old@example.com');
    } finally {
      await c.stop({ keepSchema: true });
    }
  });
});
