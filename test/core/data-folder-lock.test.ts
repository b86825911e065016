/**
 * The embedded data folder belongs to one process at a time. PGlite does not refuse a second instance
 * on the same folder (two of them corrupt it, or abort), so Carteiro locks the folder: while a server
 * runs, every other command that needs the ledger there refuses, naming the holder's PID, and leaves the
 * server (and its socket) alone. A lock left by a killed process is taken over.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runCarteiro, spawnCarteiro } from '../support/processes.ts';
import { eventually } from '../support/carteiro.ts';
import { TEMPLATE_SCHEMA, copyTemplateInto } from '../support/pglite-template.ts';
import { LOCK_FILE } from '../../src/ledger/data-folder-lock.ts';

test("a second command on a running server's data folder is refused with the holder's PID; a dead holder's lock is taken over", async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'carteiro-lock-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  // A migrated ledger to start with: this test is about the lock, not a first start.
  copyTemplateInto(dataDir);
  const port = await freePort();
  const env = { CARTEIRO_DATA_DIR: dataDir, CARTEIRO_SCHEMA: TEMPLATE_SCHEMA, LOG_LEVEL: 'warn', CARTEIRO_QUIET: 'true' };
  const server = spawnCarteiro('start', { ...env, PORT: String(port) });
  t.after(() => server.kill('SIGKILL'));
  const health = `http://127.0.0.1:${port}/api/webhooks/health`;
  await eventually(async () => (await fetch(health)).ok, { timeoutMs: 60_000, what: `the server to answer (${server.output()})` });
  const socket = join(dataDir, 'run', '.s.PGSQL.5432');
  assert.ok(existsSync(socket));

  const otherPort = await freePort();
  for (const args of [['n8n', 'list'], ['n8n', 'seed'], ['n8n', 'discover'], ['migrate'], ['triggers', 'list'], ['keys', 'reencrypt'], ['start']]) {
    const r = await runCarteiro(args, { ...env, PORT: String(otherPort) }, { timeoutMs: 60_000 });
    const name = `carteiro ${args.join(' ')}`;
    assert.equal(r.timedOut, false, `${name} ran on beside the server: ${r.stdout}${r.stderr}`);
    assert.equal(r.code, 1, `${name}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`in use by .*PID ${server.pid}`), name);
    assert.doesNotMatch(r.stderr, /Aborted|RuntimeError|at .*\.ts:\d+/, `${name}: a message, not a crash`);
    if (args[0] === 'n8n') assert.match(r.stderr, /The running server does the same: (GET|POST) \/api\/webhooks\/n8n\//, name);
    assert.ok(existsSync(socket), `${name} left the server's socket in place`);
    assert.ok((await fetch(health)).ok, `the server still answers after ${name}`);
  }

  // kill -9: no clean-up, the lock names a dead PID. The next command takes it over.
  server.child.kill('SIGKILL');
  await server.kill();
  const after = await runCarteiro(['n8n', 'list'], env, { timeoutMs: 60_000 });
  assert.equal(after.code, 0, after.stdout + after.stderr);
  assert.match(after.stdout, /no n8n workflows/);
});

test('a new data folder is private to its owner, like a Postgres data directory', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'carteiro-lock-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const dataDir = join(base, 'data');
  // A first run: PGlite creates its database, then every migration runs (slow on a busy machine).
  const r = await runCarteiro(['migrate'], { CARTEIRO_DATA_DIR: dataDir, LOG_LEVEL: 'warn' }, { timeoutMs: 170_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(statSync(dataDir).mode & 0o077, 0, `mode ${(statSync(dataDir).mode & 0o777).toString(8)}: the database files and keys are readable by others`);
  assert.equal(existsSync(join(dataDir, LOCK_FILE)), false, 'the lock is gone once the command ends');
});
