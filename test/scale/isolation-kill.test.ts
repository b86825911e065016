/**
 * Isolation under a crash: hanging receivers beside a healthy one, and the worker killed with SIGKILL
 * while they hang. A second worker takes over; every event reaches every endpoint once they answer,
 * and nothing accepted is lost. Real processes, one Postgres and one Redis.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DATABASE_URL, REDIS_URL, eventually, startCarteiro, createEndpoint, type TestCarteiro } from '../support/carteiro.ts';
import { startHangingReceiver, startReceiver, type TestReceiver } from '../support/receiver.ts';
import { spawnCarteiro, type CarteiroProcess } from '../support/processes.ts';

const skip = DATABASE_URL && REDIS_URL ? false : 'needs DATABASE_URL and REDIS_URL (a separate worker process shares the ledger)';

describe('isolation: kill -9 while receivers hang', { skip }, () => {
  let api: TestCarteiro;
  let healthy: TestReceiver;
  const hanging: Awaited<ReturnType<typeof startHangingReceiver>>[] = [];
  const workers: CarteiroProcess[] = [];
  before(async () => {
    healthy = await startReceiver();
    for (let i = 0; i < 5; i++) hanging.push(await startHangingReceiver());
    api = await startCarteiro({
      role: 'api',
      env: {
        // Attempts at a silent receiver time out in 1.5 s and are retried without end, so nothing
        // gives up while the test runs; a killed worker's leases run out in 4 s.
        WEBHOOK_TIMEOUT_MS: '1500',
        CARTEIRO_LEASE_MS: '4000',
        WEBHOOK_MAX_RETRIES: '100',
        WEBHOOK_RETRY_BASE_DELAY_MS: '50',
        WEBHOOK_RETRY_MAX_DELAY_MS: '300',
        CARTEIRO_CIRCUIT_BREAKER_FAILURES: '0',
      },
    });
  });
  after(async () => {
    for (const w of workers) await w.kill('SIGKILL');
    await Promise.all(hanging.map((h) => h.close()));
    await api.stop();
    await healthy.close();
  });

  const send = async (from: number, count: number) => {
    const res = await api.request('POST', 'events/batch', {
      events: Array.from({ length: count }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `k-${from + i}` } })),
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    return res.body.events.map((e: { event_id: string }) => e.event_id) as string[];
  };

  test('a worker killed mid-way loses nothing: the healthy endpoint is served throughout, the hanging ones get everything once they answer', {
    timeout: 170_000,
  }, async () => {
    await createEndpoint(api, { url: `${healthy.url}/ok`, events: ['agent.created'] });
    for (const [i, h] of hanging.entries()) await createEndpoint(api, { url: `${h.url}/hang-${i}`, events: ['agent.created'] });

    workers.push(spawnCarteiro('worker', api.env));
    const first = await send(0, 200);
    await eventually(() => healthy.received.length >= 50 && hanging.every((h) => h.open > 0), { what: 'work under way everywhere', timeoutMs: 60_000 });

    const w1 = workers[0]!;
    assert.ok(w1.child.kill('SIGKILL'));
    await w1.kill('SIGKILL');
    workers.push(spawnCarteiro('worker', api.env));
    const second = await send(200, 100);
    const all = [...first, ...second];

    // The healthy endpoint gets every event while the others still hang.
    await eventually(
      () => {
        const got = new Set(healthy.received.map((r) => r.headers['webhook-id']));
        return all.every((id) => got.has(id));
      },
      { what: 'every event at the healthy endpoint', timeoutMs: 90_000 },
    );
    assert.ok(
      hanging.every((h) => h.open > 0 || h.received.length > 0),
      'the hanging receivers were still being tried',
    );

    // They answer: everything reaches them, nothing was lost.
    for (const h of hanging) h.release();
    await eventually(
      async () => {
        const [row] = await api.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_dispatches WHERE status <> 'succeeded'`;
        return row!.n === 0;
      },
      { what: 'every delivery to succeed', timeoutMs: 120_000 },
    );
    const [counts] = await api.services.ledger.sql<{ events: number; dispatches: number }[]>`
      SELECT (SELECT count(*)::int FROM webhook_events WHERE event_type = 'agent.created') AS events,
             (SELECT count(*)::int FROM webhook_dispatches d JOIN webhook_events e ON e.id = d.webhook_event_id WHERE e.event_type = 'agent.created') AS dispatches`;
    assert.equal(counts!.events, 300);
    assert.equal(counts!.dispatches, 300 * 6);
    for (const h of hanging)
      assert.ok(
        all.every((id) => h.received.includes(id)),
        'every event reached every hanging receiver',
      );
  });
});
