/**
 * A worker whose outcomes cannot be recorded (a slow disk, a lock, a stalled server) stops claiming
 * once CARTEIRO_WORKER_MAX_UNRECORDED outcomes wait, instead of delivering on while outcomes pile up
 * in memory until their leases run out and the work is sent again. It resumes by itself.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BACKEND, createEndpoint, eventually, startCarteiro } from '../support/carteiro.ts';
import { startReceiver } from '../support/receiver.ts';
import { lockTable } from '../support/table-lock.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('backpressure from the ledger', { skip: BACKEND !== 'postgres' && 'PGlite has one session: nothing else can hold a lock' }, () => {
  test('while outcomes cannot be written, a worker delivers at most its unrecorded allowance, then resumes', async (t) => {
    const MAX_UNRECORDED = 40;
    const EVENTS = 300;
    const c = await startCarteiro({
      env: { CARTEIRO_WORKER_MAX_UNRECORDED: String(MAX_UNRECORDED), CARTEIRO_WORKER_CONCURRENCY: '10', CARTEIRO_WORKER_BATCH_SIZE: '10' },
    });
    t.after(() => c.stop());
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    await createEndpoint(c, { url: receiver.url, events: ['agent.created'] });

    // The attempt log is where every outcome is written first: with it locked, nothing is recorded.
    const lock = await lockTable(c.env.CARTEIRO_SCHEMA as string, 'webhook_deliveries');
    try {
      const events = Array.from({ length: EVENTS }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `bp-${i}` } }));
      assert.equal((await c.request('POST', 'events/batch', { events })).status, 202);

      await eventually(() => receiver.received.length >= MAX_UNRECORDED / 2, { what: 'deliveries to start' });
      await sleep(1_500);
      const whileStuck = receiver.received.length;
      assert.ok(whileStuck <= MAX_UNRECORDED, `delivered ${whileStuck} while nothing could be recorded (allowance ${MAX_UNRECORDED})`);
      await sleep(1_000);
      assert.equal(receiver.received.length, whileStuck, 'no more deliveries while recording is stuck');
    } finally {
      // Released before anything else stops: a worker stopping waits to record what it delivered.
      await lock.close();
    }

    await eventually(
      async () => {
        const [row] = await c.services.ledger.sql<{ done: number }[]>`
        SELECT count(*)::int AS done FROM webhook_dispatches WHERE status = 'succeeded'`;
        return row?.done === EVENTS;
      },
      { what: 'every delivery recorded after the lock is released' },
    );
    const ids = receiver.received.map((r) => r.headers['webhook-id']);
    assert.equal(new Set(ids).size, EVENTS, 'every event delivered');
    assert.equal(ids.length, EVENTS, 'none sent twice');
  });
});
