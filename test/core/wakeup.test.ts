/**
 * Workers are woken by NOTIFY, not found by polling: with a one-minute poll interval an event accepted
 * by the API (which notifies after its commit) is still delivered at once, on both ledgers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, trigger, BACKEND } from '../support/carteiro.ts';
import { startReceiver } from '../support/receiver.ts';

for (const embedded of BACKEND === 'postgres' ? [false, true] : [true]) {
  test(`an accepted event wakes the worker at once (${embedded ? 'pglite' : 'postgres'})`, async (t) => {
    const c = await startCarteiro({ embedded, env: { CARTEIRO_POLL_INTERVAL_MS: '60000' } });
    t.after(() => c.stop());
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    await createEndpoint(c, { url: receiver.url, events: ['agent.created'] });
    // Let the start-up claim (which runs once, at start) pass, so only a wake-up can find the work.
    await new Promise((r) => setTimeout(r, 300));
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      await trigger(c, { event_type: 'agent.created', data: { agent_id: `wake-${i}` } });
      await receiver.waitFor(i + 1, 5_000);
      assert.ok(Date.now() - started < 5_000);
    }
    const batch = await c.request('POST', 'events/batch', { events: [{ event_type: 'agent.created', data: { agent_id: 'b' } }] });
    assert.equal(batch.status, 202);
    await receiver.waitFor(4, 5_000);
  });
}
