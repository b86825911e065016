/**
 * A ledger migrated by a newer Carteiro (schema_migrations holds a version past this code's newest
 * migration file) is refused at start, with both versions named, and nothing is applied.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import pino from 'pino';
import { testEnv, dropSchema } from '../support/carteiro.ts';
import { loadConfig } from '../../src/config/config.ts';
import { openLedger } from '../../src/ledger/connection.ts';
import { listMigrations, migrate, SchemaNewerThanCodeError } from '../../src/ledger/migrate.ts';
import { compose } from '../../src/runtime/compose.ts';

test('start refuses a schema migrated past the newest migration this code has', async () => {
  const env = testEnv();
  const config = loadConfig(env);
  const newest = listMigrations().at(-1);
  assert.ok(newest);
  try {
    const ledger = await openLedger(config, { poolSize: 1 });
    try {
      await migrate(ledger.sql, ledger.schema);
      await ledger.sql.unsafe(`INSERT INTO "${ledger.schema}".schema_migrations (version, name) VALUES ('9999', '9999_from_the_future')`);
    } finally {
      await ledger.close();
    }

    const expected = (err: unknown) => {
      assert.ok(err instanceof SchemaNewerThanCodeError, `a SchemaNewerThanCodeError, not ${String(err)}`);
      assert.equal(err.schemaVersion, '9999');
      assert.equal(err.codeVersion, newest.version);
      assert.match(
        err.message,
        new RegExp(`at migration 9999 \\(9999_from_the_future\\), newer than this Carteiro's newest, ${newest.version} \\(${newest.name}\\)`),
      );
      return true;
    };
    await assert.rejects(compose(config, 'all', { log: pino({ level: 'silent' }) }), expected);

    // Refused before anything ran: the future row is still the last one, nothing was added after it.
    const ledger2 = await openLedger(config, { poolSize: 1 });
    try {
      await assert.rejects(migrate(ledger2.sql, ledger2.schema), expected);
      const rows = await ledger2.sql.unsafe<{ version: string }[]>(`SELECT version FROM "${ledger2.schema}".schema_migrations ORDER BY version DESC LIMIT 2`);
      assert.deepEqual(
        rows.map((r) => r.version),
        ['9999', newest.version],
      );
    } finally {
      await ledger2.close();
    }
  } finally {
    await dropSchema(env);
    if (env.CARTEIRO_DATA_DIR) rmSync(env.CARTEIRO_DATA_DIR, { recursive: true, force: true });
  }
});
