/** The CLI's one-shot commands: migrate is idempotent, sql prints every migration, bad config is named. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testEnv, dropSchema } from '../support/carteiro.ts';
import { copyTemplateInto } from '../support/pglite-template.ts';
import { listMigrations } from '../../src/ledger/migrate.ts';

const run = promisify(execFile);
/** The `carteiro` command as installed (bin/carteiro.js: the compile cache, then src/cli/main.ts). */
const MAIN = fileURLToPath(new URL('../../bin/carteiro.js', import.meta.url));
const carteiro = (args: string[], env: Record<string, string>) =>
  // The deadline only stops a hang: a first `migrate` on a new embedded folder creates the database too.
  run(process.execPath, [MAIN, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 170_000 });

test('carteiro migrate applies every migration once, then reports the schema up to date', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'carteiro-cli-'));
  // On PGlite, a database just created (a copy: creating one takes seconds) with nothing migrated yet.
  const env = testEnv({ dataDir });
  if (env.CARTEIRO_DATA_DIR) copyTemplateInto(dataDir, 'blank');
  t.after(async () => {
    await dropSchema(env);
    rmSync(dataDir, { recursive: true, force: true });
  });
  const first = await carteiro(['migrate'], env);
  assert.match(
    first.stdout,
    new RegExp(
      `applied: ${listMigrations()
        .map((m) => m.name)
        .join(', ')}`,
    ),
  );
  const second = await carteiro(['migrate'], env);
  assert.match(second.stdout, /is up to date/);
});

test('carteiro sql prints one script with every migration, guarded so it can run twice', async () => {
  const { stdout } = await carteiro(['sql'], { CARTEIRO_SCHEMA: 'app_webhooks' });
  assert.match(stdout, /CREATE SCHEMA IF NOT EXISTS "app_webhooks"/);
  for (const m of listMigrations()) assert.ok(stdout.includes(`-- ${m.name}`), m.name);
  assert.match(stdout, /^BEGIN;$/m);
  assert.match(stdout, /^COMMIT;$/m);
});

test('an invalid configuration stops the start with a message naming the variable', async () => {
  await assert.rejects(carteiro(['migrate'], { PORT: 'eighty', CARTEIRO_DATA_DIR: tmpdir() }), (err: { stderr: string; code: number }) => {
    assert.match(err.stderr, /PORT/);
    assert.equal(err.code, 1);
    return true;
  });
  await assert.rejects(carteiro(['worker'], { DATABASE_URL: 'postgres://127.0.0.1:1/none' }), (err: { stderr: string }) => {
    assert.match(err.stderr, /CARTEIRO_ADMIN_KEY and CARTEIRO_ENCRYPTION_KEYS must be set/);
    return true;
  });
  await assert.rejects(carteiro(['migrate'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' }), (err: { stderr: string }) => {
    assert.match(err.stderr, /cannot reach the ledger \(Postgres at 127\.0\.0\.1:1\)/);
    return true;
  });
});
