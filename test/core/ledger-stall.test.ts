/**
 * A ledger that stops answering (Postgres restarting, a lock held too long): every request hears
 * "503, retry" within the commit deadline, including those queued behind the stalled commits, and
 * retries with the same Idempotency-Key store each event once.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKEND, eventually, startCarteiro } from '../support/carteiro.ts';
import { COMMIT_ANSWER_TIMEOUT_MS } from '../../src/ledger/event-intake.ts';
import { lockTable } from '../support/table-lock.ts';

describe('a ledger that stops answering', { skip: BACKEND !== 'postgres' && 'PGlite has one session: nothing else can hold a lock' }, () => {
  test('queued requests are answered 503 with Retry-After by the deadline too, and retries store each event once', async () => {
    const c = await startCarteiro({ env: { CARTEIRO_INGEST_CONCURRENT_COMMITS: '2' } });
    const schema = c.env.CARTEIRO_SCHEMA as string;
    const lock = await lockTable(schema, 'webhook_events');
    try {
      // Two commits run at once and wait on the lock; the other six queue behind them. Timed from
      // the commit alone, the queued ones were answered a deadline or more later.
      const send = (i: number) =>
        c.request('POST', 'trigger', { event_type: 'agent.created', data: { agent_id: `stall-${i}` } }, { 'idempotency-key': `stall-${i}` });
      const t0 = performance.now();
      const stalled = await Promise.all(Array.from({ length: 8 }, (_, i) => send(i).then((r) => ({ ...r, ms: performance.now() - t0 }))));
      await lock.release();

      for (const r of stalled) {
        assert.equal(r.status, 503, JSON.stringify(r.body));
        assert.ok(r.headers['retry-after'], 'a 503 says when to retry');
        // The commit's deadline or the route's answer deadline, whichever fires first: both say "retry".
        assert.ok(['CARTEIRO_LEDGER_UNAVAILABLE', 'CARTEIRO_ANSWER_DEADLINE'].includes(r.body.error?.code ?? r.body.code), JSON.stringify(r.body));
        // Timed from the commit instead, a queued one is answered two deadlines late (10 s or more): the
        // margin is room for a busy machine, not a measure of speed.
        assert.ok(r.ms < COMMIT_ANSWER_TIMEOUT_MS + 4_000, `answered after ${Math.round(r.ms)} ms`);
      }

      const retried = await Promise.all(Array.from({ length: 8 }, (_, i) => send(i)));
      assert.deepEqual(
        retried.map((r) => r.status),
        Array(8).fill(202),
      );
      const [row] = await c.services.ledger.sql<{ events: number; keys: number }[]>`
        SELECT count(*)::int AS events, count(DISTINCT idempotency_key)::int AS keys FROM webhook_events WHERE idempotency_key LIKE 'stall-%'`;
      assert.deepEqual(row, { events: 8, keys: 8 });
    } finally {
      await lock.close();
      await c.stop();
    }
  });

  test('single requests share one commit at a time; a second commit starts only when enough is waiting', async () => {
    const c = await startCarteiro({ env: { CARTEIRO_INGEST_CONCURRENT_COMMITS: '2' } });
    const schema = c.env.CARTEIRO_SCHEMA as string;
    const lock = await lockTable(schema, 'webhook_events');
    try {
      // Commits in flight = Carteiro's event INSERTs waiting for the lock on this schema's events table.
      const countWaiting = async () => {
        const [row] = await c.services.ledger.sql<{ n: number }[]>`
          SELECT count(*)::int AS n FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.relation = ${`${schema}.webhook_events`}::regclass AND NOT l.granted AND a.query LIKE '%INSERT INTO webhook_events%'`;
        return row?.n ?? 0;
      };
      // Until as many commits as expected reach the lock (however long a busy machine takes), then the count again.
      const waitingCommits = async (expected: number) => {
        await eventually(async () => (await countWaiting()) >= expected, { what: `${expected} commits waiting on the lock` });
        return countWaiting();
      };

      const singles = Array.from({ length: 8 }, (_, i) => c.request('POST', 'trigger', { event_type: 'agent.created', data: { agent_id: `group-${i}` } }));
      assert.equal(await waitingCommits(1), 1, 'eight single events: one commit in flight, the rest wait for the next group');
      const events = Array.from({ length: 100 }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `batch-${i}` } }));
      const batch = c.request('POST', 'events/batch', { events });
      assert.equal(await waitingCommits(2), 2, 'a hundred waiting: a second commit starts beside the first');

      await lock.release();
      assert.deepEqual(
        (await Promise.all(singles)).map((r) => r.status),
        Array(8).fill(202),
      );
      assert.equal((await batch).status, 202);
    } finally {
      await lock.close();
      await c.stop();
    }
  });
});
