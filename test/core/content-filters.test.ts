/**
 * Content filters (docs/filters.md): an endpoint that filters on the event's data gets delivery rows
 * only for the events its filter matches, at fan-out, in SQL. The compiler is tested on its own (and
 * its output evaluated by Postgres's jsonpath, in PGlite), then through a real Carteiro: the ledger's
 * dispatch rows and what a real receiver got.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PGlite } from '@electric-sql/pglite';
import { startCarteiro, createEndpoint, eventually, settled, trigger, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { compileContentFilter, FILTER_LIMITS } from '../../src/catalog/content-filter.ts';
import { CarteiroError } from '../../src/errors/errors.ts';

const SEALED = new Set(['email', 'phone', 'phone_number', 'name', 'cpf', 'document']);
/** Strings built to break out of a jsonpath string literal or to name a variable or the current item. */
const NASTY = `it's "quoted" $v1 @ \\ back\\slash") || exists($) || ("`;
const BREAKOUT = '" ) || exists($ ? (@ == @)) || ( "';

function refusal(filter: unknown): { field: unknown; message: string } {
  try {
    compileContentFilter(filter, SEALED);
  } catch (err) {
    assert.ok(err instanceof CarteiroError);
    assert.equal(err.statusCode, 422);
    assert.equal(err.code, 'CARTEIRO_INVALID_FILTER');
    return { field: err.details?.field, message: err.message };
  }
  assert.fail(`accepted ${JSON.stringify(filter)}`);
}

function nested(depth: number): Record<string, unknown> {
  let f: Record<string, unknown> = { amount: 1 };
  for (let i = 0; i < depth; i++) f = { not: f };
  return f;
}

/** Filters the API refuses, each with the field its 422 names. */
const INVALID: [string, unknown, string][] = [
  ['unknown operator', { amount: { gte2: 5 } }, 'filter.amount.gte2'],
  ['comparison with a list', { amount: { gte: [1] } }, 'filter.amount.gte'],
  ['comparison with an object', { amount: { lt: { x: 1 } } }, 'filter.amount.lt'],
  ['comparison with a boolean', { amount: { gt: true } }, 'filter.amount.gt'],
  ['empty in', { provider: { in: [] } }, 'filter.provider.in'],
  ['in with an object', { provider: { in: ['a', {}] } }, 'filter.provider.in[1]'],
  ['exists with a string', { and: [{ x: 1 }, { y: { exists: 'yes' } }] }, 'filter.and[1].y.exists'],
  ['empty filter', {}, 'filter'],
  ['a string', 'amount >= 1000', 'filter'],
  ['a list', [{ amount: 1 }], 'filter'],
  ['empty path segment', { 'a..b': 1 }, 'filter.a..b'],
  ['path with a space', { 'a b': 1 }, 'filter.a b'],
  ['bare list value', { provider: ['whatsapp'] }, 'filter.provider'],
  ['no operator', { provider: {} }, 'filter.provider'],
  ['or of nothing', { or: [] }, 'filter.or'],
  ['not of a list', { not: [{ a: 1 }] }, 'filter.not'],
  ['too deep', nested(FILTER_LIMITS.depth + 1), `filter${'.not'.repeat(FILTER_LIMITS.depth + 1)}`],
  [
    'too many conditions',
    Object.fromEntries(Array.from({ length: FILTER_LIMITS.conditions + 1 }, (_, i) => [`f${i}`, i])),
    `filter.f${FILTER_LIMITS.conditions}`,
  ],
  ['too long a string', { note: 'x'.repeat(FILTER_LIMITS.stringLength + 1) }, 'filter.note'],
  ['sealed field', { 'customer.email': 'ana@example.com' }, 'filter.customer.email'],
  ['sealed field (any case, any operator)', { or: [{ amount: 1 }, { Name: { exists: true } }] }, 'filter.or[1].Name'],
];

/** Refused by the compiler too, though the API refuses a NUL anywhere in a body before (400, field `body`). */
const INVALID_BEHIND_THE_API: [string, unknown, string][] = [
  ['NUL in a string', { note: { in: ['a', 'b\u0000c'] } }, 'filter.note.in[1]'],
  ['NUL in a field name', { 'a\u0000b': 1 }, 'filter.a\u0000b'],
];

describe('content filter compiler', () => {
  let pg: PGlite;
  before(async () => {
    pg = new PGlite();
  });
  after(async () => {
    await pg.close();
  });

  /** Whether Postgres's jsonpath, as fan-out calls it, says `data` matches `filter`. */
  async function matches(filter: unknown, data: unknown): Promise<boolean> {
    const { jsonpath, vars } = compileContentFilter(filter, SEALED);
    const { rows } = await pg.query<{ m: boolean | null }>('SELECT jsonb_path_match($1::jsonb, $2::jsonpath, $3::jsonb, true) AS m', [
      JSON.stringify(data),
      jsonpath,
      JSON.stringify(vars),
    ]);
    return rows[0]?.m === true;
  }

  test('compiles to a jsonpath predicate whose values are all variables', () => {
    assert.deepEqual(compileContentFilter({ amount: { gte: 1000 } }, SEALED), { jsonpath: 'exists($."amount" ? (@ >= $v1))', vars: { v1: 1000 } });
    assert.deepEqual(compileContentFilter({ provider: 'whatsapp', 'user.plan': { exists: true } }, SEALED), {
      jsonpath: '(exists($."provider" ? (@ == $v1)) && exists($."user"."plan"))',
      vars: { v1: 'whatsapp' },
    });
    assert.deepEqual(compileContentFilter({ or: [{ provider: { in: ['whatsapp', 'telegram'] } }, { not: { amount: { lt: 5 } } }] }, SEALED), {
      jsonpath: '(exists($."provider" ? (@ == $v1)) || !(exists($."amount" ? (@ < $v2))))',
      vars: { v1: ['whatsapp', 'telegram'], v2: 5 },
    });
    const nasty = compileContentFilter({ note: NASTY, other: { ne: BREAKOUT } }, SEALED);
    assert.ok(!nasty.jsonpath.includes('quoted') && !nasty.jsonpath.includes('(@ == @)'), nasty.jsonpath);
    assert.deepEqual(nasty.vars, { v1: NASTY, v2: BREAKOUT });
  });

  test('every refusal is a 422 naming the part of the filter that is wrong', () => {
    for (const [what, filter, field] of [...INVALID, ...INVALID_BEHIND_THE_API]) assert.equal(refusal(filter).field, field, what);
    assert.match(refusal({ 'customer.email': 'x' }).message, /sealed at rest \(CARTEIRO_PII_FIELDS\)/);
    assert.match(refusal({ amount: { gte2: 5 } }).message, /unknown operator "gte2"/);
    // Nothing sealed: the same field names are fine.
    assert.doesNotThrow(() => compileContentFilter({ 'customer.email': 'x' }, new Set()));
  });

  test('each operator, nested paths and arrays, as Postgres evaluates them', async () => {
    const data = {
      amount: 1500,
      currency: 'BRL',
      provider: 'whatsapp',
      flag: true,
      coupon: null,
      at: '2026-03-01T10:00:00Z',
      user: { plan: 'pro', address: { country: 'BR' } },
      tags: ['vip', 'new'],
      items: [
        { sku: 'a', qty: 1 },
        { sku: 'b', qty: 3 },
      ],
    };
    const cases: [unknown, boolean][] = [
      [{ amount: 1500 }, true],
      [{ amount: 1500.0 }, true],
      [{ amount: '1500' }, false],
      [{ amount: { eq: 1 } }, false],
      [{ currency: { ne: 'USD' } }, true],
      [{ currency: { ne: 'BRL' } }, false],
      [{ missing: { ne: 'x' } }, false],
      [{ amount: { ne: 'x' } }, true],
      [{ provider: { in: ['telegram', 'whatsapp'] } }, true],
      [{ provider: { in: ['telegram'] } }, false],
      [{ amount: { gt: 1499 } }, true],
      [{ amount: { gt: 1500 } }, false],
      [{ amount: { gte: 1500 } }, true],
      [{ amount: { lt: 1501 } }, true],
      [{ amount: { lt: 1500 } }, false],
      [{ amount: { lte: 1500 } }, true],
      [{ amount: { gt: 1000, lte: 2000 } }, true],
      [{ amount: { gt: 1000, lte: 1200 } }, false],
      [{ currency: { gt: 1 } }, false],
      [{ amount: { gt: 'a' } }, false],
      [{ at: { gte: '2026-03-01' } }, true],
      [{ at: { lt: '2026-03-01' } }, false],
      [{ flag: true }, true],
      [{ flag: false }, false],
      [{ coupon: null }, true],
      [{ coupon: { exists: true } }, true],
      [{ 'user.plan': { exists: true } }, true],
      [{ 'user.plan.x': { exists: true } }, false],
      [{ 'user.tier': { exists: false } }, true],
      [{ 'user.address.country': 'BR' }, true],
      [{ 'user.address.country': 'PT' }, false],
      [{ 'amount.x': 1 }, false],
      [{ tags: 'vip' }, true],
      [{ tags: { in: ['old', 'new'] } }, true],
      [{ tags: 'old' }, false],
      [{ 'items.sku': 'b' }, true],
      [{ 'items.qty': { gt: 2 } }, true],
      [{ 'items.qty': { gt: 3 } }, false],
      [{ and: [{ provider: 'whatsapp' }, { amount: { gte: 1000 } }] }, true],
      [{ and: [{ provider: 'whatsapp' }, { amount: { gte: 2000 } }] }, false],
      [{ or: [{ provider: 'telegram' }, { amount: { gte: 1000 } }] }, true],
      [{ or: [{ provider: 'telegram' }, { amount: { gte: 2000 } }] }, false],
      [{ not: { provider: 'telegram' } }, true],
      [{ not: { provider: 'whatsapp' } }, false],
      [{ not: { missing: 1 } }, true],
      [{ 'user.plan': 'pro', or: [{ amount: { gte: 5000 } }, { not: { currency: 'BRL' } }] }, false],
      [{ 'user.plan': 'pro', or: [{ amount: { gte: 1000 } }, { not: { currency: 'BRL' } }] }, true],
    ];
    for (const [filter, expected] of cases) assert.equal(await matches(filter, data), expected, JSON.stringify(filter));
  });

  test('strings and field names are matched literally, whatever they hold', async () => {
    assert.equal(await matches({ note: NASTY }, { note: NASTY }), true);
    assert.equal(await matches({ note: NASTY }, { note: 'anything' }), false);
    assert.equal(await matches({ note: BREAKOUT }, { note: 'anything' }), false);
    assert.equal(await matches({ note: { ne: BREAKOUT } }, { other: 1 }), false);
    assert.equal(await matches({ note: '$v1' }, { note: 'x' }), false);
    assert.equal(await matches({ note: '@' }, { note: '@' }), true);
    for (const key of ['a"b', 'a\\b', '$', '@', 'a"||"b', 'ção', '"', '\\']) {
      assert.equal(await matches({ [key]: 1 }, { [key]: 1 }), true, key);
      assert.equal(await matches({ [key]: 1 }, { [key]: 2, a: 1, b: 1 }), false, key);
    }
  });
});

type Sent = { payment_id?: string; user_id?: string; [k: string]: unknown };

describe('content filters at fan-out', () => {
  let c: TestCarteiro;
  let rx: TestReceiver;
  before(async () => {
    c = await startCarteiro();
    rx = await startReceiver();
  });
  after(async () => {
    await c?.stop();
    await rx?.close();
  });

  async function dispatchedEvents(endpointId: string): Promise<string[]> {
    const rows = await c.services.ledger.sql<{ id: string }[]>`
      SELECT webhook_event_id AS id FROM webhook_dispatches WHERE webhook_endpoint_id = ${endpointId}`;
    return rows.map((r) => r.id).sort();
  }

  async function endpointCount(): Promise<number> {
    const [row] = await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_endpoints`;
    return row?.n ?? 0;
  }

  /** The data of what the receiver got on `path`, by payment_id (or user_id). */
  function receivedOn(path: string): string[] {
    return rx.received
      .filter((r) => r.path === path)
      .map((r) => JSON.parse(r.body).data as Sent)
      .map((d) => (d.payment_id ?? d.user_id) as string)
      .sort();
  }

  test('filtered-out events get no delivery row and are not delivered; matching ones are', async () => {
    const payments: Record<string, Sent> = {
      p1: { payment_id: 'p1', amount: 1500, currency: 'BRL', user: { plan: 'pro', address: { country: 'BR' } }, tags: ['vip', 'new'] },
      p2: { payment_id: 'p2', amount: 5, currency: 'USD', note: NASTY },
      p3: { payment_id: 'p3', amount: 1000, currency: 'EUR', user: { plan: 'free' }, flags: { vip: true } },
      p4: { payment_id: 'p4', amount: 6000, currency: 'BRL', user: { plan: 'pro' } },
    };
    const filters: Record<string, [Record<string, unknown>, string[]]> = {
      gte: [{ amount: { gte: 1000 } }, ['p1', 'p3', 'p4']],
      eq: [{ currency: 'BRL' }, ['p1', 'p4']],
      ne: [{ currency: { ne: 'BRL' } }, ['p2', 'p3']],
      in: [{ currency: { in: ['USD', 'EUR'] } }, ['p2', 'p3']],
      lt: [{ amount: { lt: 10 } }, ['p2']],
      range: [{ amount: { gt: 10, lte: 1000 } }, ['p3']],
      exists: [{ 'user.plan': { exists: true } }, ['p1', 'p3', 'p4']],
      absent: [{ 'user.plan': { exists: false } }, ['p2']],
      combined: [{ and: [{ 'user.plan': 'pro' }, { or: [{ amount: { gte: 5000 } }, { not: { currency: 'BRL' } }] }] }, ['p4']],
      nested: [{ 'user.address.country': 'BR' }, ['p1']],
      array: [{ tags: 'vip' }, ['p1']],
      boolean: [{ 'flags.vip': true }, ['p3']],
      literal: [{ note: NASTY }, ['p2']],
      breakout: [{ note: BREAKOUT }, []],
    };
    const endpoints: Record<string, string> = {};
    for (const [name, [filter]] of Object.entries(filters)) {
      const ep = await createEndpoint(c, { url: `${rx.url}/${name}`, events: ['payment.confirmed'], filter });
      assert.deepEqual(ep.filter, filter, 'the response shows the filter as given');
      endpoints[name] = ep.id;
    }
    const whatsapp = await createEndpoint(c, { url: `${rx.url}/whatsapp`, events: ['integration.*'], filter: { provider: 'whatsapp' } });

    const ids: Record<string, string> = {};
    for (const [key, data] of Object.entries(payments)) ids[key] = await trigger(c, { event_type: 'payment.confirmed', data });
    const wa = await trigger(c, { event_type: 'integration.disconnected', data: { user_id: 'u-wa', provider: 'whatsapp' } });
    const tg = await trigger(c, { event_type: 'integration.disconnected', data: { user_id: 'u-tg', provider: 'telegram' } });

    const expectedTotal = Object.values(filters).reduce((n, [, keys]) => n + keys.length, 0) + 1;
    await rx.waitFor(expectedTotal, 30_000);
    for (const [name, [, keys]] of Object.entries(filters)) {
      assert.deepEqual(await dispatchedEvents(endpoints[name] as string), keys.map((k) => ids[k]).sort(), `ledger rows of ${name}`);
    }
    assert.deepEqual(await dispatchedEvents(whatsapp.id), [wa]);
    // An event no endpoint's filter takes is complete at once, with nothing to deliver.
    const [unrouted] = await c.services.ledger.sql<{ status: string; n: number }[]>`
      SELECT status, (SELECT count(*)::int FROM webhook_dispatches WHERE webhook_event_id = ${tg}) AS n FROM webhook_events WHERE id = ${tg}`;
    assert.deepEqual({ ...unrouted }, { status: 'completed', n: 0 });

    // Every dispatch settled: each request was sent before its outcome was recorded, so none is still to come.
    await settled(c, { eventIds: [...Object.values(ids), wa, tg] });
    assert.equal(rx.received.length, expectedTotal);
    for (const [name, [, keys]] of Object.entries(filters)) assert.deepEqual(receivedOn(`/${name}`), keys, `delivered to ${name}`);
    assert.deepEqual(receivedOn('/whatsapp'), ['u-wa']);
  });

  test('an invalid filter is a 422 naming the field, and nothing changes', async () => {
    const before = await endpointCount();
    for (const [what, filter, field] of INVALID) {
      const res = await c.request('POST', 'endpoints', { name: 'bad', url: `${rx.url}/bad`, filter });
      assert.equal(res.status, 422, `${what}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'CARTEIRO_INVALID_FILTER', what);
      assert.equal(res.body.details.field, field, what);
    }
    assert.equal(await endpointCount(), before, 'no endpoint was created');

    const ep = await createEndpoint(c, { url: `${rx.url}/kept`, events: ['payment.confirmed'], filter: { amount: { gte: 1 } } });
    for (const [what, filter, field] of INVALID) {
      const res = await c.request('PATCH', `endpoints/${ep.id}`, { filter, name: 'renamed' });
      assert.equal(res.status, 422, what);
      assert.equal(res.body.details.field, field, what);
    }
    const shown = await c.request('GET', `endpoints/${ep.id}`);
    assert.deepEqual(shown.body.filter, { amount: { gte: 1 } });
    assert.equal(shown.body.name, 'test');
  });

  test('a filter on a sealed field is refused, saying why', async () => {
    const res = await c.request('POST', 'endpoints', { name: 'sealed', url: `${rx.url}/sealed`, filter: { 'customer.email': { exists: true } } });
    assert.equal(res.status, 422);
    assert.equal(res.body.details.field, 'filter.customer.email');
    assert.match(res.body.message, /sealed at rest \(CARTEIRO_PII_FIELDS\).*ciphertext/);
  });

  test('PATCH sets, replaces and (with null) clears a filter; recovery applies it too', async () => {
    const ep = await createEndpoint(c, { url: `${rx.url}/patched`, events: ['payment.failed'] });
    assert.equal(ep.filter, null);
    const send = (payment_id: string, amount: number) => trigger(c, { event_type: 'payment.failed', data: { payment_id, amount } });

    let res = await c.request('PATCH', `endpoints/${ep.id}`, { filter: { amount: { gte: 100 } } });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body.filter, { amount: { gte: 100 } });
    const small = await send('f-small', 1);
    const big = await send('f-big', 500);
    await eventually(async () => (await dispatchedEvents(ep.id)).length === 1, { what: 'the big one' });

    res = await c.request('PATCH', `endpoints/${ep.id}`, { filter: null });
    assert.equal(res.status, 200);
    assert.equal(res.body.filter, null);
    const row = await c.services.ledger.sql`SELECT filter, filter_jsonpath, filter_vars FROM webhook_endpoints WHERE id = ${ep.id}`;
    assert.deepEqual({ ...row[0] }, { filter: null, filter_jsonpath: null, filter_vars: null });
    const small2 = await send('f-small-2', 1);
    await eventually(async () => (await dispatchedEvents(ep.id)).length === 2, { what: 'unfiltered' });
    assert.deepEqual(await dispatchedEvents(ep.id), [big, small2].sort());
    await eventually(() => receivedOn('/patched').length === 2, { what: 'deliveries' });
    assert.deepEqual(receivedOn('/patched'), ['f-big', 'f-small-2']);

    // Recovery queues only what the filter takes, as fan-out would have.
    res = await c.request('PATCH', `endpoints/${ep.id}`, { filter: { amount: { lt: 10 } } });
    assert.equal(res.status, 200);
    const since = new Date(Date.now() - 60_000).toISOString();
    res = await c.request('POST', `endpoints/${ep.id}/recover`, { since });
    assert.equal(res.status, 200);
    assert.deepEqual(res.body, { recovered: 1, truncated: false });
    assert.deepEqual(await dispatchedEvents(ep.id), [big, small, small2].sort());
  });
});
