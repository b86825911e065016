/**
 * `carteiro sql` (renderMigrationScript): every migration as one script, for `psql -f` or a file in
 * supabase/migrations/ (`supabase db push`). It must apply cleanly to a fresh schema, be a no-op the
 * second time, leave a schema `carteiro migrate` sees as up to date, and give working captures.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { listMigrations, migrate, renderMigrationScript } from '../../src/ledger/migrate.ts';
import { DATABASE_URL, uniqueSchema } from '../support/carteiro.ts';
import { copyTemplateInto } from '../support/pglite-template.ts';
import type { Sql } from '../../src/ledger/connection.ts';

const VERSIONS = listMigrations().map((m) => m.version);

/** What the script must leave behind, checked through any query function. */
async function checkApplied(query: (text: string) => Promise<Record<string, unknown>[]>, schema: string): Promise<void> {
  const versions = (await query(`SELECT version FROM "${schema}".schema_migrations ORDER BY version`)).map((r) => r.version);
  assert.deepEqual(versions, VERSIONS);
  const [fns] =
    await query(`SELECT to_regprocedure('"${schema}".capture_table(regclass,text,text[],text[],uuid,text,text,text,text,text,regprocedure)') IS NOT NULL AS capture,
                                    to_regclass('"${schema}".webhook_events') IS NOT NULL AS events`);
  assert.deepEqual(fns, { capture: true, events: true });
  // Captures work from a script-made schema: a row in a table of another schema becomes an event.
  await query(`CREATE TABLE "${schema}_app".users (id text PRIMARY KEY, email text)`);
  await query(`SELECT * FROM "${schema}".install_seed_triggers('${schema}_app')`);
  await query(`INSERT INTO "${schema}_app".users VALUES ('u1', 'a@example.com')`);
  const [event] = await query(`SELECT event_type, data::text AS data FROM "${schema}".webhook_events`);
  assert.deepEqual(event, { event_type: 'user.registered', data: '{"email": "a@example.com", "user_id": "u1"}' });
}

test('the script applies to a fresh Postgres schema, twice, and migrate then has nothing to do', {
  skip: DATABASE_URL ? false : 'needs DATABASE_URL',
}, async () => {
  const schema = uniqueSchema('sqlscript');
  const sql = postgres(DATABASE_URL as string, { max: 1, onnotice: () => {} }) as unknown as Sql;
  try {
    const script = renderMigrationScript(schema);
    await sql.unsafe(script); // simple protocol, many statements: what psql -f does
    await sql.unsafe(script);
    await sql.unsafe(`CREATE SCHEMA "${schema}_app"`);
    await checkApplied((text) => sql.unsafe(text) as Promise<Record<string, unknown>[]>, schema);
    assert.deepEqual(await migrate(sql, schema), [], 'carteiro migrate sees the schema as up to date');
  } finally {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE; DROP SCHEMA IF EXISTS "${schema}_app" CASCADE`);
    await sql.end();
  }
});

const hasPsql = spawnSync('psql', ['--version']).status === 0;

test('psql -f applies the script file, twice', { skip: !DATABASE_URL ? 'needs DATABASE_URL' : !hasPsql ? 'psql not installed' : false }, async () => {
  const schema = uniqueSchema('psqlscript');
  const dir = mkdtempSync(join(tmpdir(), 'carteiro-sql-'));
  const file = join(dir, '20240101000000_carteiro.sql');
  writeFileSync(file, renderMigrationScript(schema));
  const psql = () =>
    execFileSync('psql', [DATABASE_URL as string, '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const sql = postgres(DATABASE_URL as string, { max: 1, onnotice: () => {} });
  try {
    psql();
    psql();
    const [row] = await sql.unsafe(`SELECT array_agg(version ORDER BY version) AS v FROM "${schema}".schema_migrations`);
    assert.deepEqual(row?.v, VERSIONS);
  } finally {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    await sql.end();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the script applies to a fresh embedded (PGlite) database, twice', { skip: DATABASE_URL ? 'embedded mode only' : false }, async () => {
  const { PGlite } = await import('@electric-sql/pglite');
  // A database just created (a copy of one: creating it takes seconds), nothing of Carteiro's in it.
  const dir = mkdtempSync(join(tmpdir(), 'carteiro-sql-'));
  copyTemplateInto(dir, 'blank');
  const db = await PGlite.create(join(dir, 'pglite'));
  const schema = 'webhooks';
  try {
    const script = renderMigrationScript(schema);
    await db.exec(script);
    await db.exec(script);
    await db.exec(`CREATE SCHEMA "${schema}_app"`);
    await checkApplied(async (text) => (await db.query<Record<string, unknown>>(text)).rows, schema);
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
