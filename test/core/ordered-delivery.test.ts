/**
 * Ordered (FIFO) delivery (docs/ordered-delivery.md): a FIFO endpoint gets one delivery at a time,
 * in the order its events were accepted, and a failing head holds everything behind it until it
 * succeeds or fails for good; then the endpoint holds (disabled) or skips, as it asked. Behaviour
 * only: what real receivers saw, and the ledger's states; deadlines only stop a hang.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';

/** A receiver that counts how many requests it holds at once, answering each after a short, varying wait. */
async function startOrderReceiver(fail: (eventSeq: number, attempt: number) => boolean = () => false) {
  let open = 0;
  let maxOpen = 0;
  const attemptsById = new Map<string, number>();
  const rx: TestReceiver = await startReceiver(async (req) => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    const id = req.headers['webhook-id'] as string;
    const attempt = (attemptsById.get(id) ?? 0) + 1;
    attemptsById.set(id, attempt);
    const seq = Number((JSON.parse(req.body) as { data: { agent_id: string } }).data.agent_id.split('-').pop());
    await new Promise((r) => setTimeout(r, (seq * 7) % 13));
    open--;
    return { status: fail(seq, attempt) ? 500 : 200 };
  });
  return Object.defineProperty(rx, 'maxOpen', { get: () => maxOpen }) as TestReceiver & { readonly maxOpen: number };
}

async function batch(c: TestCarteiro, prefix: string, count: number): Promise<string[]> {
  const res = await c.request('POST', 'events/batch', {
    events: Array.from({ length: count }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `${prefix}-${i}` } })),
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.events.map((e: { event_id: string }) => e.event_id);
}

async function dispatchStatus(c: TestCarteiro, endpointId: string): Promise<Map<string, string>> {
  const rows = await c.services.ledger.sql<{ webhook_event_id: string; status: string }[]>`
    SELECT webhook_event_id, status FROM webhook_dispatches WHERE webhook_endpoint_id = ${endpointId}`;
  return new Map(rows.map((r) => [r.webhook_event_id, r.status]));
}

/** The ids in the order the receiver first saw them, and the ids of its successful answers in order. */
function seen(rx: TestReceiver, fail: (seq: number, attempt: number) => boolean = () => false) {
  const first: string[] = [];
  const succeeded: string[] = [];
  const attempts = new Map<string, number>();
  for (const r of rx.received) {
    const id = r.headers['webhook-id'] as string;
    const attempt = (attempts.get(id) ?? 0) + 1;
    attempts.set(id, attempt);
    if (attempt === 1) first.push(id);
    const seq = Number((JSON.parse(r.body) as { data: { agent_id: string } }).data.agent_id.split('-').pop());
    if (!fail(seq, attempt)) succeeded.push(id);
  }
  return { first, succeeded, attempts };
}

describe('ordered delivery', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro({
      env: {
        WEBHOOK_MAX_RETRIES: '2',
        WEBHOOK_RETRY_BASE_DELAY_MS: '20',
        WEBHOOK_RETRY_MAX_DELAY_MS: '40',
        WEBHOOK_RETRY_JITTER: '0',
        CARTEIRO_SLOW_LANE_AFTER_FAILURES: '0',
      },
    });
  });
  after(() => c.stop());

  test('a FIFO endpoint gets its events one at a time, in the order they were accepted; a plain one beside it is not held', async () => {
    const rx = await startOrderReceiver();
    const plain = await startReceiver();
    try {
      const ep = await createEndpoint(c, { url: `${rx.url}/fifo`, events: ['agent.created'], fifo: true });
      assert.equal(ep.fifo, true);
      assert.equal(ep.fifo_on_exhausted, 'hold');
      await createEndpoint(c, { url: `${plain.url}/plain`, events: ['agent.created'] });
      const ids = [...(await batch(c, 'order-a', 40)), ...(await batch(c, 'order-b', 40))];
      for (let i = 0; i < 10; i++) {
        const res = await c.request('POST', 'trigger', { event_type: 'agent.created', data: { agent_id: `order-c-${i}` } });
        ids.push(res.body.event_id);
      }
      await eventually(() => rx.received.length >= ids.length, { what: 'every event at the FIFO receiver', timeoutMs: 60_000 });
      assert.deepEqual(
        rx.received.map((r) => r.headers['webhook-id']),
        ids,
        'in the order accepted, each once',
      );
      assert.equal(rx.maxOpen, 1, 'never more than one at a time');
      await eventually(() => plain.received.length >= ids.length, { what: 'every event at the plain receiver' });
    } finally {
      await rx.close();
      await plain.close();
    }
  });

  test('a failing head holds the ones behind it until its retry succeeds', async () => {
    // Every fifth event fails its first attempt.
    const fail = (seq: number, attempt: number) => seq % 5 === 2 && attempt === 1;
    const rx = await startOrderReceiver(fail);
    try {
      const ep = await createEndpoint(c, { url: `${rx.url}/retry`, events: ['agent.created'], fifo: true });
      const ids = await batch(c, 'retry', 30);
      await eventually(async () => [...(await dispatchStatus(c, ep.id)).values()].filter((s) => s === 'succeeded').length === ids.length, {
        what: 'all delivered',
        timeoutMs: 60_000,
      });
      const { first, succeeded, attempts } = seen(rx, fail);
      assert.deepEqual(succeeded, ids, 'successes in the order accepted');
      assert.deepEqual(first, ids, 'nothing tried before the one ahead of it succeeded');
      assert.equal([...attempts.values()].filter((n) => n === 2).length, 6, 'the six failing ones were tried twice');
      // Each retried event's second attempt came straight after its first: nothing overtook it.
      const order = rx.received.map((r) => r.headers['webhook-id']);
      for (const [id, n] of attempts) if (n === 2) assert.equal(order.indexOf(id) + 1, order.lastIndexOf(id), `retry of ${id} came next`);
    } finally {
      await rx.close();
    }
  });

  test('a head that fails for good holds the endpoint (disabled) until it is replayed or the endpoint enabled; enabling skips it', async () => {
    // The event with seq 3 fails every attempt until `healed`.
    let healed = false;
    const fail = (seq: number) => seq === 3 && !healed;
    const rx = await startOrderReceiver(fail);
    try {
      const ep = await createEndpoint(c, { url: `${rx.url}/hold`, events: ['agent.created'], fifo: true });
      const ids = await batch(c, 'hold', 8);
      const head = ids[3] as string;
      const held = await eventually(
        async () => {
          const r = await c.request('GET', `endpoints/${ep.id}`);
          return r.body.is_active === false ? r.body : null;
        },
        { what: 'the endpoint disabled by its exhausted head', timeoutMs: 60_000 },
      );
      assert.match(held.disabled_reason, /ordered delivery held/);
      assert.equal(held.health, 'disabled');
      assert.equal(held.next_probe_at, null, 'not probed by the circuit breaker');
      const states = await dispatchStatus(c, ep.id);
      assert.deepEqual(
        ids.map((id) => states.get(id)),
        ['succeeded', 'succeeded', 'succeeded', 'failed', 'paused', 'paused', 'paused', 'paused'],
      );
      assert.ok(!rx.received.some((r) => ids.slice(4).includes(r.headers['webhook-id'] as string)), 'nothing behind the head was sent');

      // Replayed while held, then enabled: the head goes first, then the rest in order.
      healed = true;
      const from = rx.received.length;
      const replay = await c.request('POST', `events/${head}/replay`, { endpoint_id: ep.id });
      assert.ok(replay.status < 300, JSON.stringify(replay.body));
      const enabled = await c.request('POST', `endpoints/${ep.id}/enable`);
      assert.equal(enabled.status, 200, JSON.stringify(enabled.body));
      await eventually(async () => [...(await dispatchStatus(c, ep.id)).values()].every((s) => s === 'succeeded'), {
        what: 'everything delivered after the replay',
        timeoutMs: 60_000,
      });
      assert.deepEqual(
        rx.received.slice(from).map((r) => r.headers['webhook-id']),
        ids.slice(3),
        'the replayed head, then the rest in order',
      );
    } finally {
      await rx.close();
    }
  });

  test("with fifo_on_exhausted 'skip' the next one goes once the head fails for good", async () => {
    const fail = (seq: number) => seq === 1;
    const rx = await startOrderReceiver(fail);
    try {
      const ep = await createEndpoint(c, { url: `${rx.url}/skip`, events: ['agent.created'], fifo: true, fifo_on_exhausted: 'skip' });
      const ids = await batch(c, 'skip', 5);
      await eventually(
        async () => {
          const s = await dispatchStatus(c, ep.id);
          return ids.every((id) => s.get(id) === 'succeeded' || s.get(id) === 'failed');
        },
        { what: 'every delivery settled', timeoutMs: 60_000 },
      );
      const states = await dispatchStatus(c, ep.id);
      assert.deepEqual(
        ids.map((id) => states.get(id)),
        ['succeeded', 'failed', 'succeeded', 'succeeded', 'succeeded'],
      );
      const order = rx.received.map((r) => r.headers['webhook-id']);
      assert.deepEqual(order, [ids[0], ids[1], ids[1], ids[1], ids[2], ids[3], ids[4]], 'the head tried until exhausted (3 attempts), then the rest in order');
      assert.equal((await c.request('GET', `endpoints/${ep.id}`)).body.is_active, true);
    } finally {
      await rx.close();
    }
  });

  test('switching an endpoint to FIFO puts its waiting deliveries in order; bad values are refused by name', async () => {
    const bad = await c.request('POST', 'endpoints', { name: 'x', url: 'http://127.0.0.1:9/x', fifo_on_exhausted: 'later' });
    assert.equal(bad.status, 400);
    assert.match(JSON.stringify(bad.body), /fifo_on_exhausted/);
    const badType = await c.request('POST', 'endpoints', { name: 'x', url: 'http://127.0.0.1:9/x', fifo: 'yes' });
    assert.equal(badType.status, 400);
    assert.match(JSON.stringify(badType.body), /fifo/);

    const rx = await startOrderReceiver();
    try {
      // One a second (the endpoint's rate limit), so most of the batch is still waiting when it switches.
      const ep = await createEndpoint(c, { url: `${rx.url}/switch`, events: ['agent.created'], rate_limit_per_second: 1 });
      const ids = await batch(c, 'switch', 20);
      await eventually(() => rx.received.length >= 1, { what: 'the first delivery' });
      const patched = await c.request('PATCH', `endpoints/${ep.id}`, { fifo: true, rate_limit_per_second: null });
      assert.equal(patched.status, 200, JSON.stringify(patched.body));
      assert.equal(patched.body.fifo, true);
      const from = rx.received.length;
      await eventually(async () => [...(await dispatchStatus(c, ep.id)).values()].every((s) => s === 'succeeded'), {
        what: 'all delivered',
        timeoutMs: 60_000,
      });
      // Whatever was sent before the switch, the rest came one at a time, in order.
      const rest = rx.received.slice(from).map((r) => r.headers['webhook-id'] as string);
      const expected = ids.filter((id) => rest.includes(id));
      assert.ok(rest.length >= ids.length - 3, `${rest.length} after the switch`);
      assert.deepEqual(rest, expected);
    } finally {
      await rx.close();
    }
  });
});

describe('ordered delivery without polling', () => {
  let c: TestCarteiro;
  before(async () => {
    // No poll in the test's lifetime: each next head must be claimed because its predecessor's
    // outcome was recorded, not because a timer came round.
    c = await startCarteiro({ env: { CARTEIRO_POLL_INTERVAL_MS: '600000' } });
  });
  after(() => c.stop());

  test("recording a FIFO delivery's outcome wakes the claim of the next one", async () => {
    const rx = await startOrderReceiver();
    try {
      await createEndpoint(c, { url: `${rx.url}/nopoll`, events: ['agent.created'], fifo: true });
      const ids = await batch(c, 'nopoll', 25);
      await eventually(() => rx.received.length >= ids.length, { what: 'all delivered without a poll', timeoutMs: 60_000 });
      assert.deepEqual(
        rx.received.map((r) => r.headers['webhook-id']),
        ids,
      );
    } finally {
      await rx.close();
    }
  });
});
