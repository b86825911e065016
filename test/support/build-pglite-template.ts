/**
 * Builds a migrated PGlite data folder: `node build-pglite-template.ts <folder> <schema>`, or with `-`
 * for the schema a blank one, a database just created (see pglite-template.ts).
 */
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../src/config/config.ts';
import { openLedger } from '../../src/ledger/connection.ts';
import { migrate } from '../../src/ledger/migrate.ts';

const [dir, schema] = process.argv.slice(2);
if (!dir || !schema) throw new Error('usage: build-pglite-template.ts <folder> <schema | ->');
if (schema === '-') {
  const { PGlite } = await import('@electric-sql/pglite');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const db = await PGlite.create(join(dir, 'pglite'));
  await db.close();
  process.exit(0);
}
const ledger = await openLedger(loadConfig({ CARTEIRO_DATA_DIR: dir, CARTEIRO_SCHEMA: schema, LOG_LEVEL: 'silent' }));
try {
  await migrate(ledger.sql, ledger.schema);
} finally {
  // Closed before anyone copies it: PGlite writes everything out on close.
  await ledger.close();
}
// Only the database is the template: no socket folder, no lock.
rmSync(join(dir, 'run'), { recursive: true, force: true });
