/**
 * The event catalog's cache of custom types: a known type is served while it is re-read in the
 * background (never recompiled when unchanged), concurrent lookups of an expired or unknown type share
 * one read, a type registered elsewhere becomes usable after the TTL, and a changed schema is used.
 * Two catalogs on one ledger stand for two API processes. Postgres with DATABASE_URL, else PGlite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { createCatalog, type Catalog } from '../../src/catalog/catalog.ts';
import type { Sql } from '../../src/ledger/connection.ts';
import { UnknownEventTypeError } from '../../src/errors/errors.ts';

const TTL_MS = 150;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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

  test('an expired known type is served at once, re-read once in the background, and not recompiled', async () => {
    const counted = counting(sql);
    const catalog = createCatalog(counted.sql, { customTtlMs: TTL_MS });
    await catalog.register(org, { name: 'cache.known', description: '', priority: 'normal', schema: { type: 'object', required: ['n'] } });
    const first = await catalog.resolve(org, 'cache.known');
    const readsAfterFirst = counted.queries();
    await sleep(TTL_MS + 50);

    // Expired: every concurrent caller gets the cached type without waiting, and one read goes out.
    const served = await Promise.all(Array.from({ length: 25 }, () => catalog.resolve(org, 'cache.known')));
    assert.ok(served.every((t) => t === first), 'the cached type is served while it is refreshed');
    await eventually(() => counted.queries() === readsAfterFirst + 1, { what: 'one background read' });
    await sleep(20);
    assert.equal(counted.queries(), readsAfterFirst + 1, 'concurrent expired lookups share one read');

    const after = await catalog.resolve(org, 'cache.known');
    assert.equal(after.validate, first.validate, 'an unchanged schema keeps its compiled validator');
    assert.throws(() => catalog.validateData(after, {}), /data\.n is required/);
  });

  test('a type registered through another process is usable after the TTL; waiting lookups share one read', async () => {
    const elsewhere: Catalog = createCatalog(sql, { customTtlMs: TTL_MS });
    const counted = counting(sql);
    const here = createCatalog(counted.sql, { customTtlMs: TTL_MS });

    await assert.rejects(here.resolve(org, 'cache.later'), UnknownEventTypeError);
    await elsewhere.register(org, { name: 'cache.later', description: '', priority: 'high', schema: { type: 'object' } });
    // Within the TTL this process still has its "unknown" answer, without asking the ledger again.
    const before = counted.queries();
    await assert.rejects(here.resolve(org, 'cache.later'), UnknownEventTypeError);
    assert.equal(counted.queries(), before);

    await sleep(TTL_MS + 50);
    const found = await Promise.all(Array.from({ length: 25 }, () => here.resolve(org, 'cache.later')));
    assert.equal(counted.queries(), before + 1, 'lookups waiting on the same unknown type share one read');
    assert.ok(found.every((t) => t === found[0] && t.name === 'cache.later' && t.priority === 'high'));
  });

  test('a changed schema is recompiled and used after the TTL', async () => {
    const catalog = createCatalog(sql, { customTtlMs: TTL_MS });
    await catalog.register(org, { name: 'cache.changed', description: '', priority: 'normal', schema: { type: 'object' } });
    const v1 = await catalog.resolve(org, 'cache.changed');
    catalog.validateData(v1, { anything: 1 });

    // No API changes a registered type; an operator's SQL can, and the cache must not pin the old one.
    await sql`UPDATE event_types SET schema = ${sql.json({ type: 'object', required: ['order_id'] })} WHERE organization_id = ${org} AND name = 'cache.changed'`;
    await sleep(TTL_MS + 50);
    await catalog.resolve(org, 'cache.changed'); // stale answer; starts the refresh
    const v2 = await eventually(async () => {
      const t = await catalog.resolve(org, 'cache.changed');
      return t.validate !== v1.validate ? t : null;
    }, { what: 'the new schema compiled' });
    assert.throws(() => catalog.validateData(v2, { anything: 1 }), /data\.order_id is required/);
  });
});

describe('event-type schemas with regular expressions', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro();
  });
  after(async () => {
    await c?.stop();
  });

  test('a pattern that could take exponential time is refused with 400 naming where it is; safe ones are kept', async () => {
    const unsafe = await c.request('POST', 'event-types', {
      name: 'regex.unsafe',
      schema: { type: 'object', properties: { code: { type: 'string', pattern: '^(a+)+$' } } },
    });
    assert.equal(unsafe.status, 400, JSON.stringify(unsafe.body));
    assert.equal(unsafe.body.details?.field, 'schema.properties.code.pattern');
    const keyed = await c.request('POST', 'event-types', { name: 'regex.keys', schema: { type: 'object', patternProperties: { '^(x|x?)+$': {} } } });
    assert.equal(keyed.status, 400);
    assert.match(keyed.body.details?.field ?? '', /patternProperties/);
    const invalid = await c.request('POST', 'event-types', { name: 'regex.invalid', schema: { type: 'string', pattern: '(' } });
    assert.equal(invalid.status, 400);
    // Nothing refused was stored.
    const names = (await c.request('GET', 'event-types')).body.data.map((t: { name: string }) => t.name);
    assert.ok(!names.some((n: string) => n.startsWith('regex.')), names.join(','));

    const safe = await c.request('POST', 'event-types', {
      name: 'regex.safe',
      schema: { type: 'object', required: ['cpf'], properties: { cpf: { type: 'string', pattern: '^\\d{3}\\.\\d{3}\\.\\d{3}-\\d{2}$' } } },
    });
    assert.equal(safe.status, 201, JSON.stringify(safe.body));
    assert.equal((await c.request('POST', 'trigger', { event_type: 'regex.safe', data: { cpf: '123.456.789-09' } })).status, 202);
    const wrong = await c.request('POST', 'trigger', { event_type: 'regex.safe', data: { cpf: '12345678909' } });
    assert.equal(wrong.status, 422);
  });
});
