/**
 * Prometheus /metrics: real events delivered to real loopback receivers, /metrics scraped over HTTP
 * and read with a Prometheus text-format parser; the counters must move by what happened. And who may
 * read it: the admin key or CARTEIRO_METRICS_KEY on the API; the metrics listener of its own.
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, trigger, eventually, TEST_ADMIN_KEY, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { scrape, type Scrape } from '../support/metrics.ts';

const METRICS_KEY = 'metrics-key-0123456789abcdef';

describe('Prometheus metrics', () => {
  let c: TestCarteiro;
  let ok: TestReceiver;
  let failing: TestReceiver;
  let metricsUrl: string;
  const read = () => scrape(metricsUrl, METRICS_KEY);

  before(async () => {
    c = await startCarteiro({
      listen: true,
      env: {
        CARTEIRO_METRICS_KEY: METRICS_KEY,
        CARTEIRO_METRICS_PORT: '0',
        CARTEIRO_METRICS_FAILING_ENDPOINTS: '2',
        // Every scrape reads the ledger afresh: the test waits for ledger state, then scrapes.
        CARTEIRO_METRICS_LEDGER_CACHE_MS: '0',
      },
    });
    metricsUrl = `${c.url}/metrics`;
    ok = await startReceiver(() => ({ status: 200 }));
    failing = await startReceiver(() => ({ status: 500 }));
  });
  after(async () => {
    await c.stop();
    await Promise.all([ok.close(), failing.close()]);
  });

  /** A labelled histogram's _count (or _sum) from this instance's registry (see the first test). */
  async function registryCount(name: string, labels: Record<string, string>, suffix = '_count'): Promise<number> {
    const metric = c.services.metrics.registry.getSingleMetric(name);
    assert.ok(metric, `${name} is registered`);
    const { values } = await metric.get();
    const found = (values as { metricName?: string; labels: Record<string, string | number>; value: number }[]).filter(
      (v) => v.metricName === `${name}${suffix}` && Object.entries(labels).every(([k, l]) => v.labels[k] === l),
    );
    assert.equal(found.length, 1, `${name}${suffix} ${JSON.stringify(labels)}`);
    return found[0]?.value ?? NaN;
  }

  /** Dispatches of these events not yet finished (succeeded or failed). */
  async function unfinished(eventIds: string[]): Promise<number> {
    const [row] = await c.services.ledger.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM webhook_dispatches
       WHERE webhook_event_id = ANY(${eventIds}::uuid[]) AND status NOT IN ('succeeded', 'failed')`;
    return row?.n ?? -1;
  }

  test('counters and histograms move with real deliveries, by outcome and destination kind', async () => {
    const good = await createEndpoint(c, { url: `${ok.url}/ok`, events: ['payment.confirmed'] });
    const bad = await createEndpoint(c, { url: `${failing.url}/fail`, events: ['payment.confirmed'] });
    const before = await read();

    const events: string[] = [];
    for (let i = 0; i < 3; i++)
      events.push(await trigger(c, { event_type: 'payment.confirmed', data: { payment_id: `p${i}`, user_id: `u${i}`, amount: 10 + i } }));
    // The ledger's word that every attempt is over: 3 delivered; 3 × (1 + WEBHOOK_MAX_RETRIES=3) failed.
    await eventually(async () => (await unfinished(events)) === 0, { timeoutMs: 30_000, what: 'every dispatch finished' });
    assert.equal(ok.received.length, 3);
    assert.equal(failing.received.length, 12);
    // Outcomes are counted once their batch is committed, right after the commit: wait for the last.
    const after = await eventually(
      async () => {
        const s = await read();
        return (
          s.value('carteiro_deliveries_total', { outcome: 'failed', destination_kind: 'endpoint' }) -
            before.value('carteiro_deliveries_total', { outcome: 'failed', destination_kind: 'endpoint' }) ===
            3 && s
        );
      },
      { what: 'the failed outcomes counted' },
    );
    const delta = (name: string, labels?: Record<string, string>) => after.value(name, labels) - before.value(name, labels);
    const hDelta = (name: string, labels?: Record<string, string>) => {
      const a = after.histogram(name, labels);
      const b = before.histogram(name, labels);
      return { count: a.count - b.count, sum: a.sum - b.sum };
    };

    assert.equal(delta('carteiro_deliveries_total', { outcome: 'delivered', destination_kind: 'endpoint' }), 3);
    assert.equal(delta('carteiro_deliveries_total', { outcome: 'retrying', destination_kind: 'endpoint' }), 9);
    assert.equal(delta('carteiro_deliveries_total', { outcome: 'failed', destination_kind: 'endpoint' }), 3);
    assert.equal(delta('carteiro_deliveries_total', { outcome: 'gone', destination_kind: 'endpoint' }), 0);
    assert.equal(delta('carteiro_deliveries_total', { outcome: 'delivered', destination_kind: 'n8n' }), 0);

    // Histograms with labels besides `le`: parse-prometheus-text-format (the one text parser on npm)
    // folds their series into one and drops their _count and _sum, so these are read from the
    // registry the scrape renders; the scrape still shows each as a histogram family.
    for (const name of ['carteiro_delivery_attempt_duration_seconds', 'carteiro_delivery_latency_seconds'])
      assert.equal(after.families.get(name)?.type, 'HISTOGRAM');
    assert.equal(await registryCount('carteiro_delivery_attempt_duration_seconds', { destination_kind: 'endpoint', result: 'success' }), 3);
    assert.equal(await registryCount('carteiro_delivery_attempt_duration_seconds', { destination_kind: 'endpoint', result: 'failure' }), 12);
    assert.equal(await registryCount('carteiro_delivery_latency_seconds', { destination_kind: 'endpoint' }), 3);
    const latency = { sum: await registryCount('carteiro_delivery_latency_seconds', { destination_kind: 'endpoint' }, '_sum') };
    assert.ok(latency.sum > 0 && latency.sum < 60, `accepted-to-delivered sum ${latency.sum} s`);

    // Every attempt was claimed once and recorded once, but for dispatches handed back unsent after
    // two claims overlapped (each claimed again, its hand-back recorded).
    const handedBack = delta('carteiro_worker_handed_back_total');
    assert.equal(hDelta('carteiro_worker_claim_batch_size').sum, 15 + handedBack);
    assert.ok(hDelta('carteiro_worker_claim_batch_size').count >= 1);
    assert.equal(hDelta('carteiro_worker_record_batch_size').sum, 15 + handedBack);
    assert.equal(hDelta('carteiro_worker_record_duration_seconds').count, hDelta('carteiro_worker_record_batch_size').count);

    assert.equal(delta('carteiro_ingest_events_total', { result: 'stored' }), 3);
    assert.equal(delta('carteiro_ingest_events_total', { result: 'duplicate' }), 0);
    assert.equal(hDelta('carteiro_ingest_commit_events').sum, 3);
    assert.ok(hDelta('carteiro_ingest_commit_duration_seconds').count >= 1);

    // The failing endpoint by id, with its run of failures; the healthy one is not named.
    const runs = after.samples('carteiro_endpoint_failed_attempts_in_row');
    assert.deepEqual(
      runs.map((s) => [s.labels.endpoint_id, s.value]),
      [[bad.id, 12]],
    );
    assert.equal(runs[0]?.labels.destination_kind, 'endpoint');
    assert.equal(runs[0]?.labels.active, 'true');
    assert.ok(!after.samples('carteiro_endpoint_failing_seconds').some((s) => s.labels.endpoint_id === good.id));
    assert.equal(after.value('carteiro_endpoints_failing'), 1);

    // Nothing is left to do; this process's worker is alive and idle.
    assert.equal(after.value('carteiro_queue_due', { priority: 'high' }), 0);
    assert.equal(after.value('carteiro_queue_due', { priority: 'normal' }), 0);
    assert.equal(after.value('carteiro_queue_retrying'), 0);
    assert.equal(after.value('carteiro_queue_processing'), 0);
    assert.equal(after.value('carteiro_queue_oldest_due_seconds'), 0);
    assert.ok(after.value('carteiro_workers_live') >= 1);
    assert.equal(after.value('carteiro_worker_in_flight'), 0);
    assert.equal(after.value('carteiro_info', { role: 'all' }), 1);

    // Node's process metrics ride along.
    for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'nodejs_eventloop_lag_seconds', 'nodejs_heap_size_used_bytes']) {
      assert.ok(after.families.has(name), `${name} is exported`);
    }
    assert.equal(after.value('carteiro_metrics_ledger_read_failures_total'), 0);
  });

  test('ingest refusals are counted by error code, on ingest routes only', async () => {
    const before = await read();
    const noKey = await fetch(`${c.url}/api/webhooks/trigger`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(noKey.status, 401);
    const invalid = await c.request('POST', 'trigger', { data: {} });
    assert.equal(invalid.status, 400);
    const unknown = await c.request('POST', 'events/batch', { events: [{ event_type: 'no.such.type', data: {} }] });
    assert.equal(unknown.status, 422);
    assert.equal(unknown.body.code, 'CARTEIRO_UNKNOWN_EVENT_TYPE');
    // Not an ingest route: not an ingest refusal.
    assert.equal((await fetch(`${c.url}/api/webhooks/endpoints`)).status, 401);
    assert.equal((await c.request('GET', 'endpoints/00000000-0000-7000-8000-000000000001')).status, 404);

    const after = await read();
    const delta = (reason: string) => after.value('carteiro_ingest_refusals_total', { reason }) - before.value('carteiro_ingest_refusals_total', { reason });
    assert.equal(delta('CARTEIRO_UNAUTHORIZED'), 1);
    assert.equal(delta('CARTEIRO_INVALID_INPUT'), 1);
    assert.equal(delta('CARTEIRO_UNKNOWN_EVENT_TYPE'), 1);
    assert.equal(delta('CARTEIRO_NOT_FOUND'), 0);
    assert.equal(after.value('carteiro_ingest_events_total', { result: 'stored' }), before.value('carteiro_ingest_events_total', { result: 'stored' }));
  });

  test('/metrics needs the admin key or the metrics key; the metrics listener needs the metrics key when one is set', async () => {
    assert.equal((await fetch(`${c.url}/metrics`)).status, 401);
    assert.equal((await fetch(`${c.url}/metrics`, { headers: { authorization: 'Bearer not-a-key-at-all-0123456789' } })).status, 401);
    const refused = await fetch(`${c.url}/metrics`);
    assert.equal((await refused.json()).code, 'CARTEIRO_UNAUTHORIZED');
    // An organization's key reads its own organization's data, never metrics across all of them.
    const org = await c.request('POST', 'organizations', { name: 'metrics-org' });
    assert.equal(org.status, 201);
    const key = await c.request('POST', `organizations/${org.body.id}/keys`, { name: 'k' });
    assert.equal(key.status, 201);
    const orgKey = key.body.key as string;
    assert.equal((await c.request('GET', 'endpoints', undefined, { authorization: `Bearer ${orgKey}` })).status, 200);
    assert.equal((await fetch(`${c.url}/metrics`, { headers: { authorization: `Bearer ${orgKey}` } })).status, 401);
    await scrape(`${c.url}/metrics`, METRICS_KEY);
    await scrape(`${c.url}/metrics`, TEST_ADMIN_KEY);

    const listener = c.services.metricsServer?.url ?? '';
    assert.ok(listener.startsWith('http://127.0.0.1:'), `metrics listener at ${listener}`);
    assert.equal((await fetch(listener)).status, 401);
    assert.equal((await fetch(listener.replace(/\/metrics$/, '/health'), { headers: { authorization: `Bearer ${METRICS_KEY}` } })).status, 404);
    const s = await scrape(listener, METRICS_KEY);
    assert.equal(s.value('carteiro_info', { role: 'all' }), 1);
  });

  test('a worker-only process without a metrics key serves its metrics on its own loopback listener', async (t: TestContext) => {
    const worker = await startCarteiro({ role: 'worker', env: { CARTEIRO_METRICS_PORT: '0' } });
    t.after(() => worker.stop());
    const listener = worker.services.metricsServer?.url ?? '';
    assert.ok(listener.startsWith('http://127.0.0.1:'));
    const s: Scrape = await scrape(listener, null);
    assert.equal(s.value('carteiro_info', { role: 'worker' }), 1);
    assert.ok(s.families.has('carteiro_worker_claim_batch_size'));
  });

  test('an expired lease is counted when the sweep hands its dispatch back', async () => {
    const ep = await createEndpoint(c, { url: `${ok.url}/lease`, events: ['user.updated'] });
    const eventId = await trigger(c, { event_type: 'user.updated', data: { user_id: 'u-lease' } });
    await eventually(async () => (await unfinished([eventId])) === 0, { what: 'the delivery' });
    const before = await read();
    // As a worker that died holding it would leave it: in flight, its lease run out.
    await c.services.ledger.sql`
      UPDATE webhook_dispatches SET status = 'in_flight', leased_by = 'w-dead', lease_expires_at = now() - interval '1 second'
       WHERE webhook_event_id = ${eventId} AND webhook_endpoint_id = ${ep.id}`;
    const after = await eventually(
      async () => {
        const s = await read();
        return s.value('carteiro_worker_lease_expiries_total') - before.value('carteiro_worker_lease_expiries_total') === 1 && s;
      },
      { what: 'the lease expiry counted' },
    );
    assert.ok(after);
    await eventually(async () => (await unfinished([eventId])) === 0, { what: 'the redelivery' });
  });

  test('queue gauges: due by priority, how late the oldest is, and paused', async () => {
    const receiver = await startReceiver();
    const ep = await createEndpoint(c, { url: receiver.url, events: ['agent.created'] });
    const held = await createEndpoint(c, { url: receiver.url, events: ['agent.deleted'] });
    // No worker claims from here on: what is due stays due.
    await c.services.dispatcher?.stop();
    try {
      await trigger(c, { event_type: 'agent.created', data: { agent_id: 'a1' }, priority: 'high' });
      await trigger(c, { event_type: 'agent.created', data: { agent_id: 'a2' }, priority: 'normal' });
      await trigger(c, { event_type: 'agent.created', data: { agent_id: 'a3' }, priority: 'normal' });
      // Disabling an endpoint holds its pending work (paused).
      await trigger(c, { event_type: 'agent.deleted', data: { agent_id: 'a4' } });
      assert.equal((await c.request('POST', `endpoints/${held.id}/disable`, {})).status, 200);
      const s = await eventually(
        async () => {
          const s = await read();
          return s.value('carteiro_queue_oldest_due_seconds') > 0 && s;
        },
        { what: 'due work to be late' },
      );
      assert.equal(s.value('carteiro_queue_due', { priority: 'high' }), 1);
      assert.equal(s.value('carteiro_queue_due', { priority: 'normal' }), 2);
      assert.equal(s.value('carteiro_queue_paused'), 1);
      assert.equal(s.value('carteiro_queue_processing'), 0);
      assert.equal(s.value('carteiro_endpoints_disabled'), 1);
      assert.equal(receiver.received.length, 0);
      assert.ok(ep.id);
    } finally {
      await receiver.close();
    }
  });
});
