/**
 * The event catalog's cache of custom types: a known type is served while it is re-read in the
 * background (never recompiled when unchanged), concurrent lookups of an expired or unknown type share
 * one read, a type registered elsewhere becomes usable after the TTL, and a changed schema is used.
 * Two catalogs on one ledger stand for two API processes. Postgres with DATABASE_URL, else PGlite.
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { createCatalog, type Catalog } from '../../src/catalog/catalog.ts';
import type { Sql } from '../../src/ledger/connection.ts';
import { UnknownEventTypeError } from '../../src/errors/errors.ts';

const TTL_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The catalog's clock (Date) in the test's hands: the TTL passes when the test says so, never while a
 * busy machine runs a step slowly. Timers are left real, so the ledger's I/O goes on as usual.
 */
function clock(t: TestContext): { pass(ms: number): void } {
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() });
  return { pass: (ms) => t.mock.timers.tick(ms) };
}

/** The ledger's sql, counting the queries sent through it. */
function counting(sql: Sql): { sql: Sql; queries: () => number } {
  let n = 0;
  const proxy = new Proxy(sql, {
    apply(target, thisArg, args) {
      n++;
      return Reflect.apply(target as unknown as (...a: unknown[]) => unknown, thisArg, args);
    },
  });
  return { sql: proxy, queries: () => n };
}

describe('event catalog cache', () => {
  let c: TestCarteiro;
  let org: string;
  let sql: Sql;

  before(async () => {
    c = await startCarteiro();
    sql = c.services.ledger.sql;
    const [row] = await sql<{ id: string }[]>`SELECT id FROM organizations ORDER BY created_at LIMIT 1`;
    org = row!.id;
  });
  after(async () => {
    await c?.stop();
  });

  test('an expired known type is served at once, re-read once in the background, and not recompiled', async (t) => {
    const time = clock(t);
    const counted = counting(sql);
    const catalog = createCatalog(counted.sql, { customTtlMs: TTL_MS });
    await catalog.register(org, { name: 'cache.known', description: '', priority: 'normal', schema: { type: 'object', required: ['n'] } });
    const first = await catalog.resolve(org, 'cache.known');
    const readsAfterFirst = counted.queries();
    time.pass(TTL_MS + 1);

    // Expired: every concurrent caller gets the cached type without waiting, and one read goes out.
    const served = await Promise.all(Array.from({ length: 25 }, () => catalog.resolve(org, 'cache.known')));
    assert.ok(
      served.every((t) => t === first),
      'the cached type is served while it is refreshed',
    );
    await eventually(() => counted.queries() === readsAfterFirst + 1, { what: 'one background read' });
    await sleep(20);
    assert.equal(counted.queries(), readsAfterFirst + 1, 'concurrent expired lookups share one read');

    const after = await catalog.resolve(org, 'cache.known');
    assert.equal(after.validate, first.validate, 'an unchanged schema keeps its compiled validator');
    assert.throws(() => catalog.validateData(after, {}), /data\.n is required/);
  });

  test('a type registered through another process is usable after the TTL; waiting lookups share one read', async (t) => {
    const time = clock(t);
    const elsewhere: Catalog = createCatalog(sql, { customTtlMs: TTL_MS });
    const counted = counting(sql);
    const here = createCatalog(counted.sql, { customTtlMs: TTL_MS });

    await assert.rejects(here.resolve(org, 'cache.later'), UnknownEventTypeError);
    await elsewhere.register(org, { name: 'cache.later', description: '', priority: 'high', schema: { type: 'object' } });
    // Within the TTL this process still has its "unknown" answer, without asking the ledger again.
    const before = counted.queries();
    await assert.rejects(here.resolve(org, 'cache.later'), UnknownEventTypeError);
    assert.equal(counted.queries(), before);

    time.pass(TTL_MS + 1);
    const found = await Promise.all(Array.from({ length: 25 }, () => here.resolve(org, 'cache.later')));
    assert.equal(counted.queries(), before + 1, 'lookups waiting on the same unknown type share one read');
    assert.ok(found.every((t) => t === found[0] && t.name === 'cache.later' && t.priority === 'high'));
  });

  test('a changed schema is recompiled and used after the TTL', async (t) => {
    const time = clock(t);
    const catalog = createCatalog(sql, { customTtlMs: TTL_MS });
    await catalog.register(org, { name: 'cache.changed', description: '', priority: 'normal', schema: { type: 'object' } });
    const v1 = await catalog.resolve(org, 'cache.changed');
    catalog.validateData(v1, { anything: 1 });

    // No API changes a registered type; an operator's SQL can, and the cache must not pin the old one.
    await sql`UPDATE event_types SET schema = ${sql.json({ type: 'object', required: ['order_id'] })} WHERE organization_id = ${org} AND name = 'cache.changed'`;
    time.pass(TTL_MS + 1);
    await catalog.resolve(org, 'cache.changed'); // stale answer; starts the refresh
    const v2 = await eventually(
      async () => {
        const t = await catalog.resolve(org, 'cache.changed');
        return t.validate !== v1.validate ? t : null;
      },
      { what: 'the new schema compiled' },
    );
    assert.throws(() => catalog.validateData(v2, { anything: 1 }), /data\.order_id is required/);
  });
});

describe('event-type schemas: validation cost is bounded', () => {
  let c: TestCarteiro;
  before(async () => {
    // The compile deadline far away: what these tests tell apart is validation cost, and a loaded
    // machine must not turn a slow compile into a refusal.
    // (and the routes' answer deadline: a 150,000-element body must be refused for its cost, not
    // answered 503 because a loaded machine parsed it slowly).
    c = await startCarteiro({
      env: { CARTEIRO_SCHEMA_VALIDATION_TIMEOUT_MS: '1000', CARTEIRO_SCHEMA_COMPILE_TIMEOUT_MS: '60000', CARTEIRO_ANSWER_DEADLINE_MS: '120000' },
    });
  });
  after(async () => {
    await c?.stop();
  });

  test('patterns run in linear time: backtracking patterns are kept and answer at once', { timeout: 30_000 }, async () => {
    // With a backtracking engine each of these strings takes hours and stalls every request.
    const nested = await c.request('POST', 'event-types', {
      name: 'regex.nested',
      schema: { type: 'object', properties: { code: { type: 'string', pattern: '^(a+)+$' } } },
    });
    assert.equal(nested.status, 201, JSON.stringify(nested.body));
    const alternation = await c.request('POST', 'event-types', {
      name: 'regex.alternation',
      schema: { type: 'object', patternProperties: { '^(x|x)*$': { type: 'integer' } } },
    });
    assert.equal(alternation.status, 201, JSON.stringify(alternation.body));
    const slow = await c.request('POST', 'trigger', { event_type: 'regex.nested', data: { code: `${'a'.repeat(60)}b` } });
    assert.equal(slow.status, 422);
    assert.equal(slow.body.details.field, 'data.code');
    assert.equal((await c.request('POST', 'trigger', { event_type: 'regex.nested', data: { code: 'a'.repeat(60) } })).status, 202);
    const keyed = await c.request('POST', 'trigger', {
      event_type: 'regex.alternation',
      data: { [`${'x'.repeat(60)}`]: 'not an integer', [`${'x'.repeat(60)}y`]: 'free' },
    });
    assert.equal(keyed.status, 422, JSON.stringify(keyed.body));
    assert.equal((await c.request('GET', 'health')).status, 200);
  });

  test('patterns the linear-time engine cannot run are refused with 400 naming where they are; nothing is stored', async () => {
    const refused: [string, unknown, string | RegExp][] = [
      ['regex.lookbehind', { type: 'object', properties: { code: { type: 'string', pattern: '(?<=a)b' } } }, 'schema.properties.code.pattern'],
      ['regex.backref', { type: 'object', patternProperties: { '^(a)\\1$': {} } }, /patternProperties/],
      ['regex.invalid', { type: 'string', pattern: '(' }, 'schema.pattern'],
    ];
    for (const [name, schema, field] of refused) {
      const res = await c.request('POST', 'event-types', { name, schema });
      assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body)}`);
      if (typeof field === 'string') assert.equal(res.body.details?.field, field);
      else assert.match(res.body.details?.field ?? '', field);
      assert.match(res.body.message, /linear-time engine/);
    }
    const names = (await c.request('GET', 'event-types')).body.data.map((t: { name: string }) => t.name);
    assert.ok(!refused.some(([name]) => names.includes(name)), names.join(','));

    const safe = await c.request('POST', 'event-types', {
      name: 'regex.safe',
      schema: { type: 'object', required: ['cpf'], properties: { cpf: { type: 'string', pattern: '^\\d{3}\\.\\d{3}\\.\\d{3}-\\d{2}$' } } },
    });
    assert.equal(safe.status, 201, JSON.stringify(safe.body));
    assert.equal((await c.request('POST', 'trigger', { event_type: 'regex.safe', data: { cpf: '123.456.789-09' } })).status, 202);
    const wrong = await c.request('POST', 'trigger', { event_type: 'regex.safe', data: { cpf: '12345678909' } });
    assert.equal(wrong.status, 422);
  });

  test('what can never run is refused at registration, naming where it is; nothing is stored', async () => {
    const refused: [string, unknown, string][] = [
      ['schema.async', { $async: true, type: 'object', required: ['x'] }, 'schema.$async'],
      ['schema.async.nested', { type: 'object', properties: { a: { anyOf: [{ $async: true }] } } }, 'schema.properties.a.anyOf[0].$async'],
      ['schema.huge', { type: 'object', description: 'x'.repeat(70_000) }, 'schema'],
    ];
    for (const [name, schema, field] of refused) {
      const res = await c.request('POST', 'event-types', { name, schema });
      assert.equal(res.status, 400, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.details?.field, field, name);
    }
    const names = (await c.request('GET', 'event-types')).body.data.map((t: { name: string }) => t.name);
    assert.ok(!refused.some(([name]) => names.includes(name)), names.join(','));
  });

  test('a schema too costly for its data refuses that event with 422; the API keeps answering meanwhile', { timeout: 60_000 }, async () => {
    // Each branch of the anyOf re-applies the whole schema: 2^depth validations in one thread.
    const recursive = { type: 'object', properties: { a: { anyOf: [{ $ref: '#' }, { $ref: '#' }] }, b: { type: 'string' } } };
    assert.equal((await c.request('POST', 'event-types', { name: 'costly.recursive', schema: recursive })).status, 201);
    let deep: Record<string, unknown> = { b: 1 };
    for (let i = 0; i < 40; i++) deep = { a: deep };
    const slow = c.request('POST', 'trigger', { event_type: 'costly.recursive', data: deep });
    let slowDone = false;
    void slow.then(() => {
      slowDone = true;
    });
    await sleep(50);
    const health = await c.request('GET', 'health');
    assert.equal(health.status, 200);
    assert.equal(slowDone, false, 'health answered while the costly validation was still running');
    const refused = await slow;
    assert.equal(refused.status, 422, JSON.stringify(refused.body));
    assert.equal(refused.body.details.field, 'data');
    // Its deadline counts the thread's CPU time; it also fills memory, so the heap limit may come first.
    assert.match(refused.body.message, /costly\.recursive.*(took longer than 1000 ms|needed more than 128 MB)/);
    // The thread that ran it was replaced: the same type still validates what it can.
    assert.equal((await c.request('POST', 'trigger', { event_type: 'costly.recursive', data: { a: { a: { b: 'ok' } } } })).status, 202);
    const wrong = await c.request('POST', 'trigger', { event_type: 'costly.recursive', data: { b: 7 } });
    assert.equal(wrong.status, 422);
    assert.equal(wrong.body.details.field, 'data.b');

    // Memory too: many branches each walking a long array (in one thread with no limit, 4 GB ran out).
    const branches: unknown[] = [];
    while (JSON.stringify(branches).length < 30_000) branches.push({ items: { type: 'integer' }, contains: { const: branches.length + 1e6 } });
    assert.equal(
      (await c.request('POST', 'event-types', { name: 'costly.branches', schema: { type: 'object', properties: { d: { anyOf: branches } } } })).status,
      201,
    );
    const big = await c.request('POST', 'trigger', { event_type: 'costly.branches', data: { d: Array.from({ length: 150_000 }, (_, k) => k % 10) } });
    assert.equal(big.status, 422, JSON.stringify(big.body));
    assert.match(big.body.message, /too costly/);
    const small = await c.request('POST', 'trigger', { event_type: 'costly.branches', data: { d: [1e6 + 1] } });
    assert.equal(small.status, 202, JSON.stringify(small.body));

    // Pairwise uniqueness over objects is quadratic: small arrays are checked, large ones refused.
    assert.equal(
      (await c.request('POST', 'event-types', { name: 'costly.unique', schema: { type: 'object', properties: { l: { type: 'array', uniqueItems: true } } } }))
        .status,
      201,
    );
    assert.equal((await c.request('POST', 'trigger', { event_type: 'costly.unique', data: { l: [[1], [2]] } })).status, 202);
    assert.equal((await c.request('POST', 'trigger', { event_type: 'costly.unique', data: { l: [[1], [1]] } })).status, 422);
    const pairs = await c.request('POST', 'trigger', { event_type: 'costly.unique', data: { l: Array.from({ length: 60_000 }, (_, k) => [k]) } });
    assert.equal(pairs.status, 422, JSON.stringify(pairs.body));
    assert.equal((await c.request('GET', 'health')).status, 200);
  });

  test('a type stored before the bound existed is refused at trigger with 422, not run', async () => {
    const org = (await c.request('POST', 'organizations', { name: 'legacy' })).body.id as string;
    await c.services.ledger.sql`
      INSERT INTO event_types (organization_id, name, description, schema, priority)
      VALUES (${org}, 'legacy.async', NULL, ${c.services.ledger.sql.json({ $async: true, type: 'object' } as never)}, 'normal')`;
    const res = await c.request('POST', 'trigger', { event_type: 'legacy.async', data: { a: {} } }, { 'x-organization-id': org });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.match(res.body.message, /legacy\.async.*no longer runs.*\$async/);
    assert.equal(res.body.details.field, 'event_type');
  });

  test('two organizations may use the same $id; format is an annotation', async () => {
    const [orgA, orgB] = await Promise.all(['id-a', 'id-b'].map(async (name) => (await c.request('POST', 'organizations', { name })).body.id as string));
    const schema = {
      $id: 'https://schemas.example/order',
      type: 'object',
      required: ['order_id'],
      properties: { order_id: { type: 'string' }, email: { type: 'string', format: 'email' } },
    };
    for (const org of [orgA, orgB]) {
      const res = await c.request('POST', 'event-types', { name: 'order.placed', schema }, { 'x-organization-id': org as string });
      assert.equal(res.status, 201, JSON.stringify(res.body));
    }
    for (const org of [orgA, orgB]) {
      const ok = await c.request(
        'POST',
        'trigger',
        { event_type: 'order.placed', data: { order_id: 'o1', email: 'not checked' } },
        { 'x-organization-id': org as string },
      );
      assert.equal(ok.status, 202, JSON.stringify(ok.body));
      const bad = await c.request('POST', 'trigger', { event_type: 'order.placed', data: {} }, { 'x-organization-id': org as string });
      assert.equal(bad.status, 422);
      assert.equal(bad.body.details.field, 'data.order_id');
    }
  });
});

describe('event-type schemas: one organization cannot affect another', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro();
  });
  after(async () => {
    await c?.stop();
  });

  const DRAFT_07 = 'http://json-schema.org/draft-07/schema#';
  /** Identifiers that name something shared: the meta-schemas, the id Carteiro lends a root, another organization's. */
  const HOSTILE_IDS = [
    DRAFT_07,
    'http://json-schema.org/draft-07/schema',
    'https://json-schema.org/draft/2020-12/schema',
    'urn:carteiro:event-type',
    'https://victim.example/order',
    'http://json-schema.org/draft-07/schema#/definitions/nonNegativeInteger',
  ];

  /** Hostile schemas: each identifier in each place a schema can carry one, inline and on the isolated thread. */
  function hostileSchemas(): { what: string; schema: Record<string, unknown> }[] {
    const out: { what: string; schema: Record<string, unknown> }[] = [];
    for (const id of HOSTILE_IDS) {
      out.push({ what: `root $id ${id}`, schema: { $id: id, type: 'object' } });
      out.push({ what: `nested $id ${id}`, schema: { type: 'object', properties: { a: { $id: id, type: 'string' } } } });
      out.push({ what: `$defs $id ${id}`, schema: { type: 'object', $defs: { x: { $id: id } }, definitions: { y: { $id: id, type: 'integer' } } } });
      out.push({ what: `$ref ${id}`, schema: { type: 'object', properties: { a: { $ref: id } } } });
      out.push({ what: `$schema ${id}`, schema: { $schema: id, type: 'object' } });
      out.push({ what: `isolated root $id ${id}`, schema: { $id: id, type: 'object', anyOf: [{ required: ['a'] }, { required: ['b'] }] } });
      out.push({ what: `isolated $ref ${id}`, schema: { type: 'object', anyOf: [{ $ref: id }, { required: ['b'] }] } });
      out.push({ what: `unknown keyword holding $id ${id}`, schema: { type: 'object', x_custom: { $id: id } } });
    }
    out.push({ what: 'the draft-07 meta-schema itself, by its $id', schema: { $id: DRAFT_07, $schema: DRAFT_07, type: ['object', 'boolean'] } });
    out.push({ what: '$anchor', schema: { type: 'object', properties: { a: { $anchor: 'order' } } } });
    out.push({ what: '$ref to an $anchor', schema: { type: 'object', properties: { a: { $ref: '#order' } } } });
    return out;
  }

  test("hostile $id, $schema, $ref, $anchor and $defs from one organization leave every other organization's types working", { timeout: 120_000 }, async () => {
    const [victim, attacker] = (await Promise.all(
      ['victim', 'attacker'].map(async (name) => (await c.request('POST', 'organizations', { name })).body.id as string),
    )) as [string, string];
    const as = (org: string) => ({ 'x-organization-id': org });
    const victimSchema = { $id: 'https://victim.example/order', type: 'object', required: ['order_id'], properties: { order_id: { type: 'string' } } };
    assert.equal((await c.request('POST', 'event-types', { name: 'order.placed', schema: victimSchema }, as(victim))).status, 201);
    const isolatedSchema = { type: 'object', anyOf: [{ required: ['a'] }, { required: ['b'] }] };
    assert.equal((await c.request('POST', 'event-types', { name: 'order.either', schema: isolatedSchema }, as(victim))).status, 201);

    let n = 0;
    const victimStillWorks = async (after: string) => {
      const ok = await c.request('POST', 'trigger', { event_type: 'order.placed', data: { order_id: 'o1' } }, as(victim));
      assert.equal(ok.status, 202, `${after}: ${JSON.stringify(ok.body)}`);
      const bad = await c.request('POST', 'trigger', { event_type: 'order.placed', data: {} }, as(victim));
      assert.equal(bad.status, 422, `${after}: ${JSON.stringify(bad.body)}`);
      assert.equal(bad.body.details.field, 'data.order_id');
      assert.equal((await c.request('POST', 'trigger', { event_type: 'order.either', data: { b: 1 } }, as(victim))).status, 202, after);
      assert.equal((await c.request('POST', 'trigger', { event_type: 'order.either', data: { c: 1 } }, as(victim))).status, 422, after);
      const fresh = await c.request('POST', 'event-types', { name: `plain.t${++n}`, schema: { type: 'object', required: ['x'] } }, as(victim));
      assert.equal(fresh.status, 201, `${after}: ${JSON.stringify(fresh.body)}`);
      assert.equal((await c.request('POST', 'trigger', { event_type: `plain.t${n}`, data: {} }, as(victim))).status, 422, after);
    };

    for (const [i, { what, schema }] of hostileSchemas().entries()) {
      const res = await c.request('POST', 'event-types', { name: `hostile.t${i}`, schema }, as(attacker));
      assert.ok(res.status === 201 || res.status === 400, `${what}: ${res.status} ${JSON.stringify(res.body)}`);
      if (res.status === 400) assert.match(String(res.body.details?.field), /^schema/, `${what}: the refusal names the field`);
      else {
        const t = await c.request('POST', 'trigger', { event_type: `hostile.t${i}`, data: { a: 'x' } }, as(attacker));
        assert.ok(t.status === 202 || t.status === 422, `${what}: trigger answered ${t.status} ${JSON.stringify(t.body)}`);
      }
      await victimStillWorks(`after ${what}`);
    }

    // Names: another organization's and a built-in one.
    const sameName = { $id: 'https://victim.example/order', type: 'object', required: ['z'] };
    assert.equal((await c.request('POST', 'event-types', { name: 'order.placed', schema: sameName }, as(attacker))).status, 201);
    assert.equal((await c.request('POST', 'event-types', { name: 'user.registered', schema: { type: 'object', required: ['z'] } }, as(attacker))).status, 409);
    await victimStillWorks("after the victim's name was used");
    assert.equal((await c.request('POST', 'trigger', { event_type: 'order.placed', data: { z: 1 } }, as(attacker))).status, 202);
    assert.equal((await c.request('POST', 'trigger', { event_type: 'order.placed', data: { order_id: 'o1' } }, as(attacker))).status, 422);
  });

  test('refused identifiers are named in a 400', async () => {
    const refused: [unknown, string][] = [
      [{ $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object' }, 'schema.$schema'],
      [{ type: 'object', properties: { a: { $id: DRAFT_07 } } }, 'schema.properties.a.$id'],
      [{ type: 'object', properties: { a: { $ref: 'https://elsewhere.example/x' } } }, 'schema.properties.a.$ref'],
      [{ type: 'object', properties: { a: { $ref: DRAFT_07 } } }, 'schema.properties.a.$ref'],
    ];
    for (const [schema, field] of refused) {
      const res = await c.request('POST', 'event-types', { name: 'refused.id', schema });
      assert.equal(res.status, 400, JSON.stringify(res.body));
      assert.equal(res.body.details.field, field, JSON.stringify(res.body));
    }
    const listed = (await c.request('GET', 'event-types')).body.data as { name: string }[];
    // Names of data properties are not identifiers: a property may be called "$id" or "$ref".
    const named = await c.request('POST', 'event-types', {
      name: 'named.props',
      schema: { type: 'object', required: ['$id'], properties: { $id: { type: 'string' }, $ref: { type: 'integer' } } },
    });
    assert.equal(named.status, 201, JSON.stringify(named.body));
    assert.equal((await c.request('POST', 'trigger', { event_type: 'named.props', data: { $id: 'x', $ref: 1 } })).status, 202);
    assert.equal((await c.request('POST', 'trigger', { event_type: 'named.props', data: { $ref: 1 } })).status, 422);
    assert.ok(!listed.some((t) => t.name === 'refused.id'), 'nothing refused is stored');
  });
});
