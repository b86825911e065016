/**
 * Postgres restarts under a running Carteiro: `carteiro api` and `carteiro worker` as real processes
 * on a private Postgres cluster (initdb into a temporary folder, port 5442..5449) that the test stops
 * (`pg_ctl stop -m fast`) and starts again at chosen points of the worker's cycle: while it claims,
 * while it sends (the receiver holds the requests), while it records, and while idle. Afterwards every
 * accepted event is delivered and its attempt recorded, and the worker is the same process (a small
 * supervisor here would restart one that exited; none may need to).
 *
 * The points are reached through locks held from a second session, not through timing: a SHARE lock
 * on webhook_dispatches holds claims (and records) at their first statement, a FOR NO KEY UPDATE row
 * lock on the endpoint holds a record at its counter update. The test waits until pg_stat_activity
 * shows the worker waiting there, then stops Postgres.
 *
 * Also: a worker that has due work and makes no progress is reported stalled by /health and /stats,
 * replaces its ledger pool, then exits for its supervisor; and while Postgres is down every route
 * answers 503 with Retry-After within the commit deadline.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import postgres from 'postgres';
import { eventually, testEnv, uniqueSchema } from '../support/carteiro.ts';
import { startReceiver, type Reply, type TestReceiver } from '../support/receiver.ts';
import type { CarteiroProcess } from '../support/processes.ts';
import {
  call,
  exitOf,
  exited,
  privatePostgresSkip,
  startApiProcess,
  startOwnPostgres,
  startWorkerProcess,
  stopProcess,
  triggerUntilAccepted,
  workerLockWaits,
} from '../support/outage.ts';
import { COMMIT_ANSWER_TIMEOUT_MS } from '../../src/ledger/event-intake.ts';
import type { PrivatePostgres } from '../../bench/lib/private-postgres.ts';

const skip = privatePostgresSkip();
// The worker gives a ledger call a third of this before replacing its pool: on a loaded machine a
// fresh pool after a restart needs seconds, and a tighter window replaced it again and again.
const STALL_MS = 15_000;
/** Generous: a hang fails the test, slowness on a busy machine does not. */
const HANG_MS = 120_000;
const DOWN_MS = 3_000;
const trace = (what: string) => process.env.TEST_OUTPUT_DIR && console.log(`# ${new Date().toISOString().slice(11, 23)} ${what}`);

describe('a worker and an API through Postgres restarts', { skip }, () => {
  const schema = uniqueSchema('pgr');
  let pg: PrivatePostgres;
  let env: Record<string, string>;
  let sql: postgres.Sql;
  let receiver: TestReceiver;
  let api: { proc: CarteiroProcess; url: string };
  let worker: CarteiroProcess;
  let endpointId: string;
  const procs: CarteiroProcess[] = [];
  /** Workers that exited on their own, and were restarted (as systemd or Kubernetes would). */
  const unexpectedExits: { pid: number; code: number | null; signal: string | null }[] = [];
  const exitOutputs = new Map<number, string>();
  let supervising = true;
  let seq = 0;

  /** The receiver's answer; a test may swap it (to hold requests). */
  let answer: () => Reply | Promise<Reply> = () => ({ status: 200 });

  function supervise(w: CarteiroProcess): void {
    const dir = process.env.TEST_OUTPUT_DIR;
    if (dir) {
      w.child.stdout?.on('data', (d) => appendFileSync(join(dir, `worker-${w.pid}.full.log`), d));
      w.child.stderr?.on('data', (d) => appendFileSync(join(dir, `worker-${w.pid}.full.log`), d));
    }
    void exitOf(w).then(async ({ code, signal }) => {
      if (!supervising || w !== worker) return;
      unexpectedExits.push({ pid: w.pid, code, signal });
      exitOutputs.set(w.pid, w.output().slice(-3_000));
      if (process.env.TEST_OUTPUT_DIR) writeFileSync(join(process.env.TEST_OUTPUT_DIR, `worker-${w.pid}.log`), w.output());
      worker = await startWorkerProcess(env, sql, HANG_MS);
      procs.push(worker);
      supervise(worker);
    });
  }

  /**
   * The test's own postgres.js client is as exposed to the client's restart bugs as Carteiro's
   * (a query that never settles after the server went away): the checks use a fresh one afterwards.
   */
  function connectChecks(): postgres.Sql {
    return postgres(pg.url, { max: 3, onnotice: () => {}, connection: { search_path: `${schema},public` } });
  }

  function startPostgres(): void {
    pg.start();
    const old = sql;
    sql = connectChecks();
    void old.end({ timeout: 0 }).catch(() => {});
  }

  function restartPostgres(downMs = DOWN_MS): Promise<void> {
    pg.stop();
    return new Promise((resolve) =>
      setTimeout(() => {
        startPostgres();
        resolve();
      }, downMs),
    );
  }

  async function sendEvents(n: number): Promise<string[]> {
    const tag = `e${seq++}`;
    const ids: string[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < n) {
          const i = next++;
          ids.push(await triggerUntilAccepted(api.url, `${schema}-${tag}-${i}`, { agent_id: `${tag}-${i}`, name: 'Agente' }, HANG_MS));
        }
      }),
    );
    return ids;
  }

  /** Every event delivered (the receiver saw its webhook-id), its dispatch succeeded, its successful attempt recorded. */
  async function assertAllDelivered(ids: string[]): Promise<void> {
    await eventually(
      async () => {
        const [row] = await sql<{ succeeded: number; recorded: number }[]>`
        SELECT count(*) FILTER (WHERE d.status = 'succeeded')::int AS succeeded,
               count(*) FILTER (WHERE EXISTS (SELECT 1 FROM webhook_deliveries a WHERE a.dispatch_id = d.id AND a.success))::int AS recorded
          FROM webhook_dispatches d WHERE d.webhook_event_id = ANY(${ids}::uuid[])`.catch(() => []);
        return row && row.succeeded === ids.length && row.recorded === ids.length;
      },
      { timeoutMs: HANG_MS, intervalMs: 250, what: `${ids.length} events delivered and recorded` },
    );
    const seen = new Set(receiver.received.map((r) => r.headers['webhook-id']));
    assert.deepEqual(
      ids.filter((id) => !seen.has(id)),
      [],
      'the receiver saw every event',
    );
  }

  function assertSameWorker(pid: number): void {
    assert.deepEqual(unexpectedExits, [], `no worker exited on its own: ${[...exitOutputs.values()].join('\n---\n')}`);
    assert.equal(worker.pid, pid, 'the same worker process');
    assert.equal(exited(worker), false);
  }

  before(async () => {
    pg = await startOwnPostgres();
    env = testEnv({
      schema,
      env: {
        DATABASE_URL: pg.url,
        LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
        CARTEIRO_DB_POOL_SIZE: '5',
        CARTEIRO_WORKER_CONCURRENCY: '16',
        CARTEIRO_WORKER_BATCH_SIZE: '16',
        // Claims pause at 16 unrecorded outcomes: with recording held, the rest stays due (pending).
        CARTEIRO_WORKER_MAX_UNRECORDED: '16',
        WEBHOOK_TIMEOUT_MS: '4000',
        CARTEIRO_LEASE_MS: '8000',
        CARTEIRO_WORKER_STALL_MS: String(STALL_MS),
      },
    });
    // Postgres only: the restart is the fault under test, and delivery must not need Redis anyway.
    delete env.REDIS_URL;
    delete env.CARTEIRO_DATA_DIR;
    sql = connectChecks();
    receiver = await startReceiver(() => answer());
    api = await startApiProcess(env, HANG_MS);
    procs.push(api.proc);
    worker = await startWorkerProcess(env, sql, HANG_MS);
    procs.push(worker);
    supervise(worker);
    const ep = await call(api.url, 'POST', 'endpoints', { name: 'receiver', url: `${receiver.url}/hook`, events: ['agent.created'] });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    endpointId = ep.body.id;
  });

  after(async () => {
    supervising = false;
    await Promise.all(procs.map((p) => stopProcess(p)));
    await receiver?.close();
    await sql?.end({ timeout: 2 }).catch(() => {});
    pg?.destroy();
  });

  test('restarted while idle: the worker delivers what arrives afterwards', { timeout: 240_000 }, async () => {
    const pid = worker.pid;
    await assertAllDelivered(await sendEvents(10));
    await restartPostgres();
    await assertAllDelivered(await sendEvents(50));
    assertSameWorker(pid);
  });

  test('restarted while the worker claims, with work queued: nothing is lost', { timeout: 240_000 }, async () => {
    const pid = worker.pid;
    answer = () => ({ status: 200, delayMs: 50 });
    const before = receiver.received.length;
    const sending = sendEvents(300);
    await eventually(() => receiver.received.length >= before + 30, { timeoutMs: HANG_MS, what: 'the drain under way' });
    // Claims (and records, and new events) wait on this lock at their first statement.
    trace('taking lock');
    const holder = postgres(pg.url, { max: 1, onnotice: () => {} });
    const locked = holder
      .begin(async (tx) => {
        await tx.unsafe(`LOCK TABLE "${schema}".webhook_dispatches IN SHARE MODE`);
        trace('lock held');
        await new Promise(() => {}); // held until Postgres stops
      })
      .catch(() => {});
    trace('lock taken');
    await eventually(async () => (await workerLockWaits(sql)).some((q) => /carteiro: claim/.test(q)), { timeoutMs: HANG_MS, what: 'a claim waiting' });
    trace('claim waiting; restarting');
    await restartPostgres();
    trace('restarted');
    void locked;
    await holder.end({ timeout: 0 }).catch(() => {});
    answer = () => ({ status: 200 });
    await assertAllDelivered(await sending);
    assertSameWorker(pid);
  });

  test('restarted while the worker sends (the receiver holds every request): outcomes are recorded', { timeout: 240_000 }, async () => {
    const pid = worker.pid;
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    answer = () => released.then(() => ({ status: 200 }));
    const before = receiver.received.length;
    const sending = sendEvents(40);
    await eventually(() => receiver.received.length >= before + 16, { timeoutMs: HANG_MS, what: '16 requests held by the receiver' });
    pg.stop();
    // The answers arrive while Postgres is down: they are recorded once it is back.
    release();
    await new Promise((r) => setTimeout(r, DOWN_MS));
    startPostgres();
    answer = () => ({ status: 200 });
    await assertAllDelivered(await sending);
    assertSameWorker(pid);
  });

  test('restarted while the worker records: nothing is lost', { timeout: 240_000 }, async () => {
    const pid = worker.pid;
    // A record updates the endpoint's counters: this row lock holds it there (claims and ingest pass).
    const holder = postgres(pg.url, { max: 1, onnotice: () => {} });
    const locked = holder
      .begin(async (tx) => {
        await tx`SELECT 1 FROM ${tx(schema)}.webhook_endpoints WHERE id = ${endpointId} FOR NO KEY UPDATE`;
        await new Promise(() => {});
      })
      .catch(() => {});
    const ids = await sendEvents(40);
    await eventually(async () => (await workerLockWaits(sql)).some((q) => /webhook_deliveries|webhook_endpoints/.test(q)), {
      timeoutMs: HANG_MS,
      what: 'a record waiting',
    });
    await restartPostgres();
    void locked;
    await holder.end({ timeout: 0 }).catch(() => {});
    await assertAllDelivered(ids);
    assertSameWorker(pid);
  });

  test('while Postgres is down every route answers 503 with Retry-After within the commit deadline', { timeout: 240_000 }, async () => {
    pg.stop();
    try {
      const probes: [string, string, unknown?][] = [
        ['GET', 'events'],
        ['GET', 'endpoints'],
        ['GET', `endpoints/${endpointId}`],
        ['GET', 'stats'],
        ['GET', 'event-types'],
        ['POST', 'trigger', { event_type: 'agent.created', data: { agent_id: 'down', name: 'x' } }],
      ];
      // All at once: each waits out the deadline, and none may wait on another.
      const answers = await Promise.all(
        probes.map(([method, path, body]) => call(api.url, method, path, body, body ? { 'idempotency-key': `${schema}-down-${path}` } : {}, HANG_MS)),
      );
      for (const [i, [method, path]] of probes.entries()) {
        const r = answers[i] as Awaited<ReturnType<typeof call>>;
        assert.equal(r.status, 503, `${method} ${path}: ${JSON.stringify(r.body)}`);
        assert.ok(Number(r.headers.get('retry-after')) > 0, `${method} ${path}: Retry-After`);
        // The deadline plus the time a loaded machine takes to send the answer.
        assert.ok(r.ms < COMMIT_ANSWER_TIMEOUT_MS + 2_000, `${method} ${path} answered in ${Math.round(r.ms)} ms`);
      }
    } finally {
      startPostgres();
    }
    await eventually(async () => (await call(api.url, 'GET', 'events')).status === 200, { timeoutMs: HANG_MS, what: 'the API serving again' });
  });

  test('a worker with due work that neither claims nor records is reported stalled, then exits to be restarted', { timeout: 240_000 }, async () => {
    const stalledPid = worker.pid;
    // Recording held (as a stuck connection would hold it): claims stop at 16 unrecorded, the rest stays due.
    const holder = postgres(pg.url, { max: 1, onnotice: () => {} });
    let unlock!: () => void;
    const unlocked = new Promise<void>((r) => (unlock = r));
    let lockedNow!: () => void;
    const isLocked = new Promise<void>((r) => (lockedNow = r));
    const holding = holder.begin(async (tx) => {
      await tx`SELECT 1 FROM ${tx(schema)}.webhook_endpoints WHERE id = ${endpointId} FOR NO KEY UPDATE`;
      lockedNow();
      await unlocked;
    });
    await isLocked;
    try {
      const ids = await sendEvents(60);
      // Its heartbeat goes on; its progress does not.
      const seen = await eventually(
        async () => {
          const [health, stats] = await Promise.all([call(api.url, 'GET', 'health'), call(api.url, 'GET', 'stats')]);
          return health.body?.services?.webhook_manager === 'stalled' && stats.body?.status === 'stalled' ? { health: health.body, stats: stats.body } : null;
        },
        { timeoutMs: HANG_MS, intervalMs: 500, what: '/health and /stats reporting the worker stalled' },
      );
      assert.equal(seen.health.overall_status, 'degraded');
      assert.ok(seen.stats.stalled_workers >= 1);
      // It replaces its pool, stays stalled, and exits for its supervisor (here: the test).
      await eventually(() => unexpectedExits.some((e) => e.pid === stalledPid), { timeoutMs: HANG_MS, what: 'the stalled worker exiting' });
      assert.equal(unexpectedExits.find((e) => e.pid === stalledPid)?.code, 75);
      unlock();
      await holding;
      await assertAllDelivered(ids);
      await eventually(async () => (await call(api.url, 'GET', 'health')).body?.services?.webhook_manager === 'healthy', {
        timeoutMs: HANG_MS,
        what: 'healthy again',
      });
    } finally {
      unlock();
      await holder.end({ timeout: 1 }).catch(() => {});
    }
  });
});
