/**
 * Workers are woken by NOTIFY, not found by polling: with a ten-minute poll interval an event accepted
 * by the API (which notifies after its commit) is still delivered at once, on both ledgers. The waits'
 * deadlines are far below the poll interval, yet generous, so a busy machine does not fail the test.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, trigger, BACKEND } from '../support/carteiro.ts';
import { startReceiver } from '../support/receiver.ts';

for (const embedded of BACKEND === 'postgres' ? [false, true] : [true]) {
  test(`an accepted event wakes the worker at once (${embedded ? 'pglite' : 'postgres'})`, async (t) => {
    const c = await startCarteiro({ embedded, env: { CARTEIRO_POLL_INTERVAL_MS: '600000' } });
    t.after(() => c.stop());
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    await createEndpoint(c, { url: receiver.url, events: ['agent.created'] });
    // Let the start-up claim (which runs once, at start) pass, so only a wake-up can find the work.
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 3; i++) {
      await trigger(c, { event_type: 'agent.created', data: { agent_id: `wake-${i}` } });
      await receiver.waitFor(i + 1, 60_000);
    }
    const batch = await c.request('POST', 'events/batch', { events: [{ event_type: 'agent.created', data: { agent_id: 'b' } }] });
    assert.equal(batch.status, 202);
    await receiver.waitFor(4, 60_000);
  });
}
