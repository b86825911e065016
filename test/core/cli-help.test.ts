/**
 * `--help` and `-h` on every command and action print its usage and do nothing else: exit code 0, no
 * server (the process ends by itself, no port answers), no data folder made, so no migration run and
 * no SQL printed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, runCarteiro } from '../support/processes.ts';

const COMMANDS = [
  ['start'],
  ['api'],
  ['worker'],
  ['migrate'],
  ['sql'],
  ['n8n'],
  ['n8n', 'seed'],
  ['n8n', 'discover'],
  ['n8n', 'list'],
  ['triggers'],
  ['triggers', 'add'],
  ['triggers', 'remove'],
  ['triggers', 'list'],
  ['triggers', 'install-seed'],
  ['triggers', 'uninstall-seed'],
  ['keys'],
  ['keys', 'reencrypt'],
];

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('--help and -h on every command print its usage and do nothing else', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'carteiro-help-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const dataDir = join(base, 'data');
  const port = await freePort();
  const env = { CARTEIRO_DATA_DIR: dataDir, PORT: String(port), LOG_LEVEL: 'warn' };
  const cases = COMMANDS.flatMap((command) => ['--help', '-h'].map((flag) => [...command, flag]));
  // Two at a time: each is a whole Node process.
  const queue = [...cases];
  const failures: string[] = [];
  await Promise.all(
    [0, 1].map(async () => {
      for (let args = queue.shift(); args; args = queue.shift()) {
        const r = await runCarteiro(args, env, { timeoutMs: 60_000 });
        const name = `carteiro ${args.join(' ')}`;
        if (r.timedOut) failures.push(`${name}: still running after 60 s (${r.stdout.slice(0, 200)})`);
        else if (r.code !== 0) failures.push(`${name}: exit code ${r.code} (${r.stderr.slice(0, 300)})`);
        else if (!/usage:/i.test(r.stdout)) failures.push(`${name}: no usage printed (${r.stdout.slice(0, 200)})`);
        else if (/CREATE|applied:|Admin key|API:/.test(r.stdout)) failures.push(`${name}: did more than print help (${r.stdout.slice(0, 200)})`);
        if (existsSync(dataDir)) {
          failures.push(`${name}: created the data folder`);
          rmSync(dataDir, { recursive: true, force: true });
        }
      }
    }),
  );
  assert.equal(await portAnswers(port), false, 'no command left a server listening');
  assert.deepEqual(failures, []);
});

test('an unknown option to a server command is a usage error, not a start', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'carteiro-help-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const dataDir = join(base, 'data');
  const r = await runCarteiro(['start', '--prot', '8080'], { CARTEIRO_DATA_DIR: dataDir, PORT: String(await freePort()) }, { timeoutMs: 60_000 });
  assert.equal(r.timedOut, false, 'it did not start a server');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /usage:/);
  assert.equal(existsSync(dataDir), false);
});

test('a malformed CARTEIRO_ENCRYPTION_KEYS stops start-up with its message, not a stack trace', async (t) => {
  const base = mkdtempSync(join(tmpdir(), 'carteiro-keys-'));
  t.after(() => rmSync(base, { recursive: true, force: true }));
  const port = await freePort();
  const run = await runCarteiro(
    ['start'],
    { CARTEIRO_DATA_DIR: join(base, 'data'), PORT: String(port), LOG_LEVEL: 'warn', CARTEIRO_ENCRYPTION_KEYS: 'not-a-keyring' },
    { timeoutMs: 120_000 },
  );
  assert.equal(run.timedOut, false);
  assert.equal(run.code, 1);
  assert.match(run.stderr, /encryption key/);
  assert.doesNotMatch(run.stderr, /^\s+at /m, run.stderr);
  assert.doesNotMatch(run.stderr, /not-a-keyring/, 'the configured value is never echoed');
});
