/**
 * The embedded default, always (CI included): `carteiro start` with no DATABASE_URL and no keys runs
 * on PGlite in a data folder, prints a generated admin key, and delivers signed webhooks over HTTP.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnCarteiro } from '../support/processes.ts';
import { startReceiver, verifiesWithSeed, verifiesWithStandardWebhooks } from '../support/receiver.ts';
import { eventually, FAST_RETRY_ENV } from '../support/carteiro.ts';

test('one command starts the service on PGlite, and the README walkthrough works over real HTTP', async (t) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'carteiro-embedded-'));
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  let failFirst = true;
  const receiver = await startReceiver(() => {
    if (failFirst) {
      failFirst = false;
      return { status: 500 };
    }
    return { status: 200 };
  });
  t.after(() => receiver.close());

  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const proc = spawnCarteiro('start', {
    ...FAST_RETRY_ENV,
    CARTEIRO_DATA_DIR: dataDir,
    PORT: String(port),
    LOG_LEVEL: 'warn',
    // As on a person's terminal (piped, the default is JSON logs, where the banner is one line without the key).
    CARTEIRO_LOG_FORMAT: 'pretty',
    CARTEIRO_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
  });
  t.after(() => proc.kill('SIGKILL'));
  const base = `http://127.0.0.1:${port}/api/webhooks`;
  // A first start creates the database and runs every migration: the deadline only stops a hang.
  await eventually(async () => (await fetch(`${base}/health`)).ok, { timeoutMs: 170_000, what: `the service to answer (${proc.output()})` });

  // The generated admin key is printed in the banner and kept in the data folder.
  const key = readFileSync(join(dataDir, 'admin-key'), 'utf8').trim();
  assert.match(proc.output(), new RegExp(`Admin key: ${key}`));
  const auth = { authorization: `Bearer ${key}`, 'content-type': 'application/json' };

  const epRes = await fetch(`${base}/endpoints`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ name: 'local', url: `${receiver.url}/hook`, events: ['user.*'] }),
  });
  assert.equal(epRes.status, 201);
  const ep = (await epRes.json()) as { id: string; secret: string };

  const evRes = await fetch(`${base}/events/user-registered`, {
    method: 'POST',
    headers: auth,
    body: JSON.stringify({ user_id: 'test-user-123', email: 'test@example.com', name: 'Test User' }),
  });
  assert.equal(evRes.status, 202);
  const { event_id } = (await evRes.json()) as { event_id: string };

  const [first, second] = await receiver.waitFor(2);
  assert.equal(first!.headers['webhook-id'], event_id);
  assert.equal(second!.headers['webhook-id'], event_id, 'the retry carries the same webhook-id');
  assert.ok(verifiesWithSeed(ep.secret, second!));
  assert.ok(verifiesWithStandardWebhooks(ep.secret, second!));

  const status = await eventually(
    async () => {
      const s = (await (await fetch(`${base}/events/${event_id}/status`, { headers: auth })).json()) as { status: string; retry_count: number };
      return s.status === 'completed' ? s : null;
    },
    { what: 'completed' },
  );
  assert.equal(status.retry_count, 1);
  const health = (await (await fetch(`${base}/health`)).json()) as { ledger: string; services: { redis: string } };
  assert.equal(health.ledger, 'pglite');
  assert.equal(health.services.redis, 'not_configured');

  // SIGTERM: a clean, graceful exit.
  const code = await proc.kill('SIGTERM');
  assert.equal(code, 0, proc.output());
});
