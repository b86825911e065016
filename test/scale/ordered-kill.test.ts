/**
 * Ordered delivery through a crash: the worker sending a FIFO endpoint's events is killed with
 * SIGKILL mid-way, with some first attempts failing; a second worker takes over once the lease runs
 * out. The receiver never sees an event before every earlier one, never two at once, and gets every
 * event. Real processes, one Postgres and one Redis.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DATABASE_URL, REDIS_URL, eventually, startCarteiro, createEndpoint, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { spawnCarteiro, type CarteiroProcess } from '../support/processes.ts';

const skip = DATABASE_URL && REDIS_URL ? false : 'needs DATABASE_URL and REDIS_URL (separate worker processes share the ledger)';

describe('ordered delivery: kill -9 of the worker', { skip }, () => {
  let api: TestCarteiro;
  let rx: TestReceiver;
  let open = 0;
  let maxOpen = 0;
  const firstAttempt = new Set<string>();
  const workers: CarteiroProcess[] = [];
  before(async () => {
    rx = await startReceiver(async (req) => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      const id = req.headers['webhook-id'] as string;
      const seq = Number((JSON.parse(req.body) as { data: { agent_id: string } }).data.agent_id.split('-').pop());
      const first = !firstAttempt.has(id);
      firstAttempt.add(id);
      await new Promise((r) => setTimeout(r, 20));
      open--;
      // One event in seven fails its first attempt, so retries are part of the run.
      return { status: first && seq % 7 === 3 ? 503 : 200 };
    });
    api = await startCarteiro({
      role: 'api',
      env: {
        CARTEIRO_LEASE_MS: '4000',
        WEBHOOK_MAX_RETRIES: '20',
        WEBHOOK_RETRY_BASE_DELAY_MS: '20',
        WEBHOOK_RETRY_MAX_DELAY_MS: '50',
        CARTEIRO_SLOW_LANE_AFTER_FAILURES: '0',
      },
    });
  });
  after(async () => {
    for (const w of workers) await w.kill('SIGKILL');
    await api.stop();
    await rx.close();
  });

  test('order holds and nothing is lost when the worker dies mid-way', { timeout: 170_000 }, async () => {
    const ep = await createEndpoint(api, { url: `${rx.url}/fifo`, events: ['agent.created'], fifo: true });
    workers.push(spawnCarteiro('worker', api.env));
    const res = await api.request('POST', 'events/batch', {
      events: Array.from({ length: 120 }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `fk-${i}` } })),
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const ids = res.body.events.map((e: { event_id: string }) => e.event_id) as string[];
    await eventually(() => rx.received.length >= 40, { what: 'a third under way', timeoutMs: 60_000 });

    const w1 = workers[0]!;
    assert.ok(w1.child.kill('SIGKILL'));
    await w1.kill('SIGKILL');
    workers.push(spawnCarteiro('worker', api.env));

    await eventually(
      async () => {
        const [row] = await api.services.ledger.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM webhook_dispatches WHERE webhook_endpoint_id = ${ep.id} AND status = 'succeeded'`;
        return row!.n === ids.length;
      },
      { what: 'every event delivered', timeoutMs: 120_000 },
    );

    const order = rx.received.map((r) => ids.indexOf(r.headers['webhook-id'] as string));
    assert.ok(
      order.every((i) => i >= 0),
      "only this endpoint's events",
    );
    // Never back to an earlier event: a retry, or the re-send of what the dead worker held, repeats
    // the current one; the next one comes only after it.
    for (let i = 1; i < order.length; i++)
      assert.ok((order[i] as number) >= (order[i - 1] as number), `request ${i}: event ${order[i]} after event ${order[i - 1]}`);
    assert.deepEqual(
      [...new Set(order)],
      ids.map((_, i) => i),
      'every event, in order',
    );
    assert.equal(maxOpen, 1, 'one at a time, across both workers');
  });
});
