/**
 * `carteiro triggers …` end to end against a real ledger (Postgres, or an embedded data folder that
 * only the command opens, as PGlite allows one process per folder).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { openLedger } from '../../src/ledger/connection.ts';
import { migrate } from '../../src/ledger/migrate.ts';
import { runTriggers } from '../../src/cli/triggers-command.ts';
import { dropSchema, testEnv } from '../support/carteiro.ts';
import { appSchemaName, capturedEvents, createSeedTables, dropAppSchema } from './app-tables.ts';
import type { Sql } from '../../src/ledger/connection.ts';

describe('carteiro triggers', () => {
  const env = testEnv();
  const config: Config = loadConfig(env);
  const app = appSchemaName();

  /** Runs the command, returning its exit code and what it printed. */
  async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const code = await runTriggers(config, args, { out: (l) => out.push(l), err: (l) => err.push(l) });
    return { code, out: out.join('\n'), err: err.join('\n') };
  }

  async function withLedger<T>(fn: (sql: Sql) => Promise<T>): Promise<T> {
    const ledger = await openLedger(config, { poolSize: 1 });
    try {
      return await fn(ledger.sql);
    } finally {
      await ledger.close();
    }
  }

  before(async () => {
    await withLedger(async (sql) => {
      await migrate(sql, config.database.schema);
      await createSeedTables(sql, app);
      await sql.unsafe(`CREATE TABLE "${app}".orders (id serial PRIMARY KEY, total numeric, status text)`);
    });
  });
  after(async () => {
    if (env.DATABASE_URL) await withLedger((sql) => dropAppSchema(sql, app));
    await dropSchema(env);
    if (env.CARTEIRO_DATA_DIR) rmSync(env.CARTEIRO_DATA_DIR, { recursive: true, force: true });
  });

  test('install-seed, add, list, capture, remove, uninstall-seed', async () => {
    const seed = await cli('install-seed', '--schema', app);
    assert.equal(seed.code, 0, seed.err);
    assert.match(seed.out, new RegExp(`installed webhook_user_registration on ${app}\\.users`));
    assert.equal(seed.out.split('\n').filter((l) => l.startsWith('installed')).length, 5);

    const add = await cli('add', '--table', 'orders', '--schema', app, '--event', 'order.{op}', '--on', 'insert,update', '--columns', 'id,total');
    assert.equal(add.code, 0, add.err);
    assert.match(add.out, /captured .*orders \(INSERT, UPDATE\) as order\.\{op\}: trigger carteiro_orders_insert_update/);

    const list = await cli('list');
    assert.equal(list.code, 0);
    assert.match(list.out, new RegExp(`${app}\\.orders  carteiro_orders_insert_update  INSERT,UPDATE  → order\\.\\{op\\}  \\[columns id,total\\]`));
    assert.match(list.out, /webhook_integration_connected  INSERT,UPDATE  → seed\.integration/);
    const json = JSON.parse((await cli('list', '--json')).out);
    assert.equal(json.length, 6);

    await withLedger(async (sql) => {
      await sql.unsafe(`INSERT INTO "${app}".orders (total, status) VALUES (10, 'open')`);
      await sql.unsafe(`INSERT INTO "${app}".users (email) VALUES ('cli@example.com')`);
      const events = await capturedEvents(sql);
      assert.deepEqual(
        events.map((e) => e.event_type),
        ['order.created', 'user.registered'],
      );
      assert.deepEqual(events[0]?.data, { id: 1, total: 10 });
    });

    const remove = await cli('remove', '--table', 'orders', '--schema', app);
    assert.deepEqual([remove.code, remove.out], [0, `removed 1 capture(s) from ${app}.orders`]);
    const uninstall = await cli('uninstall-seed', '--schema', app);
    assert.deepEqual([uninstall.code, uninstall.out], [0, 'removed 5 seed trigger(s)']);
    assert.equal((await cli('list')).out, 'no captures');
  });

  test('usage errors exit 2 with the usage; refusals from the ledger exit 1 with the reason', async () => {
    const noEvent = await cli('add', '--table', 'orders');
    assert.equal(noEvent.code, 2);
    assert.match(noEvent.err, /add needs --event[\s\S]*usage:/);
    assert.equal((await cli('frobnicate')).code, 2);
    assert.equal((await cli('add', '--table', 'orders', '--event', 'x.created', '--on', 'truncate')).code, 2);
    assert.equal((await cli('list', '--bogus')).code, 2);

    const missing = await cli('add', '--table', 'nope', '--schema', app, '--event', 'x.created');
    assert.equal(missing.code, 1);
    assert.match(missing.err, /table .*nope not found/);
    const badType = await cli('add', '--table', 'orders', '--schema', app, '--event', 'Order Created');
    assert.equal(badType.code, 1);
    assert.match(badType.err, /dotted lower-case name/);
  });
});
