/**
 * Isolation between endpoints and organizations: a receiver that hangs, or one with a deep backlog,
 * never holds up anyone else's webhooks. Behaviour, not timings: states in the ledger and what the
 * receivers saw, with deadlines only to stop a hang.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { startHangingReceiver, startReceiver, type TestReceiver } from '../support/receiver.ts';
import { createOrgWithKey, withKey } from '../security/tenancy-helpers.ts';

/** Answers every request after `delayMs`; `maxOpen` is the most it held at once. */
async function startSlowReceiver(delayMs: number) {
  let open = 0;
  let maxOpen = 0;
  const rx = await startReceiver(async () => {
    open++;
    maxOpen = Math.max(maxOpen, open);
    await new Promise((r) => setTimeout(r, delayMs));
    open--;
    return { status: 200 };
  });
  return Object.defineProperties(rx, {
    maxOpen: { get: () => maxOpen },
    open: { get: () => open },
    resetMax: { value: () => (maxOpen = open) },
  }) as TestReceiver & { readonly maxOpen: number; readonly open: number; resetMax(): void };
}

async function dispatchStates(c: TestCarteiro, endpointId: string): Promise<Record<string, number>> {
  const rows = await c.services.ledger.sql<{ status: string; n: number }[]>`
    SELECT status, count(*)::int AS n FROM webhook_dispatches WHERE webhook_endpoint_id = ${endpointId} GROUP BY status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
}

async function batch(c: TestCarteiro, events: Record<string, unknown>[], headers?: Record<string, string>): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < events.length; i += 500) {
    const res = await c.request('POST', 'events/batch', { events: events.slice(i, i + 500) }, headers);
    assert.equal(res.status, 202, JSON.stringify(res.body));
    ids.push(...res.body.events.map((e: { event_id: string }) => e.event_id));
  }
  return ids;
}

describe('isolation: hanging receivers', () => {
  let c: TestCarteiro;
  let healthy: TestReceiver;
  const hanging: Awaited<ReturnType<typeof startHangingReceiver>>[] = [];
  before(async () => {
    healthy = await startReceiver();
    for (let i = 0; i < 12; i++) hanging.push(await startHangingReceiver());
    c = await startCarteiro({
      env: {
        // Few slots, so that without per-endpoint bounds a dozen silent receivers would hold them all;
        // a long timeout, so none of their requests ends while the test runs.
        CARTEIRO_WORKER_CONCURRENCY: '16',
        CARTEIRO_WORKER_PARK_AFTER_MS: '200',
        WEBHOOK_TIMEOUT_MS: '120000',
        CARTEIRO_LEASE_MS: '150000',
      },
    });
  });
  after(async () => {
    await Promise.all(hanging.map((h) => h.close()));
    await c.stop();
    await healthy.close();
  });

  test('a healthy endpoint is delivered to while hanging endpoints have work, and none holds more than its cap', async () => {
    // (the ledger's in_flight count also holds outcomes not yet recorded; the receivers count the wire)
    const silent = [];
    for (const [i, h] of hanging.entries()) {
      silent.push(await createEndpoint(c, { url: `${h.url}/hang-${i}`, events: ['agent.created'], max_in_flight: 3 }));
    }
    // A backlog for every hanging endpoint: 40 events each go to all twelve.
    await batch(
      c,
      Array.from({ length: 40 }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `h-${i}` } })),
    );
    await eventually(() => hanging.every((h) => h.open === 3), { what: 'every hanging receiver to hold its cap', timeoutMs: 30_000 });

    // Another organization's endpoint, beside them, gets its events.
    const org = await createOrgWithKey(c, 'Quiet org');
    const asQuiet = withKey(c, org.key);
    const ep = await asQuiet('POST', 'endpoints', { name: 'healthy', url: `${healthy.url}/ok`, events: ['user.registered'] });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    const ids = await batch(
      c,
      Array.from({ length: 30 }, (_, i) => ({ event_type: 'user.registered', data: { user_id: `u-${i}`, email: `u${i}@example.com`, name: 'U' } })),
      { authorization: `Bearer ${org.key}` },
    );
    await eventually(() => ids.every((id) => healthy.received.some((r) => r.headers['webhook-id'] === id)), {
      what: 'all healthy deliveries',
      timeoutMs: 30_000,
    });

    // Meanwhile no hanging endpoint held more than its cap, in the ledger or on the wire.
    for (const [i, h] of hanging.entries()) {
      assert.equal(h.maxOpen, 3, `hanging receiver ${i} saw at most its cap at once`);
      const states = await dispatchStates(c, silent[i]!.id);
      assert.equal(states.in_flight, 3, JSON.stringify(states));
      assert.equal(states.pending, 37, JSON.stringify(states));
    }
    // And once they answer, their backlogs drain: nothing was lost while they hung.
    for (const h of hanging) h.release();
    for (const s of silent) {
      await eventually(async () => (await dispatchStates(c, s.id)).succeeded === 40, { what: `endpoint ${s.id} to drain`, timeoutMs: 60_000 });
    }
  });
});

describe('isolation: a worker with every slot taken', () => {
  let c: TestCarteiro;
  let healthy: TestReceiver;
  let hanging: Awaited<ReturnType<typeof startHangingReceiver>>;
  before(async () => {
    healthy = await startReceiver();
    hanging = await startHangingReceiver();
    c = await startCarteiro({
      env: {
        // Four slots, all taken by one silent receiver (its start limit is 8), and never given back
        // while the test runs: no parking, no timeout, no lease expiry.
        CARTEIRO_WORKER_CONCURRENCY: '4',
        CARTEIRO_WORKER_PARK_AFTER_MS: '600000',
        WEBHOOK_TIMEOUT_MS: '120000',
        CARTEIRO_LEASE_MS: '150000',
      },
    });
  });
  after(async () => {
    await hanging.close();
    await c.stop();
    await healthy.close();
  });

  test('new work for an endpoint with nothing in flight is still claimed and delivered', async () => {
    const silent = await createEndpoint(c, { url: `${hanging.url}/hang`, events: ['agent.created'] });
    await batch(
      c,
      Array.from({ length: 20 }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `full-${i}` } })),
    );
    await eventually(() => hanging.open === 4, { what: 'the silent receiver to hold every slot', timeoutMs: 30_000 });

    const org = await createOrgWithKey(c, 'Quiet org');
    const asQuiet = withKey(c, org.key);
    const ep = await asQuiet('POST', 'endpoints', { name: 'healthy', url: `${healthy.url}/ok`, events: ['user.registered'] });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    // One at a time, as a quiet tenant sends: each is announced while the worker has no free slot.
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await asQuiet('POST', 'trigger', { event_type: 'user.registered', data: { user_id: `q-${i}`, email: `q${i}@example.com`, name: 'Q' } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      ids.push(res.body.event_id);
      await eventually(() => healthy.received.some((r) => r.headers['webhook-id'] === res.body.event_id), {
        what: `quiet event ${i} delivered`,
        timeoutMs: 30_000,
      });
    }
    // ...while the silent receiver still held its four, none answered or given up.
    assert.equal(hanging.open, 4);
    assert.equal(hanging.maxOpen, 4);
    const states = await dispatchStates(c, silent.id);
    assert.equal(states.in_flight, 4, JSON.stringify(states));
    assert.equal(states.pending, 16, JSON.stringify(states));
    hanging.release();
    await eventually(async () => (await dispatchStates(c, silent.id)).succeeded === 20, {
      what: 'the silent endpoint to drain once it answers',
      timeoutMs: 60_000,
    });
  });
});

describe('isolation: a drain that fills every slot', () => {
  let c: TestCarteiro;
  before(async () => {
    // Eight slots, and three endpoints that may each have eight in flight: the slots fill before any
    // endpoint reaches its limit. No poll while the test runs: only finished deliveries claim more.
    c = await startCarteiro({ env: { CARTEIRO_WORKER_CONCURRENCY: '8', CARTEIRO_POLL_INTERVAL_MS: '600000' } });
  });
  after(() => c.stop());

  test('deliveries that end claim the next ones, also after a claim found the slots full', async () => {
    const rx = await startSlowReceiver(2);
    try {
      const eps = [];
      for (let i = 0; i < 3; i++) eps.push(await createEndpoint(c, { url: `${rx.url}/full-${i}`, events: ['agent.updated'] }));
      await batch(
        c,
        Array.from({ length: 80 }, (_, i) => ({ event_type: 'agent.updated', data: { agent_id: `full-${i}` } })),
      );
      for (const ep of eps) {
        await eventually(async () => (await dispatchStates(c, ep.id)).succeeded === 80, {
          what: `endpoint ${ep.id} drained without a poll`,
          timeoutMs: 60_000,
        });
      }
    } finally {
      await rx.close();
    }
  });
});

describe('isolation: the quiet lane beside a busy claim loop', () => {
  let c: TestCarteiro;
  before(async () => {
    // No parking and no timeout while the test runs: what a hanging receiver holds stays counted.
    c = await startCarteiro({ env: { CARTEIRO_WORKER_PARK_AFTER_MS: '600000', WEBHOOK_TIMEOUT_MS: '120000', CARTEIRO_LEASE_MS: '150000' } });
  });
  after(() => c.stop());

  test('work announced while the loop claims is claimed beside it, and no endpoint gets more than its cap from the two', async () => {
    // A drain keeps the claim loop claiming back to back; meanwhile fresh endpoints (nothing in flight,
    // so the quiet lane serves them) get backlogs of their own, each announced while a claim is under
    // way, so both lanes may claim one endpoint's work at once.
    const rx = await startSlowReceiver(2);
    const hanging: Awaited<ReturnType<typeof startHangingReceiver>>[] = [];
    try {
      await createEndpoint(c, { url: `${rx.url}/drain`, events: ['agent.created'] });
      await batch(
        c,
        Array.from({ length: 3000 }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `d-${i}` } })),
      );
      await eventually(() => rx.received.length > 50, { what: 'the drain to start' });
      const capped = [];
      for (let i = 0; i < 24; i++) {
        const h = await startHangingReceiver();
        hanging.push(h);
        capped.push(await createEndpoint(c, { url: `${h.url}/capped-${i}`, events: ['agent.updated'], max_in_flight: 2 }));
      }
      for (let round = 0; round < 5; round++) {
        await batch(
          c,
          Array.from({ length: 4 }, (_, i) => ({ event_type: 'agent.updated', data: { agent_id: `c-${round}-${i}` } })),
        );
      }
      await eventually(() => hanging.every((h) => h.open === 2), { what: 'every capped receiver to hold its cap', timeoutMs: 30_000 });
      // Work left to drain: the loop was claiming all along.
      const [left] = await c.services.ledger.sql<
        { n: number }[]
      >`SELECT count(*)::int AS n FROM webhook_dispatches WHERE status = 'pending' AND webhook_endpoint_id NOT IN ${c.services.ledger.sql(capped.map((e) => e.id))}`;
      for (const [i, h] of hanging.entries()) {
        assert.equal(h.maxOpen, 2, `capped receiver ${i} never saw more than its cap at once (the drain still had ${left!.n} to go)`);
        const states = await dispatchStates(c, capped[i]!.id);
        assert.equal(states.in_flight, 2, JSON.stringify(states));
        assert.equal(states.pending, 18, JSON.stringify(states));
      }
      for (const h of hanging) h.release();
      for (const e of capped)
        await eventually(async () => (await dispatchStates(c, e.id)).succeeded === 20, { what: `endpoint ${e.id} to drain`, timeoutMs: 60_000 });
    } finally {
      await Promise.all(hanging.map((h) => h.close()));
      await rx.close();
    }
  });
});

describe('isolation: contention control', () => {
  let c: TestCarteiro;
  before(async () => {
    // A target no claim can meet (a round trip to the ledger takes longer than 1 µs): whenever quiet
    // claims bring work, the ledger counts as contended, and the busiest endpoint goes to the floor.
    c = await startCarteiro({ env: { CARTEIRO_QUIET_CLAIM_TARGET_MS: '1', CARTEIRO_ENDPOINT_CONTENDED_FLOOR: '4' } });
  });
  after(() => c.stop());

  test('while a quiet endpoint is served on a contended ledger, the busiest endpoint is held to the floor; once it is not, the drain goes back to its own limit', async () => {
    const rx = await startSlowReceiver(20);
    const quiet = await startReceiver();
    let sending = true;
    try {
      const drain = await createEndpoint(c, { url: `${rx.url}/drain`, events: ['agent.created'], max_in_flight: 64 });
      await createEndpoint(c, { url: `${quiet.url}/quiet`, events: ['user.registered'] });
      await batch(
        c,
        Array.from({ length: 6000 }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `cc-${i}` } })),
      );
      await eventually(() => rx.maxOpen >= 16, { what: 'the drain to climb past its start limit', timeoutMs: 30_000 });

      // A quiet tenant sends one event at a time, each announced while the drain keeps the loop claiming.
      let sent = 0;
      const quietLoop = (async () => {
        while (sending) {
          const res = await c.request('POST', 'trigger', {
            event_type: 'user.registered',
            data: { user_id: `cq-${sent}`, email: `cq${sent}@example.com`, name: 'Q' },
          });
          assert.equal(res.status, 202, JSON.stringify(res.body));
          const id = res.body.event_id;
          sent++;
          await eventually(() => quiet.received.some((r) => r.headers['webhook-id'] === id), { what: `quiet event ${sent} delivered`, timeoutMs: 30_000 });
        }
      })();
      await eventually(() => c.services.dispatcher?.stats().contendedCap === 4, { what: 'the contended cap to reach the floor', timeoutMs: 30_000 });
      // Held there: what was above the floor ends, and the drain is sent no more than 4 at a time,
      // counted over 40 of its deliveries made while the cap stayed at the floor. (On a machine
      // stalled for a second between two quiet events, the cap is lifted, as it should be: the
      // count then starts again once it is back.)
      let from = -1;
      await eventually(
        () => {
          if (c.services.dispatcher?.stats().contendedCap !== 4) return void (from = -1);
          if (from < 0) {
            if (rx.open > 4) return false;
            rx.resetMax();
            from = rx.received.length;
          }
          assert.ok(rx.maxOpen <= 4, `at most the floor in flight while contended, saw ${rx.maxOpen}`);
          return rx.received.length >= from + 40;
        },
        { what: 'the drain to go on at the floor', timeoutMs: 30_000 },
      );

      sending = false;
      await quietLoop;
      // No quiet work for a second: the cap is lifted, and the drain climbs again.
      await eventually(() => c.services.dispatcher?.stats().contendedCap === null, { what: 'the cap to be lifted', timeoutMs: 30_000 });
      rx.resetMax();
      await eventually(() => rx.maxOpen > 8, { what: 'the drain to go past the floor again', timeoutMs: 30_000 });
      const states = await dispatchStates(c, drain.id);
      assert.ok((states.pending ?? 0) > 0 || (states.succeeded ?? 0) === 6000, JSON.stringify(states));
      assert.ok(sent > 0);
    } finally {
      sending = false;
      await rx.close();
      await quiet.close();
    }
  });
});

describe('isolation: slow lane', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro({
      env: {
        WEBHOOK_TIMEOUT_MS: '300',
        WEBHOOK_MAX_RETRIES: '20',
        WEBHOOK_RETRY_BASE_DELAY_MS: '10',
        WEBHOOK_RETRY_MAX_DELAY_MS: '20',
        CARTEIRO_SLOW_LANE_INTERVAL_MS: '200',
        // The wait doubles per failure (200, 400, 400, ...): kept short so that the test counts attempts quickly.
        CARTEIRO_SLOW_LANE_MAX_INTERVAL_MS: '400',
      },
    });
  });
  after(() => c.stop());

  test('an endpoint refusing connections is tried about once per slow-lane interval, not once per event', async () => {
    const refusing = await startReceiver();
    const url = `${refusing.url}/gone`;
    await refusing.close(); // nothing listens there any more: connections are refused at once
    const ep = await createEndpoint(c, { url, events: ['agent.deleted'] });
    await batch(
      c,
      Array.from({ length: 200 }, (_, i) => ({ event_type: 'agent.deleted', data: { agent_id: `r-${i}` } })),
    );
    const attempts = async () => {
      const [row] = await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_endpoint_id = ${ep.id}`;
      return row!.n;
    };
    // The first claim sends up to the start limit (8) at once; past those, the slow lane holds.
    await eventually(async () => (await attempts()) >= 9, { what: 'the first refused attempts', timeoutMs: 30_000 });
    const from = await attempts();
    const startedAt = Date.now();
    await eventually(async () => (await attempts()) >= from + 3, { what: 'three more attempts', timeoutMs: 30_000 });
    // Three attempts need at least two intervals between them (a slower machine only waits longer).
    assert.ok(Date.now() - startedAt >= 2 * 200 - 50, `three attempts in ${Date.now() - startedAt} ms`);
    const states = await dispatchStates(c, ep.id);
    assert.ok((states.pending ?? 0) > 150, `most deliveries wait untried in the ledger: ${JSON.stringify(states)}`);
  });

  test('after repeated timeouts an endpoint gets one request at a time until it answers again', async (t) => {
    const h = await startHangingReceiver();
    t.after(() => h.close());
    const ep = await createEndpoint(c, { url: `${h.url}/slow`, events: ['agent.updated'] });
    await batch(
      c,
      Array.from({ length: 30 }, (_, i) => ({ event_type: 'agent.updated', data: { agent_id: `s-${i}` } })),
    );
    // The first requests time out (at most the start limit at once) ...
    await eventually(
      async () => {
        const [row] = await c.services.ledger.sql<{ n: number }[]>`SELECT failed_attempts_in_row AS n FROM webhook_endpoints WHERE id = ${ep.id}`;
        return row!.n >= 3;
      },
      { what: 'three timeouts in a row', timeoutMs: 30_000 },
    );
    // ... then it is in the slow lane: once the requests sent before are given up, one at a time.
    await eventually(() => h.open <= 1, { what: 'the earlier requests to time out', timeoutMs: 30_000 });
    h.resetMax();
    const seenBefore = h.received.length;
    await eventually(() => h.received.length >= seenBefore + 6, { what: 'six more attempts', timeoutMs: 30_000 });
    assert.ok(h.maxOpen <= 1, `at most one request open in the slow lane, saw ${h.maxOpen}`);
    assert.ok((await c.request('GET', `endpoints/${ep.id}`)).body.failed_attempts_in_row >= 3);

    // It answers again: the first success takes it out of the slow lane.
    h.release();
    await eventually(async () => (await dispatchStates(c, ep.id)).succeeded === 30, { what: 'the backlog to drain', timeoutMs: 60_000 });
    assert.equal((await c.request('GET', `endpoints/${ep.id}`)).body.failed_attempts_in_row, 0);
  });
});

describe('isolation: a shared origin', () => {
  let c: TestCarteiro;
  let shared: Awaited<ReturnType<typeof startSlowReceiver>>;
  before(async () => {
    // Both endpoints at one origin with two connections: the backlog's requests queue for them.
    shared = await startSlowReceiver(50);
    c = await startCarteiro({ env: { CARTEIRO_WORKER_CONNECTIONS_PER_ORIGIN: '2' } });
  });
  after(async () => {
    await c.stop();
    await shared.close();
  });

  test("requests queued for a busy origin are served round-robin across endpoints: one endpoint's queue does not hold up another's", async () => {
    await createEndpoint(c, { url: `${shared.url}/big`, events: ['agent.created'], max_in_flight: 200 });
    await createEndpoint(c, { url: `${shared.url}/small`, events: ['agent.deleted'] });
    await batch(
      c,
      Array.from({ length: 400 }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `q-${i}` } })),
    );
    // Let the big endpoint's queue build up at the origin before the small one's event arrives.
    await eventually(() => shared.received.filter((r) => r.path === '/big').length >= 10, { what: 'the backlog to start' });
    const [small] = await batch(c, [{ event_type: 'agent.deleted', data: { agent_id: 'small' } }]);
    await eventually(() => shared.received.some((r) => r.headers['webhook-id'] === small), { what: 'the small endpoint to be served', timeoutMs: 60_000 });
    const bigBefore = shared.received.findIndex((r) => r.headers['webhook-id'] === small);
    assert.ok(bigBefore < 100, `the small endpoint's request went out after ${bigBefore} of the backlog's, not behind all of it`);
  });
});

describe('isolation: backlogs', () => {
  let c: TestCarteiro;
  let slow: Awaited<ReturnType<typeof startSlowReceiver>>;
  let fresh: TestReceiver;
  before(async () => {
    // 100 ms an answer: an endpoint capped at 4 drains 40/s, so its backlog outlives the test.
    slow = await startSlowReceiver(100);
    fresh = await startReceiver();
    c = await startCarteiro();
  });
  after(async () => {
    await c.stop();
    await Promise.all([slow.close(), fresh.close()]);
  });

  test('an endpoint with a deep backlog does not delay a fresh one, of its own organization or another', async () => {
    const big = await createEndpoint(c, { url: `${slow.url}/big`, events: ['agent.created'], max_in_flight: 4 });
    await batch(
      c,
      Array.from({ length: 3000 }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `b-${i}` } })),
    );
    await eventually(() => slow.received.length > 0, { what: 'the backlog to start draining' });

    const sameOrg = await createEndpoint(c, { url: `${fresh.url}/same`, events: ['agent.deleted'] });
    const org = await createOrgWithKey(c, 'Small org');
    const asSmall = withKey(c, org.key);
    assert.equal((await asSmall('POST', 'endpoints', { name: 'small', url: `${fresh.url}/other`, events: ['agent.deleted'] })).status, 201);
    const mine = await batch(c, [{ event_type: 'agent.deleted', data: { agent_id: 'x' } }]);
    const theirs = await batch(c, [{ event_type: 'agent.deleted', data: { agent_id: 'y' } }], { authorization: `Bearer ${org.key}` });
    await eventually(() => [...mine, ...theirs].every((id) => fresh.received.some((r) => r.headers['webhook-id'] === id)), {
      what: 'the fresh endpoints to be delivered to',
      timeoutMs: 30_000,
    });

    // Delivered while most of the backlog still waits: they were not queued behind it.
    const states = await dispatchStates(c, big.id);
    assert.ok((states.pending ?? 0) > 2000, `the backlog was still there: ${JSON.stringify(states)}`);
    assert.ok(slow.maxOpen <= 4, `the backlog held at most its cap on the wire, saw ${slow.maxOpen}`);
    await eventually(async () => (await dispatchStates(c, sameOrg.id)).succeeded === 1, { what: 'the fresh delivery to be recorded' });
  });

  test('within an endpoint, high priority still goes first', async () => {
    const ep = await createEndpoint(c, { url: `${slow.url}/prio`, events: ['agent.updated'], max_in_flight: 1 });
    await batch(
      c,
      Array.from({ length: 20 }, (_, i) => ({ event_type: 'agent.updated', data: { agent_id: `n-${i}` } })),
    );
    const [urgent] = await batch(c, [{ event_type: 'agent.updated', priority: 'high', data: { agent_id: 'urgent' } }]);
    await eventually(() => slow.received.some((r) => r.headers['webhook-id'] === urgent), { what: 'the urgent event', timeoutMs: 30_000 });
    const order = slow.received.filter((r) => r.path === '/prio').map((r) => r.headers['webhook-id']);
    // At most the ones already claimed (one in flight, cap 1) can precede it.
    assert.ok(order.indexOf(urgent!) <= 1, `urgent delivered at position ${order.indexOf(urgent!)}`);
    assert.ok((await dispatchStates(c, ep.id)).pending! > 10);
  });
});
