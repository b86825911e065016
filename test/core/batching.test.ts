/**
 * Batching (docs/batching.md): an endpoint that asks for batches gets several events in one signed
 * POST, at most batch_max_events, sent once full or once the oldest has waited batch_max_wait_ms,
 * optionally one event type per batch. A retry resends the same batch (same webhook-id, same
 * members); a replayed event goes alone. Behaviour only: what real receivers saw, and the ledger's
 * states; deadlines only stop a hang.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, eventually, settled, uniqueSchema, DATABASE_URL, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithSeed, verifiesWithStandardWebhooks, type Received } from '../support/receiver.ts';
import { claimDueDispatches, releaseExpiredLeases } from '../../src/ledger/claims.ts';

type Member = { id: string; type: string; timestamp: string; data: Record<string, unknown> };
type BatchBody = { id: string; type: string; count: number; events: Member[] };

async function send(c: TestCarteiro, events: { event_type: string; data: Record<string, unknown> }[]): Promise<string[]> {
  const res = await c.request('POST', 'events/batch', { events });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.events.map((e: { event_id: string }) => e.event_id);
}

const agents = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `${prefix}-${i}` } }));

function body(r: Received): BatchBody {
  return JSON.parse(r.body) as BatchBody;
}

async function dispatches(c: TestCarteiro, endpointId: string) {
  return c.services.ledger.sql<{ webhook_event_id: string; status: string; batch_id: string | null; attempts: number; last_status_code: number | null }[]>`
    SELECT webhook_event_id, status, batch_id, attempts, last_status_code FROM webhook_dispatches WHERE webhook_endpoint_id = ${endpointId} ORDER BY webhook_event_id`;
}

describe('batching', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro({
      env: {
        WEBHOOK_MAX_RETRIES: '5',
        WEBHOOK_RETRY_BASE_DELAY_MS: '50',
        WEBHOOK_RETRY_MAX_DELAY_MS: '100',
        WEBHOOK_RETRY_JITTER: '0',
        CARTEIRO_SLOW_LANE_AFTER_FAILURES: '0',
      },
    });
  });
  after(() => c.stop());

  test('the API takes, shows and checks the batching fields; bad input is a 422 naming the field and changes nothing', async () => {
    const ep = await createEndpoint(c, { url: 'http://127.0.0.1:9/x', batch_max_events: 50 });
    assert.equal(ep.batch_max_events, 50);
    assert.equal(ep.batch_max_wait_ms, 1000, 'the default wait is stored');
    assert.equal(ep.batch_group_by_type, false);
    const plain = await createEndpoint(c, { url: 'http://127.0.0.1:9/y' });
    assert.equal(plain.batch_max_events, null);
    assert.equal(plain.batch_max_wait_ms, null);

    for (const [body, field] of [
      [{ batch_max_events: 0 }, 'batch_max_events'],
      [{ batch_max_events: 1001 }, 'batch_max_events'],
      [{ batch_max_wait_ms: -1 }, 'batch_max_wait_ms'],
      [{ batch_max_wait_ms: 3_600_001 }, 'batch_max_wait_ms'],
      [{ batch_max_events: 10, fifo: true }, 'batch_max_events'],
      [{ batch_max_events: 10, transformation: 'function handler(w) { return w; }' }, 'batch_max_events'],
      [{ batch_max_events: 10, template: 'slack' }, 'batch_max_events'],
    ] as const) {
      const res = await c.request('POST', 'endpoints', { name: 'bad', url: 'http://127.0.0.1:9/z', ...body });
      assert.equal(res.status, 422, JSON.stringify(body));
      assert.equal(res.body.details.field, field, JSON.stringify(res.body));
      assert.match(res.body.message, new RegExp(`^${field}: `));
    }

    // PATCH: checked against what the endpoint will be.
    let res = await c.request('PATCH', `endpoints/${ep.id}`, { fifo: true, name: 'renamed' });
    assert.equal(res.status, 422);
    assert.equal(res.body.details.field, 'fifo');
    res = await c.request('PATCH', `endpoints/${ep.id}`, { transformation: 'function handler(w) { return w; }' });
    assert.equal(res.status, 422);
    assert.equal(res.body.details.field, 'transformation');
    res = await c.request('PATCH', `endpoints/${ep.id}`, { batch_max_events: 2000, name: 'renamed' });
    assert.equal(res.status, 422);
    assert.equal(res.body.details.field, 'batch_max_events');
    res = await c.request('GET', `endpoints/${ep.id}`);
    assert.equal(res.body.name, 'test', 'nothing changed');
    assert.equal(res.body.batch_max_events, 50);
    assert.equal(res.body.fifo, false);

    res = await c.request('PATCH', `endpoints/${ep.id}`, { batch_max_events: 20, batch_max_wait_ms: 0, batch_group_by_type: true });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual([res.body.batch_max_events, res.body.batch_max_wait_ms, res.body.batch_group_by_type], [20, 0, true]);
    res = await c.request('PATCH', `endpoints/${ep.id}`, { batch_max_events: 1 });
    assert.equal(res.body.batch_max_events, null, '1 is one event per request: batching off');
    res = await c.request('PATCH', `endpoints/${ep.id}`, { fifo: true });
    assert.equal(res.status, 200, 'fifo once batching is off');
    // A plain endpoint with a transformation cannot start batching.
    res = await c.request('PATCH', `endpoints/${plain.id}`, { transformation: 'function handler(w) { return w; }' });
    assert.equal(res.status, 200);
    res = await c.request('PATCH', `endpoints/${plain.id}`, { batch_max_events: 5 });
    assert.equal(res.status, 422);
    assert.equal(res.body.details.field, 'batch_max_events');
    // Out of the way of the tests below (they subscribe to every event type).
    for (const id of [ep.id, plain.id]) assert.equal((await c.request('DELETE', `endpoints/${id}`)).status, 204);
  });

  test('N events go in one POST with N members, signed both ways over the batch body; the attempt log shows the batch and its members', async () => {
    const rx = await startReceiver();
    try {
      const ep = await createEndpoint(c, { url: `${rx.url}/full`, events: ['agent.created'], batch_max_events: 10, batch_max_wait_ms: 600_000 });
      const ids = await send(c, agents('full', 10));
      await settled(c, { endpointId: ep.id });
      assert.equal(rx.received.length, 1, 'one request');
      const r = rx.received[0] as Received;
      const b = body(r);
      assert.equal(b.type, 'batch');
      assert.equal(b.count, 10);
      assert.equal(r.headers['webhook-id'], b.id, 'the batch has its own webhook-id, in the body too');
      assert.ok(!ids.includes(b.id));
      assert.deepEqual(
        b.events.map((e) => e.id),
        ids,
        'every event, each with its own id, in the order accepted',
      );
      for (const [i, e] of b.events.entries()) {
        assert.deepEqual(Object.keys(e), ['id', 'type', 'timestamp', 'data'], "each member is the single event's envelope");
        assert.equal(e.type, 'agent.created');
        assert.deepEqual(e.data, { agent_id: `full-${i}` });
        assert.ok(!Number.isNaN(Date.parse(e.timestamp)));
      }
      assert.ok(verifiesWithSeed(ep.secret, r), 'X-Webhook-Signature over the batch body');
      assert.ok(verifiesWithStandardWebhooks(ep.secret, r), 'Standard Webhooks over the batch id and body');

      const rows = await dispatches(c, ep.id);
      assert.ok(
        rows.every((d) => d.status === 'succeeded' && d.batch_id === b.id && d.attempts === 1),
        JSON.stringify(rows),
      );
      const events = await c.services.ledger.sql<{ status: string }[]>`SELECT status FROM webhook_events WHERE id = ANY(${ids}::uuid[])`;
      assert.ok(events.every((e) => e.status === 'completed'));

      // The attempt log: one row per member, each carrying the batch's id.
      const res = await c.request('GET', `events/${ids[3]}`);
      assert.equal(res.status, 200);
      const attempts = await c.services.ledger.sql<{ webhook_event_id: string; batch_id: string; success: boolean }[]>`
        SELECT webhook_event_id, batch_id, success FROM webhook_deliveries WHERE webhook_endpoint_id = ${ep.id} ORDER BY webhook_event_id`;
      assert.deepEqual(
        attempts.map((a) => a.webhook_event_id),
        ids,
      );
      assert.ok(attempts.every((a) => a.batch_id === b.id && a.success));
      const shown = await c.request('GET', `events/${ids[3]}/attempts`);
      assert.equal(shown.status, 200);
      assert.equal(shown.body.data[0].batch_id, b.id, "the event's attempts show the batch id");
      const log = await c.request('GET', `endpoints/${ep.id}/attempts`);
      assert.deepEqual(
        log.body.data.map((a: { webhook_event_id: string }) => a.webhook_event_id).sort(),
        [...ids].sort(),
        "the endpoint's log: the batch's members",
      );
      assert.ok(log.body.data.every((a: { batch_id: string }) => a.batch_id === b.id));
      const ep2 = await c.request('GET', `endpoints/${ep.id}`);
      assert.equal(ep2.body.success_count, 1, 'the endpoint counts requests: one batch');
    } finally {
      await rx.close();
    }
  });

  test('a batch that does not fill goes when its oldest event has waited batch_max_wait_ms', async () => {
    const rx = await startReceiver();
    try {
      const ep = await createEndpoint(c, { url: `${rx.url}/wait`, events: ['agent.created'], batch_max_events: 100, batch_max_wait_ms: 400 });
      const accepted = Date.now();
      const ids = await send(c, agents('wait', 3));
      await rx.waitFor(1);
      const waited = (rx.received[0] as Received).at - accepted;
      assert.ok(waited >= 380, `sent after ${waited} ms, not before the wait`);
      await settled(c, { endpointId: ep.id });
      assert.equal(rx.received.length, 1);
      assert.deepEqual(
        body(rx.received[0] as Received).events.map((e) => e.id),
        ids,
        'a partial batch of 3',
      );
    } finally {
      await rx.close();
    }
  });

  test('more than N events are sent in batches of at most N', async () => {
    const rx = await startReceiver();
    try {
      const ep = await createEndpoint(c, { url: `${rx.url}/many`, events: ['agent.created'], batch_max_events: 7, batch_max_wait_ms: 100 });
      const ids = await send(c, agents('many', 30));
      await settled(c, { endpointId: ep.id });
      const members = rx.received.flatMap((r) => body(r).events.map((e) => e.id));
      assert.deepEqual(members.sort(), [...ids].sort(), 'each event once');
      assert.ok(rx.received.every((r) => body(r).count <= 7));
      assert.ok(rx.received.length >= 5 && rx.received.length <= 8, `${rx.received.length} requests`);
    } finally {
      await rx.close();
    }
  });

  test('group by type: each batch holds one event type', async () => {
    const rx = await startReceiver();
    try {
      const ep = await createEndpoint(c, {
        url: `${rx.url}/types`,
        events: ['agent.created', 'agent.deleted'],
        batch_max_events: 4,
        batch_max_wait_ms: 200,
        batch_group_by_type: true,
      });
      const events = Array.from({ length: 10 }, (_, i) => ({ event_type: i % 2 ? 'agent.deleted' : 'agent.created', data: { agent_id: `types-${i}` } }));
      const ids = await send(c, events);
      await settled(c, { endpointId: ep.id });
      for (const r of rx.received) assert.equal(new Set(body(r).events.map((e) => e.type)).size, 1, r.body);
      assert.deepEqual(rx.received.flatMap((r) => body(r).events.map((e) => e.id)).sort(), [...ids].sort());
      assert.equal(rx.received.length, 4, 'per type: 4 + 1');
    } finally {
      await rx.close();
    }
  });

  test('a failing receiver gets the same batch again (same webhook-id, same members); each member follows the batch; a replayed member goes alone', async () => {
    let healed = false;
    const rx = await startReceiver(() => ({ status: healed ? 200 : 503 }));
    try {
      const ep = await createEndpoint(c, { url: `${rx.url}/retry`, events: ['agent.created'], batch_max_events: 5, batch_max_wait_ms: 600_000 });
      const ids = await send(c, agents('retry', 5));
      await rx.waitFor(2);
      // While it fails: every member waits for the batch's retry, with the batch's answer.
      await eventually(
        async () => {
          const rows = await dispatches(c, ep.id);
          return rows.every((d) => d.status === 'pending' && d.last_status_code === 503 && d.attempts >= 1) && new Set(rows.map((d) => d.attempts)).size === 1;
        },
        { what: 'every member pending with the failed attempt' },
      );
      const events = await c.services.ledger.sql<{ status: string }[]>`SELECT status FROM webhook_events WHERE id = ANY(${ids}::uuid[])`;
      assert.ok(events.every((e) => e.status === 'processing'));
      healed = true;
      await settled(c, { endpointId: ep.id });
      const batchId = rx.received[0]?.headers['webhook-id'];
      assert.ok(rx.received.length >= 2);
      for (const r of rx.received) {
        assert.equal(r.headers['webhook-id'], batchId, 'the same webhook-id');
        assert.deepEqual(
          body(r).events.map((e) => e.id),
          ids,
          'the same members',
        );
        assert.equal(body(r).id, batchId);
        assert.ok(verifiesWithStandardWebhooks(ep.secret, r));
      }
      const rows = await dispatches(c, ep.id);
      assert.ok(
        rows.every((d) => d.status === 'succeeded' && d.attempts === rx.received.length && d.batch_id === batchId),
        JSON.stringify(rows),
      );
      const attempts = await c.services.ledger.sql<
        { n: number }[]
      >`SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_endpoint_id = ${ep.id} AND batch_id = ${batchId as string}`;
      assert.equal(attempts[0]?.n, 5 * rx.received.length, 'an attempt row per member per attempt');

      // Replay one member: it goes alone, as a single event, with its own id as webhook-id.
      const before = rx.received.length;
      const res = await c.request('POST', `events/${ids[2]}/replay`, { endpoint_id: ep.id });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      await settled(c, { endpointId: ep.id });
      assert.equal(rx.received.length, before + 1);
      const alone = rx.received[before] as Received;
      assert.equal(alone.headers['webhook-id'], ids[2]);
      const single = JSON.parse(alone.body);
      assert.equal(single.id, ids[2]);
      assert.equal(single.type, 'agent.created');
      assert.ok(verifiesWithStandardWebhooks(ep.secret, alone));
      const [replayed] = await c.services.ledger.sql<{ batch_id: string | null; status: string }[]>`
        SELECT batch_id, status FROM webhook_dispatches WHERE webhook_endpoint_id = ${ep.id} AND webhook_event_id = ${ids[2] as string}`;
      assert.deepEqual(replayed, { batch_id: null, status: 'succeeded' });
      const [last] = await c.services.ledger.sql<{ batch_id: string | null }[]>`
        SELECT batch_id FROM webhook_deliveries WHERE webhook_endpoint_id = ${ep.id} AND webhook_event_id = ${ids[2] as string} ORDER BY id DESC LIMIT 1`;
      assert.equal(last?.batch_id, null, 'its attempt row has no batch');
    } finally {
      await rx.close();
    }
  });

  test('a batch counts as one request against the in-flight cap and the rate limit', async () => {
    let open = 0;
    let maxOpen = 0;
    const rx = await startReceiver(async () => {
      open++;
      maxOpen = Math.max(maxOpen, open);
      await new Promise((r) => setTimeout(r, 30));
      open--;
      return { status: 200 };
    });
    try {
      const ep = await createEndpoint(c, {
        url: `${rx.url}/cap`,
        events: ['agent.created'],
        batch_max_events: 5,
        batch_max_wait_ms: 0,
        max_in_flight: 1,
        rate_limit_per_second: 100,
      });
      const ids = await send(c, agents('cap', 40));
      await settled(c, { endpointId: ep.id });
      assert.equal(maxOpen, 1, 'one batch in flight at a time');
      assert.deepEqual(rx.received.flatMap((r) => body(r).events.map((e) => e.id)).sort(), [...ids].sort());
      assert.ok(rx.received.length <= 40 / 5 + 2, `${rx.received.length} requests for 40 events`);
    } finally {
      await rx.close();
    }
  });
});

describe('batching: a worker that dies holding a batch', { skip: !DATABASE_URL && 'needs Postgres (two processes on one schema)' }, () => {
  test('when its lease runs out, another worker sends the same batch (same webhook-id, same members)', async () => {
    const schema = uniqueSchema('batchlease');
    const api = await startCarteiro({ role: 'api', schema });
    const rx = await startReceiver();
    let worker: TestCarteiro | undefined;
    try {
      const ep = await createEndpoint(api, { url: `${rx.url}/lease`, events: ['agent.created'], batch_max_events: 6, batch_max_wait_ms: 600_000 });
      const ids = await send(api, agents('lease', 6));
      // A worker that claims the batch and then dies: its rows stay in flight under its lease.
      const bounds = { defaultMaxInFlight: 256, startInFlight: 8, slowLaneAfterFailures: 0 };
      const claimed = await claimDueDispatches(api.services.ledger.sql, 'w-dead', 10, 60_000, bounds);
      assert.equal(claimed.length, 6);
      const batchId = claimed[0]?.batch_id;
      assert.ok(batchId && claimed.every((d) => d.batch_id === batchId), 'one batch');
      await api.services.ledger.sql`UPDATE webhook_dispatches SET lease_expires_at = now() - interval '1 second' WHERE leased_by = 'w-dead'`;
      assert.equal(await releaseExpiredLeases(api.services.ledger.sql), 6);
      worker = await startCarteiro({ role: 'worker', schema });
      await settled(api, { endpointId: ep.id });
      assert.equal(rx.received.length, 1);
      const r = rx.received[0] as Received;
      assert.equal(r.headers['webhook-id'], batchId);
      assert.deepEqual(
        body(r).events.map((e) => e.id),
        ids,
      );
      const rows = await dispatches(api, ep.id);
      assert.ok(
        rows.every((d) => d.status === 'succeeded' && d.batch_id === batchId && d.attempts === 2),
        JSON.stringify(rows),
      );
    } finally {
      await rx.close();
      await worker?.stop({ keepSchema: true });
      await api.stop();
    }
  });
});

describe('batching, embedded (PGlite)', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro({ embedded: true });
  });
  after(() => c.stop());

  test('batches are formed, signed and recorded the same way', async () => {
    const rx = await startReceiver();
    try {
      const ep = await createEndpoint(c, { url: `${rx.url}/embedded`, events: ['agent.created'], batch_max_events: 4, batch_max_wait_ms: 100 });
      const ids = await send(c, agents('embedded', 10));
      await settled(c, { endpointId: ep.id });
      assert.equal(rx.received.length, 3, '4 + 4 + 2');
      assert.deepEqual(rx.received.flatMap((r) => body(r).events.map((e) => e.id)).sort(), [...ids].sort());
      for (const r of rx.received) {
        assert.ok(verifiesWithSeed(ep.secret, r));
        assert.ok(verifiesWithStandardWebhooks(ep.secret, r));
        assert.equal(r.headers['webhook-id'], body(r).id);
      }
      const rows = await dispatches(c, ep.id);
      assert.ok(rows.every((d) => d.status === 'succeeded' && d.batch_id !== null));
    } finally {
      await rx.close();
    }
  });
});
