/**
 * Shutdown and outages, with `carteiro api` and `carteiro worker` as real processes on the shared
 * Postgres (a fresh schema each):
 *
 *   - SIGTERM while receivers hang: the worker cuts the requests still in flight at its grace
 *     deadline (CARTEIRO_SHUTDOWN_GRACE_MS) and records each as a failed attempt, "cancelled at
 *     shutdown", before its ledger connection closes; they are retried, not lost and not re-sent
 *     blind when a lease runs out;
 *   - a worker started while Redis is down delivers at once (limits fall back to local ones, jobs
 *     wait for Redis), on a private redis-server (port 6390..6399) that is started only afterwards.
 *
 * (Every route answering 503 within the commit deadline while Postgres is down needs a Postgres the
 * test may stop: test/scale/postgres-restart.test.ts.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { DATABASE_URL, dropSchema, eventually, testEnv, uniqueSchema } from '../support/carteiro.ts';
import { startReceiver, type Reply, type TestReceiver } from '../support/receiver.ts';
import type { CarteiroProcess } from '../support/processes.ts';
import { call, exitOf, freePort, startApiProcess, startWorkerProcess, stopProcess, triggerUntilAccepted } from '../support/outage.ts';
import { redisServerVersion, startRedisServer, type OwnRedis } from '../../bench/lib/redis-server.ts';

const HANG_MS = 120_000;

function sqlFor(schema: string): postgres.Sql {
  return postgres(DATABASE_URL as string, { max: 2, onnotice: () => {}, connection: { search_path: `${schema},public` } });
}

describe('SIGTERM while receivers hang', { skip: DATABASE_URL ? false : 'needs DATABASE_URL (separate processes share one Postgres)' }, () => {
  const schema = uniqueSchema('shut');
  const env = testEnv({
    schema,
    env: {
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      CARTEIRO_DB_POOL_SIZE: '4',
      // Receivers may take 20 s; shutdown waits 1 s for them.
      WEBHOOK_TIMEOUT_MS: '20000',
      CARTEIRO_SHUTDOWN_GRACE_MS: '1000',
      // Long enough that a lost outcome would not be retried within the test by its lease running out.
      CARTEIRO_LEASE_MS: '120000',
    },
  });
  delete env.REDIS_URL;
  const procs: CarteiroProcess[] = [];
  let sql: postgres.Sql;
  let receiver: TestReceiver;
  let answer: () => Reply | Promise<Reply> = () => new Promise<Reply>(() => {});
  let api: { proc: CarteiroProcess; url: string };

  before(async () => {
    receiver = await startReceiver(() => answer());
    api = await startApiProcess(env, HANG_MS);
    procs.push(api.proc);
    sql = sqlFor(schema);
  });

  after(async () => {
    await Promise.all(procs.map((p) => stopProcess(p)));
    await receiver?.close();
    await sql?.end({ timeout: 2 });
    await dropSchema(env);
  });

  test('in-flight deliveries are cut at the grace deadline and recorded as failed attempts before the ledger closes, then retried', {
    timeout: 240_000,
  }, async () => {
    const worker = await startWorkerProcess(env, sql, HANG_MS);
    procs.push(worker);
    const ep = await call(api.url, 'POST', 'endpoints', { name: 'hangs', url: `${receiver.url}/hang`, events: ['agent.created'] });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await triggerUntilAccepted(api.url, `${schema}-${i}`, { agent_id: `a-${i}`, name: 'Agente' }));
    await eventually(() => receiver.received.length >= 5, { timeoutMs: HANG_MS, what: 'five requests held by the receiver' });

    const exit = exitOf(worker);
    worker.child.kill('SIGTERM');
    const { code } = await exit;
    assert.equal(code, 0, worker.output().slice(-2_000));

    const attempts = await sql<{ webhook_event_id: string; success: boolean; error: string }[]>`
      SELECT webhook_event_id, success, error FROM webhook_deliveries WHERE webhook_event_id = ANY(${ids}::uuid[])`;
    assert.equal(attempts.length, 5, `each attempt recorded before the worker stopped; log:\n${worker.output().slice(-2_000)}`);
    for (const a of attempts) {
      assert.equal(a.success, false);
      assert.match(a.error, /cancelled at shutdown/);
    }
    const dispatches = await sql<{ status: string; leased_by: string | null }[]>`
      SELECT status, leased_by FROM webhook_dispatches WHERE webhook_event_id = ANY(${ids}::uuid[])`;
    assert.deepEqual(
      dispatches.map((d) => [d.status, d.leased_by]),
      ids.map(() => ['pending', null]),
      'handed back for a retry',
    );

    // The next worker retries them (no lease to wait for).
    answer = () => ({ status: 200 });
    const next = await startWorkerProcess(env, sql, HANG_MS);
    procs.push(next);
    await eventually(
      async () => {
        const [row] = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM webhook_dispatches WHERE webhook_event_id = ANY(${ids}::uuid[]) AND status = 'succeeded'`;
        return row?.n === ids.length;
      },
      { timeoutMs: HANG_MS, what: 'the cut deliveries retried and delivered' },
    );
  });
});

describe('a worker started while Redis is down', {
  skip: !DATABASE_URL ? 'needs DATABASE_URL' : !redisServerVersion() ? 'needs redis-server on PATH' : false,
}, () => {
  const schema = uniqueSchema('nored');
  let redisPort: number;
  let env: Record<string, string>;
  const procs: CarteiroProcess[] = [];
  let sql: postgres.Sql;
  let receiver: TestReceiver;
  let redis: OwnRedis | null = null;

  before(async () => {
    // A port of our own where nothing listens yet: Redis is "down" until this test starts it there.
    redisPort = await freePort(6390, 6399);
    env = testEnv({
      schema,
      env: { LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn', CARTEIRO_DB_POOL_SIZE: '4', REDIS_URL: `redis://127.0.0.1:${redisPort}` },
    });
    receiver = await startReceiver(() => ({ status: 200 }));
    sql = sqlFor(schema);
  });

  after(async () => {
    await Promise.all(procs.map((p) => stopProcess(p)));
    await receiver?.close();
    await sql?.end({ timeout: 2 });
    await dropSchema({ ...env, REDIS_URL: '' });
    await redis?.stop();
  });

  test('delivers at once, with local limits; Redis coming back is seen by /health', { timeout: 240_000 }, async () => {
    const api = await startApiProcess(env, HANG_MS);
    procs.push(api.proc);
    const worker = await startWorkerProcess(env, sql, HANG_MS);
    procs.push(worker);
    // A rate-limited endpoint: its limit is kept in Redis, and falls back to a local one without it.
    const ep = await call(api.url, 'POST', 'endpoints', { name: 'limited', url: `${receiver.url}/r`, events: ['agent.created'], rate_limit_per_second: 50 });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) ids.push(await triggerUntilAccepted(api.url, `${schema}-${i}`, { agent_id: `r-${i}`, name: 'Agente' }));
    await eventually(
      async () => {
        const [row] = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM webhook_dispatches WHERE webhook_event_id = ANY(${ids}::uuid[]) AND status = 'succeeded'`;
        return row?.n === ids.length;
      },
      { timeoutMs: HANG_MS, what: 'every event delivered while Redis is down' },
    );
    const health = await call(api.url, 'GET', 'health');
    assert.equal(health.body.services.redis, 'unhealthy');

    redis = await startRedisServer(redisPort);
    await eventually(async () => (await call(api.url, 'GET', 'health')).body?.services?.redis === 'healthy', {
      timeoutMs: HANG_MS,
      what: 'Redis healthy again',
    });
  });
});
