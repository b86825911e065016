/**
 * Scale-out as it is deployed: two `carteiro api` and two `carteiro worker` processes, real OS
 * processes spawned here, on one Postgres (a fresh schema) and one Redis, delivering to a real HTTP
 * receiver on loopback. What the processes share, and only through Postgres and Redis:
 *
 *   - the ledger and its queue (Postgres): events accepted by either API are delivered by either
 *     worker, once per (event, endpoint), each attempt recorded once;
 *   - idempotency (Postgres): one Idempotency-Key is one event, whichever API hears it;
 *   - ingress rate limits (Redis): one budget per key across the APIs;
 *   - egress rate limits (Redis): one rate per endpoint across the workers;
 *   - background jobs (BullMQ on Redis): a replay enqueued on one API runs on a worker;
 *   - live updates (Redis pub/sub): a stream on one API sees what the other API and the workers did;
 *   - and losing a process: an API stopped (SIGTERM) or a worker killed (SIGKILL) loses nothing.
 *
 * Which worker made an attempt: the ledger records it in webhook_dispatches.leased_by while the
 * attempt is in flight and clears it when the outcome is recorded, so this test adds, in its own
 * schema only, a row trigger that copies (dispatch, attempt number, leased_by) at every claim into
 * `mp_claims`. The worker id ends in the worker's pid, and worker_heartbeats maps it to the pid too.
 *
 * Needs DATABASE_URL and REDIS_URL (separate processes cannot share an embedded database or an
 * in-process bus); skips without them. Every process is started here and stopped by its own pid.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import postgres from 'postgres';
import { Redis } from 'ioredis';
import pino from 'pino';
import { DATABASE_URL, REDIS_URL, TEST_ADMIN_KEY, dropSchema, eventually, testEnv, uniqueSchema } from '../support/carteiro.ts';
import { maxInAnySecond, startReceiver, verifiesWithStandardWebhooks, type Received, type TestReceiver } from '../support/receiver.ts';
import { spawnCarteiro, type CarteiroProcess } from '../support/processes.ts';
import { exited, exitOf, stopProcess } from '../support/outage.ts';
import { openSse } from '../dashboard/sse-client.ts';
import { loadConfig } from '../../src/config/config.ts';
import { listMigrations } from '../../src/ledger/migrate.ts';
import { connectRedis } from '../../src/coordination/redis.ts';
import { createEgressGate, slotPlan } from '../../src/worker/egress-rate-limit.ts';

const skip = DATABASE_URL && REDIS_URL ? false : 'needs DATABASE_URL and REDIS_URL (several processes share one Postgres and one Redis)';

// ---------------------------------------------------------------------------------------------
// Processes

type Api = { name: string; proc: CarteiroProcess; url: string };
type Worker = { name: string; proc: CarteiroProcess; workerId: string };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

// ---------------------------------------------------------------------------------------------
// HTTP to the APIs (real sockets, as a client or load balancer would)

type Answer = { status: number; body: any; headers: Headers };

async function call(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await fetch(`${base}/api/webhooks/${path}`, {
    method,
    headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON: keep the text */
  }
  return { status: res.status, body: parsed, headers: res.headers };
}

/** Runs `tasks` with at most `concurrency` at once. */
async function pool(tasks: (() => Promise<void>)[], concurrency: number): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < tasks.length) await (tasks[next++] as () => Promise<void>)();
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Events, routes and what the receiver saw

/** Which receiver paths (endpoints) each event type reaches; agent.created fans out to two. */
const ROUTES: Record<string, string[]> = {
  'agent.created': ['/one', '/two'],
  'conversation.message.added': ['/one'],
  'payment.confirmed': ['/two'],
};
const TYPES = Object.keys(ROUTES);

function dataFor(type: string, tag: string): Record<string, unknown> {
  switch (type) {
    case 'agent.created':
      return { agent_id: `ag-${tag}`, name: 'Agente de Vendas' };
    case 'conversation.message.added':
      return { conversation_id: `c-${tag}`, content: 'olá' };
    case 'payment.confirmed':
      return { payment_id: `p-${tag}`, amount: 99.9, currency: 'BRL' };
    default:
      throw new Error(`no data for ${type}`);
  }
}

const pairKey = (path: string, webhookId: string) => `${path} ${webhookId}`;

/** Receiver requests grouped by (path, webhook-id), i.e. by (endpoint, event). */
function byPair(received: Received[]): Map<string, Received[]> {
  const m = new Map<string, Received[]>();
  for (const r of received) {
    const k = pairKey(r.path, r.headers['webhook-id'] as string);
    m.set(k, [...(m.get(k) ?? []), r]);
  }
  return m;
}

// ---------------------------------------------------------------------------------------------

describe('several API and worker processes on one Postgres and one Redis', { skip }, () => {
  const schema = uniqueSchema('mp');
  const env = testEnv({
    schema,
    env: {
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      // Few connections per process: four processes (and other suites) share one Postgres.
      CARTEIRO_DB_POOL_SIZE: '5',
      // Small claims, so a burst of work is spread over both workers rather than taken in one claim.
      CARTEIRO_WORKER_CONCURRENCY: '16',
      CARTEIRO_WORKER_BATCH_SIZE: '16',
      // Each worker holds a known number of requests to one endpoint while the receiver holds them:
      // its whole concurrency (the adaptive per-endpoint limit starts there) and no parking, which
      // would free slots and let a worker claim more while the kill test counts what it holds.
      CARTEIRO_ENDPOINT_START_IN_FLIGHT: '16',
      CARTEIRO_WORKER_PARK_AFTER_MS: '60000',
      // A lease outlives the slowest attempt (timeout 4 s) and expires soon after a worker is killed.
      WEBHOOK_TIMEOUT_MS: '4000',
      CARTEIRO_LEASE_MS: '6000',
      // A small ingress budget per organization key (the admin key, used for the bulk of the
      // traffic, is not limited): 2 a second plus 10 per 10 s.
      CARTEIRO_INGRESS_RATE_PER_SECOND: '2',
      CARTEIRO_INGRESS_BURST: '10',
    },
  });
  const procs: CarteiroProcess[] = [];
  let sql: postgres.Sql;
  let receiver: TestReceiver;
  let A: Api;
  let B: Api;
  let W1: Worker;
  let W2: Worker;
  const secrets = new Map<string, string>(); // receiver path → endpoint secret

  async function startApi(name: string): Promise<Api> {
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const proc = spawnCarteiro('api', { ...env, HOST: '127.0.0.1', PORT: String(port) });
      procs.push(proc);
      const url = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 90_000;
      while (!exited(proc) && Date.now() < deadline) {
        const up = await fetch(`${url}/api/webhooks/health`, { signal: AbortSignal.timeout(3_000) }).then(
          (r) => r.status === 200,
          () => false,
        );
        if (up) return { name, proc, url };
        await new Promise((r) => setTimeout(r, 100));
      }
      // Another program may have taken the free port in between: try another one, twice.
      if (exited(proc) && /EADDRINUSE/.test(proc.output()) && attempt < 3) continue;
      await stopProcess(proc);
      throw new Error(`carteiro api ${name} did not come up:\n${proc.output()}`);
    }
  }

  async function startWorker(name: string): Promise<Worker> {
    const proc = spawnCarteiro('worker', env);
    procs.push(proc);
    const deadline = Date.now() + 90_000;
    while (!exited(proc) && Date.now() < deadline) {
      // Fails until the schema exists: the processes migrate it as they start.
      const rows = await sql<{ worker_id: string }[]>`SELECT worker_id FROM worker_heartbeats WHERE pid = ${proc.pid}`.catch(() => []);
      if (rows[0]) return { name, proc, workerId: rows[0].worker_id };
      await new Promise((r) => setTimeout(r, 100));
    }
    await stopProcess(proc);
    throw new Error(`carteiro worker ${name} gave no heartbeat:\n${proc.output()}`);
  }

  /** Which worker made each recorded attempt of these events: the last claim of that attempt number. */
  async function attemptsByWorker(eventIds: string[], path?: string): Promise<Map<string, number>> {
    const url = path ? receiver.url + path : null;
    const rows = await sql<{ worker_id: string | null; n: number }[]>`
      SELECT c.worker_id, count(*)::int AS n
      FROM webhook_deliveries d
      LEFT JOIN LATERAL (
        SELECT worker_id FROM mp_claims c WHERE c.dispatch_id = d.dispatch_id AND c.attempt = d.attempt_number ORDER BY c.n DESC LIMIT 1
      ) c ON true
      WHERE d.webhook_event_id = ANY(${eventIds}::uuid[])
        AND (${url}::text IS NULL OR d.webhook_endpoint_id IN (SELECT id FROM webhook_endpoints WHERE url = ${url}::text))
      GROUP BY c.worker_id`;
    return new Map(rows.map((r) => [r.worker_id ?? '(unknown)', r.n]));
  }

  /** Waits until every dispatch of these events succeeded; returns them with their recorded attempts. */
  async function settledDispatches(eventIds: string[], timeoutMs = 60_000) {
    type Row = { id: string; event_id: string; status: string; attempts: number; rows: number; successes: number; numbers: number[] };
    return eventually(
      async () => {
        const rows = await sql<Row[]>`
        SELECT d.id, d.webhook_event_id AS event_id, d.status, d.attempts,
               count(a.id)::int AS rows, count(a.id) FILTER (WHERE a.success)::int AS successes,
               coalesce(array_agg(a.attempt_number ORDER BY a.attempt_number) FILTER (WHERE a.id IS NOT NULL), '{}') AS numbers
        FROM webhook_dispatches d LEFT JOIN webhook_deliveries a ON a.dispatch_id = d.id
        WHERE d.webhook_event_id = ANY(${eventIds}::uuid[])
        GROUP BY d.id`;
        return rows.length > 0 && rows.every((r) => r.status === 'succeeded') ? rows : null;
      },
      { timeoutMs, intervalMs: 200, what: `every dispatch of ${eventIds.length} events to succeed` },
    );
  }

  function assertSigned(list: Received[]): void {
    for (const r of list) {
      const secret = secrets.get(r.path);
      assert.ok(secret, `a delivery to an unknown path ${r.path}`);
      assert.ok(verifiesWithStandardWebhooks(secret, r), `signature of ${r.path} ${r.headers['webhook-id']}`);
      assert.equal(JSON.parse(r.body).id, r.headers['webhook-id'], 'the body names the event the webhook-id names');
    }
  }

  before(
    async () => {
      receiver = await startReceiver();
      sql = postgres(DATABASE_URL as string, {
        max: 3,
        onnotice: () => {},
        connection: { search_path: `${schema},public`, application_name: 'carteiro-multi-process-test' },
      });
      // All four at once, on a schema that does not exist yet: they migrate it together (serialised
      // by the migration lock) and come up.
      [A, B, W1, W2] = (await Promise.all([startApi('A'), startApi('B'), startWorker('W1'), startWorker('W2')])) as [Api, Api, Worker, Worker];

      await sql.unsafe(`
      CREATE TABLE mp_claims (n bigserial PRIMARY KEY, dispatch_id uuid NOT NULL, attempt int NOT NULL, worker_id text NOT NULL,
                              at timestamptz NOT NULL DEFAULT clock_timestamp());
      CREATE FUNCTION mp_log_claim() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO "${schema}".mp_claims (dispatch_id, attempt, worker_id) VALUES (NEW.id, NEW.attempts, NEW.leased_by);
        RETURN NULL;
      END $$;
      CREATE TRIGGER mp_log_claim AFTER UPDATE ON webhook_dispatches FOR EACH ROW
        WHEN (NEW.status = 'in_flight' AND OLD.status IS DISTINCT FROM 'in_flight') EXECUTE FUNCTION mp_log_claim();`);

      for (const path of ['/one', '/two']) {
        const events = TYPES.filter((t) => ROUTES[t]?.includes(path));
        const res = await call(A.url, 'POST', 'endpoints', { name: `receiver ${path}`, url: `${receiver.url}${path}`, events });
        assert.equal(res.status, 201, JSON.stringify(res.body));
        secrets.set(path, res.body.secret);
      }
    },
    { timeout: 180_000 },
  );

  after(
    async () => {
      await Promise.all(procs.map((p) => stopProcess(p)));
      await receiver?.close();
      await sql?.end({ timeout: 5 });
      await dropSchema(env);
      // This schema's keys only (queue, limiter counters): the schema name is random and in every key.
      const redis = new Redis(REDIS_URL as string, { maxRetriesPerRequest: 1, lazyConnect: true });
      try {
        await redis.connect();
        let cursor = '0';
        do {
          const [next, keys] = await redis.scan(cursor, 'MATCH', `*${schema}*`, 'COUNT', 1000);
          cursor = next;
          if (keys.length) await redis.del(...keys);
        } while (cursor !== '0');
      } catch {
        /* best effort */
      } finally {
        redis.disconnect();
      }
    },
    { timeout: 60_000 },
  );

  test('four processes booted at once on a fresh schema; each API sees both workers and Redis', async () => {
    assert.notEqual(W1.workerId, W2.workerId);
    assert.ok(W1.workerId.endsWith(`-${W1.proc.pid}`) && W2.workerId.endsWith(`-${W2.proc.pid}`));
    for (const api of [A, B]) {
      const health = await call(api.url, 'GET', 'health');
      assert.equal(health.status, 200);
      assert.equal(health.body.services.redis, 'healthy', `${api.name}: ${JSON.stringify(health.body)}`);
      assert.equal(health.body.services.webhook_manager, 'healthy');
      const stats = await call(api.url, 'GET', 'stats');
      assert.equal(stats.body.workers, 2, `${api.name} counts both workers`);
    }
    // Each migration applied once (by whichever process took the migration lock first).
    const applied = await sql<{ version: string }[]>`SELECT version FROM schema_migrations ORDER BY version`;
    assert.deepEqual(
      applied.map((r) => r.version),
      listMigrations().map((m) => m.version),
    );
  });

  test('events sent alternately to both APIs are all delivered, once per endpoint, by both workers', { timeout: 180_000 }, async (t) => {
    const expected = new Map<string, string[]>(); // event id → receiver paths
    const acceptedBy = new Map<string, number>([
      ['A', 0],
      ['B', 0],
    ]);
    const apis = [A, B];
    const accept = (api: Api, results: { event_id: string; duplicate: boolean }[], types: string[]) => {
      results.forEach((r, i) => {
        assert.equal(r.duplicate, false);
        expected.set(r.event_id, ROUTES[types[i] as string] as string[]);
      });
      acceptedBy.set(api.name, (acceptedBy.get(api.name) ?? 0) + results.length);
    };
    const tasks: (() => Promise<void>)[] = [];
    // 120 single events through POST /trigger, alternating APIs and types.
    for (let i = 0; i < 120; i++) {
      const api = apis[i % 2] as Api;
      const type = TYPES[i % TYPES.length] as string;
      tasks.push(async () => {
        const res = await call(api.url, 'POST', 'trigger', { event_type: type, data: dataFor(type, `single-${i}`) });
        assert.equal(res.status, 202, `${api.name}: ${JSON.stringify(res.body)}`);
        accept(api, [res.body], [type]);
      });
    }
    // 150 in six batches of 25 through POST /events/batch.
    for (let b = 0; b < 6; b++) {
      const api = apis[b % 2] as Api;
      const types = Array.from({ length: 25 }, (_, j) => TYPES[(b + j) % TYPES.length] as string);
      tasks.push(async () => {
        const res = await call(api.url, 'POST', 'events/batch', {
          events: types.map((type, j) => ({ event_type: type, data: dataFor(type, `batch-${b}-${j}`) })),
        });
        assert.equal(res.status, 202, `${api.name}: ${JSON.stringify(res.body)}`);
        accept(api, res.body.events, types);
      });
    }
    // 30 through the seed's per-type route.
    for (let i = 0; i < 30; i++) {
      const api = apis[i % 2] as Api;
      tasks.push(async () => {
        const res = await call(api.url, 'POST', 'events/agent-created', dataFor('agent.created', `seed-route-${i}`));
        assert.equal(res.status, 202, `${api.name}: ${JSON.stringify(res.body)}`);
        accept(api, [res.body], ['agent.created']);
      });
    }
    // Interleave the kinds of request, then send them eight at a time.
    const order = tasks.map((_, i) => i).sort((x, y) => (x % 7) - (y % 7) || x - y);
    await pool(
      order.map((i) => tasks[i] as () => Promise<void>),
      8,
    );

    const ids = [...expected.keys()];
    assert.equal(ids.length, 300);
    const wanted = new Set([...expected].flatMap(([id, paths]) => paths.map((p) => pairKey(p, id))));
    const fannedOut = [...expected.values()].filter((paths) => paths.length === 2).length;
    assert.ok(fannedOut >= 100, `${fannedOut} events fanned out to both endpoints`);
    assert.equal(wanted.size, 300 + fannedOut);
    await eventually(
      () => {
        const seen = byPair(receiver.received);
        return [...wanted].every((k) => seen.has(k));
      },
      { timeoutMs: 90_000, intervalMs: 100, what: 'every (event, endpoint) delivered' },
    );

    const mine = receiver.received.filter((r) => expected.has(r.headers['webhook-id'] as string));
    assertSigned(mine);
    const pairs = byPair(mine);
    assert.deepEqual(
      [...pairs.keys()].filter((k) => !wanted.has(k)),
      [],
      'nothing went to an endpoint not subscribed to it',
    );
    const duplicates = [...pairs.values()].reduce((n, list) => n + list.length - 1, 0);
    assert.equal(duplicates, 0, 'with healthy workers, each (event, endpoint) is delivered exactly once');

    // The ledger: every dispatch succeeded on its first attempt, recorded exactly once.
    const dispatches = await settledDispatches(ids);
    assert.equal(dispatches.length, wanted.size);
    for (const d of dispatches)
      assert.deepEqual(
        { attempts: d.attempts, rows: d.rows, successes: d.successes, numbers: d.numbers },
        { attempts: 1, rows: 1, successes: 1, numbers: [1] },
        `dispatch ${d.id}`,
      );
    const [events] = await sql<{ completed: number }[]>`
      SELECT count(*) FILTER (WHERE status = 'completed')::int AS completed FROM webhook_events WHERE id = ANY(${ids}::uuid[])`;
    assert.equal(events?.completed, 300);

    // Shared work: both APIs accepted events, and both workers made attempts.
    const byWorker = await attemptsByWorker(ids);
    t.diagnostic(
      `accepted: A ${acceptedBy.get('A')}, B ${acceptedBy.get('B')}; attempts: W1 ${byWorker.get(W1.workerId) ?? 0}, W2 ${byWorker.get(W2.workerId) ?? 0}`,
    );
    assert.ok((acceptedBy.get('A') ?? 0) >= 100 && (acceptedBy.get('B') ?? 0) >= 100, 'both APIs accepted events');
    assert.deepEqual([...byWorker.keys()].sort(), [W1.workerId, W2.workerId].sort(), 'attempts were made by our two workers, and by both');
    assert.equal(
      [...byWorker.values()].reduce((a, n) => a + n, 0),
      wanted.size,
    );
  });

  test('an Idempotency-Key is one event whichever API hears it, one after the other or both at once', async () => {
    // One after the other: A stores it, B returns A's event.
    const data = dataFor('conversation.message.added', 'idem-seq');
    const first = await call(A.url, 'POST', 'trigger', { event_type: 'conversation.message.added', data }, { 'idempotency-key': 'mp-order-42' });
    const second = await call(B.url, 'POST', 'trigger', { event_type: 'conversation.message.added', data }, { 'idempotency-key': 'mp-order-42' });
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    assert.equal(first.body.duplicate, false);
    assert.equal(second.body.duplicate, true);
    assert.equal(second.body.event_id, first.body.event_id);

    // Both at once, ten keys: each pair gets one event, stored by exactly one of the two requests.
    const keys = Array.from({ length: 10 }, (_, i) => `mp-race-${i}`);
    const answers = await Promise.all(
      keys.map((key, i) =>
        Promise.all(
          [A, B].map((api) =>
            call(
              api.url,
              'POST',
              'trigger',
              { event_type: 'conversation.message.added', data: dataFor('conversation.message.added', `idem-race-${i}`) },
              { 'idempotency-key': key },
            ),
          ),
        ),
      ),
    );
    for (const [a, b] of answers as [Answer, Answer][]) {
      assert.equal(a.status, 202);
      assert.equal(b.status, 202);
      assert.equal(a.body.event_id, b.body.event_id);
      assert.equal([a.body.duplicate, b.body.duplicate].filter((d) => d === false).length, 1, 'one of the two stored it');
    }
    const allKeys = ['mp-order-42', ...keys];
    const rows = await sql<{ idempotency_key: string; n: number }[]>`
      SELECT idempotency_key, count(*)::int AS n FROM webhook_events WHERE idempotency_key = ANY(${allKeys}) GROUP BY 1`;
    assert.equal(rows.length, 11);
    assert.ok(rows.every((r) => r.n === 1));

    // And each is delivered once.
    const ids = [first.body.event_id as string, ...answers.map(([a]) => a!.body.event_id as string)];
    await eventually(() => ids.every((id) => byPair(receiver.received).has(pairKey('/one', id))), { what: 'the idempotent events delivered' });
    const dispatches = await settledDispatches(ids);
    assert.equal(dispatches.length, 11);
    assert.ok(dispatches.every((d) => d.attempts === 1 && d.rows === 1));
    assert.equal(receiver.received.filter((r) => ids.includes(r.headers['webhook-id'] as string)).length, 11);
  });

  test('a bulk replay enqueued on API A runs on a worker (BullMQ on Redis), watched from API B', { timeout: 120_000 }, async () => {
    // The payment.confirmed events of the first test, all completed: replayed to /two under their own webhook-ids.
    const [{ n: payments } = { n: 0 }] = await sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM webhook_events WHERE event_type = 'payment.confirmed' AND status = 'completed'`;
    assert.ok(payments >= 50, `payments ${payments}`);
    const before = receiver.received.length;
    const res = await call(A.url, 'POST', 'replay', { status: 'completed', event_type: 'payment.confirmed' });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const job = await eventually(
      async () => {
        const j = await call(B.url, 'GET', `jobs/${res.body.job_id}`);
        return j.body?.state === 'completed' || j.body?.state === 'failed' ? j.body : null;
      },
      { timeoutMs: 60_000, intervalMs: 200, what: 'the replay job to finish' },
    );
    assert.equal(job.state, 'completed', `job error: ${job.error}`);
    assert.deepEqual(job.result, { events: payments, dispatches: payments });
    await eventually(() => receiver.received.length - before >= payments, { timeoutMs: 60_000, what: 'the replayed deliveries' });
    const replayed = receiver.received.slice(before);
    assert.ok(replayed.every((r) => r.path === '/two'));
    assertSigned(replayed);
    const ids = [...new Set(replayed.map((r) => r.headers['webhook-id'] as string))];
    assert.equal(ids.length, payments, 'each replayed once, under its first webhook-id');
    // The second round is a second attempt of the same dispatch, and both are in the attempt log.
    const dispatches = await settledDispatches(ids);
    assert.ok(dispatches.every((d) => d.attempts === 2 && d.rows === 2 && d.successes === 2 && d.numbers.join() === '1,2'));
  });

  test('the ingress rate limit is one budget per key across both APIs, and a key revoked on one API stops working on the other', {
    timeout: 120_000,
  }, async (t) => {
    const makeOrg = async (name: string) => {
      const org = await call(A.url, 'POST', 'organizations', { name });
      assert.equal(org.status, 201);
      const key = await call(A.url, 'POST', `organizations/${org.body.id}/keys`, { name: `${name} key` });
      assert.equal(key.status, 201);
      return { id: org.body.id as string, key: key.body.key as string, keyId: key.body.id as string };
    };
    const limited = await makeOrg('Shared budget');
    // 20 requests at each API at once. One shared budget: 2 a second + 10 per 10 s, about 12 in all
    // (2 more for every further second the burst takes); separate per-process budgets would give 24+.
    const started = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        call((i % 2 ? B : A).url, 'GET', 'endpoints', undefined, { authorization: `Bearer ${limited.key}` }).then((r) => ({ api: i % 2 ? 'B' : 'A', ...r })),
      ),
    );
    const seconds = Math.ceil((Date.now() - started) / 1000);
    const ok = answers.filter((r) => r.status === 200);
    const limitedAnswers = answers.filter((r) => r.status === 429);
    t.diagnostic(
      `in ${Date.now() - started} ms: ${ok.length} served (A ${ok.filter((r) => r.api === 'A').length}, B ${ok.filter((r) => r.api === 'B').length}), ${limitedAnswers.length} limited`,
    );
    assert.equal(ok.length + limitedAnswers.length, 40, `other statuses: ${answers.map((r) => r.status).join(' ')}`);
    assert.ok(ok.length >= 10, `served ${ok.length}`);
    const bound = Math.min(10 + 2 * (seconds + 1), 20);
    assert.ok(ok.length <= bound, `served ${ok.length} > ${bound}: the APIs counted separately`);
    for (const api of ['A', 'B']) {
      const refused = limitedAnswers.find((r) => r.api === api);
      assert.ok(refused, `${api} refused some`);
      assert.equal(refused.body.code, 'CARTEIRO_RATE_LIMITED');
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    }

    // Revocation: B has the key cached; it notices the revocation made through A within its cache TTL (5 s).
    const revoked = await makeOrg('Revoked');
    const asRevoked = { authorization: `Bearer ${revoked.key}` };
    assert.equal((await call(A.url, 'GET', 'endpoints', undefined, asRevoked)).status, 200);
    assert.equal((await call(B.url, 'GET', 'endpoints', undefined, asRevoked)).status, 200);
    assert.equal((await call(A.url, 'DELETE', `organizations/${revoked.id}/keys/${revoked.keyId}`)).status, 200);
    assert.equal((await call(A.url, 'GET', 'endpoints', undefined, asRevoked)).status, 401, 'at once on the API that revoked it');
    const revokedAt = Date.now();
    await eventually(async () => (await call(B.url, 'GET', 'endpoints', undefined, asRevoked)).status === 401, {
      intervalMs: 500,
      what: 'API B to refuse the revoked key',
    });
    t.diagnostic(`API B refused the revoked key after ${Date.now() - revokedAt} ms`);
  });

  test('the egress rate limit of an endpoint is one budget across both workers, kept in Redis', { timeout: 120_000 }, async (t) => {
    // Twice a worker's claim (16), so both workers hold some of the endpoint's deliveries at once.
    const rate = 8;
    const n = 32;
    const { slotMs } = slotPlan(rate);
    const ep = await call(B.url, 'POST', 'endpoints', {
      name: 'limited',
      url: `${receiver.url}/limited`,
      events: ['onboarding.completed'],
      rate_limit_per_second: rate,
    });
    assert.equal(ep.status, 201);
    secrets.set('/limited', ep.body.secret);

    // A third party on the same Redis budget (the gate the workers use, same keys) takes every slot
    // from before the events exist until both workers have claimed some of them (1.5 s at least).
    // Workers that count in Redis must all wait for the end of it; one counting on its own would
    // deliver at once.
    const redis = connectRedis(REDIS_URL as string);
    t.after(() => redis.disconnect());
    await eventually(() => redis.status === 'ready', { what: 'redis ready' });
    let clock = 0;
    const thief = createEgressGate({ redis, keyPrefix: `${loadConfig(env).redis.prefix}:${schema}:egress`, log: pino({ level: 'silent' }), now: () => clock });
    let ids: string[] = [];
    const claimants = async () =>
      ids.length === 0
        ? new Map<string, number>()
        : new Map(
            (
              await sql<{ worker_id: string; n: number }[]>`
      SELECT worker_id, count(*)::int AS n FROM mp_claims
      WHERE dispatch_id IN (SELECT id FROM webhook_dispatches WHERE webhook_event_id = ANY(${ids}::uuid[]))
      GROUP BY worker_id`
            ).map((r) => [r.worker_id, r.n]),
          );
    let takenThrough = 0; // the end of the last slot taken
    let firstPass = () => {};
    const heldOnce = new Promise<void>((r) => (firstPass = r));
    const holding = (async () => {
      const started = Date.now();
      for (;;) {
        // A slot's counter lives about a second, so slots are taken ~0.75 s ahead, over and over.
        const current = Math.floor(Date.now() / slotMs);
        for (let s = current; s <= current + 6; s++) {
          clock = s * slotMs;
          await thief.reserve(ep.body.id, rate);
          takenThrough = Math.max(takenThrough, (s + 1) * slotMs);
        }
        firstPass();
        const claimed = await claimants();
        const both = (claimed.get(W1.workerId) ?? 0) > 0 && (claimed.get(W2.workerId) ?? 0) > 0;
        if ((both && Date.now() - started >= 1_500) || Date.now() - started > 20_000) return claimed;
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    await heldOnce;
    const batch = await call(A.url, 'POST', 'events/batch', {
      events: Array.from({ length: n }, (_, i) => ({ event_type: 'onboarding.completed', data: { user_id: `u-limited-${i}` } })),
    });
    assert.equal(batch.status, 202);
    ids = batch.body.events.map((e: { event_id: string }) => e.event_id) as string[];
    // Claims made while the budget was taken: each was handed back without an attempt.
    const held = await holding;
    const blockEnd = takenThrough;

    await eventually(() => receiver.received.filter((r) => r.path === '/limited').length >= n, {
      timeoutMs: 60_000,
      intervalMs: 100,
      what: `${n} deliveries to the limited endpoint`,
    });
    const got = receiver.received.filter((r) => r.path === '/limited');
    assertSigned(got);
    const times = got.map((r) => r.at);
    const first = Math.min(...times);
    const spanMs = Math.max(...times) - first;
    const busiest = maxInAnySecond(times);
    // The receiver can see the last request before its worker has recorded the attempt (outcomes
    // are written in batches): count attempts once every dispatch has settled.
    const dispatches = await settledDispatches(ids);
    const byWorker = await attemptsByWorker(ids, '/limited');
    t.diagnostic(
      `claims held back while the budget was taken: W1 ${held.get(W1.workerId) ?? 0}, W2 ${held.get(W2.workerId) ?? 0}; first delivery ${first - blockEnd} ms after the block; ` +
        `then ${n} at ${rate}/s over ${spanMs} ms, at most ${busiest} in any second; delivered by W1 ${byWorker.get(W1.workerId) ?? 0}, W2 ${byWorker.get(W2.workerId) ?? 0}`,
    );
    // Both workers claimed the endpoint's deliveries during the block, and neither sent one.
    assert.ok((held.get(W1.workerId) ?? 0) > 0 && (held.get(W2.workerId) ?? 0) > 0, 'both workers tried during the block');
    assert.ok(first >= blockEnd - 50, `a delivery ${blockEnd - first} ms before the shared budget was free again`);
    // Then, together, no faster than the rate: one 125 ms slot per request, so 32 requests span 31
    // slots (3.9 s). (Who sends after the block varies, so the split is only reported: whichever
    // worker claims due rows first takes all of them.)
    assert.equal(
      [...byWorker.values()].reduce((a, k) => a + k, 0),
      n,
    );
    assert.ok(spanMs >= 3_000, `${n} delivered in ${spanMs} ms: faster than ${rate}/s`);
    assert.ok(busiest <= rate + 2, `${busiest} in one second`);
    assert.equal(new Set(got.map((r) => r.headers['webhook-id'])).size, n);
    assert.equal(got.length, n, 'none twice');
    // Waiting for the limit spent no attempt.
    assert.ok(dispatches.every((d) => d.attempts === 1 && d.rows === 1 && d.successes === 1));
  });

  test('a live stream on API A sees events accepted through API B and deliveries recorded by the workers', { timeout: 120_000 }, async () => {
    const org = await call(A.url, 'POST', 'organizations', { name: 'Live' });
    const key = await call(A.url, 'POST', `organizations/${org.body.id}/keys`, { name: 'live key' });
    const auth = { authorization: `Bearer ${key.body.key}` };
    const ep = await call(B.url, 'POST', 'endpoints', { name: 'live', url: `${receiver.url}/live`, events: ['agent.created'] }, auth);
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    secrets.set('/live', ep.body.secret);

    const stream = await openSse(`${A.url}/api/webhooks/live`, auth);
    try {
      assert.equal(stream.status, 200);
      await stream.waitFor((f) => f.event === 'ready', 10_000, 'the ready frame');
      // A's subscription to the Redis channel completes shortly after the stream opens: an event sent
      // before that is not announced to it, so send one (through B only) until one is seen.
      const sent: string[] = [];
      for (let i = 0; ; i++) {
        const res = await call(B.url, 'POST', 'trigger', { event_type: 'agent.created', data: dataFor('agent.created', `live-${i}`) }, auth);
        if (res.status === 202) sent.push(res.body.event_id);
        else assert.equal(res.status, 429, JSON.stringify(res.body)); // the organization's own small ingress budget
        const seen = await stream
          .waitFor((f) => f.event === 'events.accepted', 1_500, 'events.accepted')
          .then(
            () => true,
            () => false,
          );
        if (seen) break;
        assert.ok(i < 15, 'API A never announced an event accepted by API B');
      }
      const accepted = stream.frames.find((f) => f.event === 'events.accepted');
      assert.equal(accepted?.data.organization_id, org.body.id);
      assert.ok(accepted?.data.count >= 1);
      // deliveries.recorded comes from a worker process, through Redis too.
      const recorded = await stream.waitFor((f) => f.event === 'deliveries.recorded' && f.data.delivered >= 1, 30_000, 'deliveries.recorded');
      assert.equal(recorded.data.organization_id, org.body.id);
      await eventually(() => sent.every((id) => byPair(receiver.received).has(pairKey('/live', id))), { what: 'the live events delivered' });
      // The stream carried only this organization's messages.
      assert.ok(stream.frames.filter((f) => f.event !== 'ready' && f.data).every((f) => f.data.organization_id === org.body.id));
    } finally {
      stream.abort();
    }
  });

  test('API A stopped with SIGTERM: API B keeps serving, and a client that fails over with the same Idempotency-Key loses and doubles nothing', {
    timeout: 120_000,
  }, async (t) => {
    const results = new Map<string, { eventId: string; answeredBy: string; failedOver: boolean }>();
    const send = async (i: number) => {
      const key = `mp-failover-${i}`;
      const body = { event_type: 'agent.created', data: dataFor('agent.created', `failover-${i}`) };
      const order = i % 2 === 0 ? [A, B, B, B] : [B, B, B];
      for (const [n, api] of order.entries()) {
        const res = await call(api.url, 'POST', 'trigger', body, { 'idempotency-key': key }).catch(() => null);
        if (res?.status === 202) {
          results.set(key, { eventId: res.body.event_id, answeredBy: api.name, failedOver: n > 0 });
          return;
        }
        // A closing API answers 503; a closed one refuses the connection: try the other.
        if (res) assert.equal(res.status, 503, `${api.name}: ${res.status} ${JSON.stringify(res.body)}`);
        await new Promise((r) => setTimeout(r, 100 * n));
      }
      throw new Error(`${key}: no API accepted it`);
    };
    const range = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => from + k);
    // Before, while A shuts down, and after it has gone.
    await pool(
      range(0, 20).map((i) => () => send(i)),
      4,
    );
    const aExit = exitOf(A.proc);
    assert.ok(A.proc.child.kill('SIGTERM'));
    await pool(
      range(20, 40).map((i) => () => send(i)),
      4,
    );
    const { code, signal } = await aExit;
    assert.equal(code, 0, `API A exits cleanly (signal ${signal}):\n${A.proc.output()}`);
    await pool(
      range(40, 60).map((i) => () => send(i)),
      4,
    );

    const refused = await fetch(`${A.url}/api/webhooks/health`).then(
      () => false,
      () => true,
    );
    assert.ok(refused, 'API A is gone');
    assert.equal((await call(B.url, 'GET', 'health')).status, 200, 'API B serves');

    const list = [...results.values()];
    t.diagnostic(
      `answered by A ${list.filter((r) => r.answeredBy === 'A').length}, by B ${list.filter((r) => r.answeredBy === 'B').length}, failed over ${list.filter((r) => r.failedOver).length}`,
    );
    assert.equal(results.size, 60);
    assert.ok(
      list.some((r) => r.answeredBy === 'A'),
      'A served before it stopped',
    );
    assert.ok(list.filter((r) => r.failedOver).length >= 10, 'requests meant for A were served by B');
    const ids = list.map((r) => r.eventId);
    assert.equal(new Set(ids).size, 60);
    const [stored] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_events WHERE idempotency_key LIKE 'mp-failover-%'`;
    assert.equal(stored?.n, 60, 'one event per key');

    const wanted = ids.flatMap((id) => ['/one', '/two'].map((p) => pairKey(p, id)));
    await eventually(
      () => {
        const seen = byPair(receiver.received);
        return wanted.every((k) => seen.has(k));
      },
      { timeoutMs: 60_000, intervalMs: 100, what: 'every failover event delivered to both endpoints' },
    );
    const dispatches = await settledDispatches(ids);
    assert.equal(dispatches.length, 120);
    assert.ok(dispatches.every((d) => d.attempts === 1 && d.rows === 1));
    const mine = receiver.received.filter((r) => ids.includes(r.headers['webhook-id'] as string));
    assertSigned(mine);
    assert.equal(mine.length, 120, 'each delivered once to each endpoint');
  });

  test("worker W1 killed with SIGKILL mid-delivery: W2 delivers everything, re-sending W1's unfinished work under the same webhook-id", {
    timeout: 150_000,
  }, async (t) => {
    // Hold every request at the receiver, so both workers fill up with in-flight deliveries.
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    receiver.respond(async () => {
      await gate;
      return { status: 200 };
    });
    const from = receiver.received.length;
    const ids: string[] = [];
    for (let b = 0; b < 2; b++) {
      const res = await call(B.url, 'POST', 'events/batch', {
        events: Array.from({ length: 100 }, (_, j) => ({
          event_type: 'conversation.message.added',
          data: dataFor('conversation.message.added', `kill-${b}-${j}`),
        })),
      });
      assert.equal(res.status, 202);
      ids.push(...res.body.events.map((e: { event_id: string }) => e.event_id));
    }
    // Both workers holding deliveries of this phase, and every one they hold already at the receiver.
    // W1 need not be full: other endpoints' or earlier phases' deliveries share the workers' slots,
    // and an earlier phase's timeouts may have lowered the endpoint's adaptive limit in W1. What W1
    // held is read after the kill, and what it had sent by then must be sent again by W2.
    await eventually(
      async () => {
        const rows = await sql<{ webhook_event_id: string; leased_by: string }[]>`
        SELECT webhook_event_id, leased_by FROM webhook_dispatches
        WHERE status = 'in_flight' AND leased_by IN (${W1.workerId}, ${W2.workerId}) AND webhook_event_id = ANY(${ids}::uuid[])`;
        const atReceiver = new Set(receiver.received.slice(from).map((r) => r.headers['webhook-id']));
        return (
          rows.some((r) => r.leased_by === W1.workerId) &&
          rows.some((r) => r.leased_by === W2.workerId) &&
          rows.every((r) => atReceiver.has(r.webhook_event_id))
        );
      },
      { intervalMs: 50, what: 'both workers holding deliveries of this phase, each at the receiver' },
    );

    const w1Exit = exitOf(W1.proc);
    assert.ok(W1.proc.child.kill('SIGKILL'));
    assert.equal((await w1Exit).signal, 'SIGKILL');
    // What W1 held when it died: its leases stand until they run out. Those it had sent are at the
    // receiver now (it may have claimed a few more between the check and the kill, unsent).
    const sentBeforeKill = new Set(receiver.received.slice(from).map((r) => r.headers['webhook-id'] as string));
    const held = await sql<{ webhook_event_id: string }[]>`
      SELECT webhook_event_id FROM webhook_dispatches WHERE status = 'in_flight' AND leased_by = ${W1.workerId} AND webhook_event_id = ANY(${ids}::uuid[])`;
    const w1Events = new Set(held.map((r) => r.webhook_event_id));
    const w1Sent = [...w1Events].filter((id) => sentBeforeKill.has(id));
    assert.ok(w1Sent.length > 0, 'W1 held deliveries it had sent');
    receiver.respond(() => ({ status: 200 }));
    release();

    // W2 finishes everything, including what W1 held once its leases run out.
    await eventually(
      () => {
        const seen = byPair(receiver.received.slice(from));
        return ids.every((id) => seen.has(pairKey('/one', id))) && w1Sent.every((id) => (seen.get(pairKey('/one', id))?.length ?? 0) >= 2);
      },
      { timeoutMs: 60_000, intervalMs: 100, what: "every event delivered, W1's unfinished ones again" },
    );
    const dispatches = await settledDispatches(ids, 30_000);
    assert.equal(dispatches.length, ids.length);
    for (const d of dispatches) {
      assert.equal(d.successes, 1, `dispatch ${d.id}: one successful attempt`);
      assert.equal(new Set(d.numbers).size, d.numbers.length, `dispatch ${d.id}: no attempt recorded twice`);
      assert.ok(d.rows <= d.attempts && d.numbers.every((k) => k >= 1 && k <= d.attempts), `dispatch ${d.id}: attempts ${d.attempts}, rows ${d.numbers}`);
      // W1's attempts were never recorded (it died holding them); W2's second attempt was.
      if (w1Events.has(d.event_id)) assert.deepEqual({ attempts: d.attempts, numbers: d.numbers }, { attempts: 2, numbers: [2] }, `dispatch ${d.id}`);
    }
    const byWorker = await attemptsByWorker([...w1Events]);
    assert.deepEqual([...byWorker], [[W2.workerId, w1Events.size]], 'W2 made the recorded attempt of everything W1 held');

    const phase = receiver.received.slice(from);
    assertSigned(phase);
    const pairs = byPair(phase);
    const doubled = [...pairs].filter(([, list]) => list.length > 1).map(([k]) => k.split(' ')[1] as string);
    t.diagnostic(`${phase.length} requests for ${ids.length} events; ${doubled.length} sent twice (W1 held ${w1Events.size})`);
    // Duplicates only ever carry the same webhook-id, and only for what W1 held (or a W2 retry).
    assert.ok(
      w1Sent.every((id) => doubled.includes(id)),
      'what W1 had sent was sent again',
    );
    assert.equal(pairs.size, ids.length);
    assert.ok(doubled.length <= w1Events.size + 16, `${doubled.length} sent twice`);

    // The survivor keeps going: new work is delivered too.
    const late = await call(B.url, 'POST', 'trigger', { event_type: 'conversation.message.added', data: dataFor('conversation.message.added', 'after-kill') });
    assert.equal(late.status, 202);
    await eventually(() => byPair(receiver.received).has(pairKey('/one', late.body.event_id)), { what: 'a new event delivered by W2' });
    assert.equal(W2.proc.child.exitCode, null, 'W2 still running');
  });
});
