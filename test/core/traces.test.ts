/**
 * OpenTelemetry traces, end to end: Carteiro exports to an OTLP collector stand-in on loopback (a
 * plain HTTP server taking POST /v1/traces JSON), events go in over real HTTP, deliveries land at a
 * loopback receiver. One trace must run from the ingest request (under the caller's span when it sent
 * a traceparent) through the commit to every delivery attempt, and each receiver must get its
 * attempt's traceparent. With tracing off, receivers get none and nothing is exported.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { createEndpoint, DATABASE_URL, eventually, settled, startCarteiro, TEST_ADMIN_KEY, type TestCarteiro } from '../support/carteiro.ts';
import { spawnCarteiro, type CarteiroProcess } from '../support/processes.ts';
import { startReceiver, verifiesWithStandardWebhooks, type TestReceiver } from '../support/receiver.ts';
import { SPAN_KIND, STATUS_ERROR, startOtlpCollector, type CollectedSpan, type TestCollector } from '../support/otlp-collector.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

const SUPABASE_SECRET = 'supabase-shared-secret-for-tests';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** A caller's span context, as a service in front of Carteiro would send it. */
function callerContext() {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-01` };
}

function parseTraceparent(value: unknown): { traceId: string; spanId: string; flags: string } {
  const m = typeof value === 'string' ? TRACEPARENT.exec(value) : null;
  assert.ok(m, `a W3C traceparent, not ${JSON.stringify(value)}`);
  return { traceId: m[1] as string, spanId: m[2] as string, flags: m[3] as string };
}

async function post(c: TestCarteiro, path: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${c.url}/api/webhooks/${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as any };
}

const one = (spans: CollectedSpan[], what: string, match: (s: CollectedSpan) => boolean): CollectedSpan => {
  const found = spans.filter(match);
  assert.equal(found.length, 1, `one ${what} span, got ${found.length}: ${JSON.stringify(spans.map((s) => s.name))}`);
  return found[0] as CollectedSpan;
};

/** The spans of a trace, once `count` of them have arrived (all of them, when the trace is over). */
const spansOfTrace = (collector: TestCollector, traceId: string, count: number) =>
  eventually(
    () => {
      const spans = collector.spans.filter((s) => s.traceId === traceId);
      return spans.length >= count && spans;
    },
    { what: `${count} spans of trace ${traceId} at the collector` },
  );

describe('traces, with tracing on', () => {
  let collector: TestCollector;
  let receiver: TestReceiver;
  let c: TestCarteiro;
  let endpoint: { id: string; secret: string };

  before(async () => {
    collector = await startOtlpCollector();
    // The first attempt of each event fails (500), its retry succeeds: two attempts per event.
    const failedOnce = new Set<string>();
    receiver = await startReceiver((req) => {
      const id = req.headers['webhook-id'] as string;
      if (failedOnce.has(id)) return { status: 200 };
      failedOnce.add(id);
      return { status: 500 };
    });
    c = await startCarteiro({
      listen: true,
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_SERVICE_NAME: 'carteiro-under-test',
        OTEL_BSP_SCHEDULE_DELAY: '50',
        SUPABASE_WEBHOOK_SECRET: SUPABASE_SECRET,
      },
    });
    endpoint = await createEndpoint(c, { url: `${receiver.url}/hooks`, events: ['payment.confirmed', 'user.registered'] });
  });
  after(async () => {
    await c.stop();
    await Promise.all([receiver.close(), collector.close()]);
  });

  const traceSpans = (traceId: string, count: number) => spansOfTrace(collector, traceId, count);

  test("the caller's trace runs through the ingest request and the commit to every delivery attempt; receivers get the attempt's traceparent", async () => {
    const caller = callerContext();
    const res = await post(
      c,
      'trigger',
      { event_type: 'payment.confirmed', data: { payment_id: 'p-1', user_id: 'u-1', amount: 42 } },
      { traceparent: caller.traceparent },
    );
    assert.equal(res.status, 202);
    const eventId: string = res.body.event_id;

    await settled(c, { eventIds: [eventId] });
    const deliveries = receiver.received.filter((r) => r.headers['webhook-id'] === eventId);
    assert.equal(deliveries.length, 2, 'a failed attempt and its retry');
    const sent = deliveries.map((r) => parseTraceparent(r.headers.traceparent));
    for (const t of sent) {
      assert.equal(t.traceId, caller.traceId, "the receiver is in the caller's trace");
      assert.equal(t.flags, '01', 'sampled, as the caller asked');
    }
    assert.notEqual(sent[0]?.spanId, sent[1]?.spanId, 'each attempt is a span of its own');
    // The header is outside what is signed: signatures verify as they did.
    for (const r of deliveries) assert.ok(verifiesWithStandardWebhooks(endpoint.secret, r), 'the signature verifies');

    const spans = await traceSpans(caller.traceId, 4);
    assert.equal(spans.length, 4, `ingest, commit and two attempts: ${JSON.stringify(spans.map((s) => s.name))}`);

    const ingest = one(spans, 'ingest request', (s) => s.name === 'POST /api/webhooks/trigger');
    assert.equal(ingest.kind, SPAN_KIND.server);
    assert.equal(ingest.parentSpanId, caller.spanId, "the caller's span is the ingest span's parent");
    assert.equal(ingest.attributes['http.request.method'], 'POST');
    assert.equal(ingest.attributes['http.route'], '/api/webhooks/trigger');
    assert.equal(ingest.attributes['http.response.status_code'], 202);
    assert.equal(ingest.attributes['carteiro.event.id'], eventId);
    assert.equal(ingest.attributes['carteiro.event.type'], 'payment.confirmed');
    assert.equal(ingest.resource['service.name'], 'carteiro-under-test');
    assert.equal(ingest.resource['carteiro.role'], 'all');

    const commit = one(spans, 'commit', (s) => s.name === 'ingest.commit');
    assert.equal(commit.parentSpanId, ingest.spanId, 'the commit is a child of the ingest request');
    assert.equal(commit.kind, SPAN_KIND.internal);
    assert.equal(commit.attributes['carteiro.event.id'], eventId);
    assert.equal(commit.attributes['carteiro.event.duplicates'], 0);

    // What the workers read back with their claims is the commit's context.
    const [row] = await c.services.ledger.sql<{ trace_context: string | null }[]>`SELECT trace_context FROM webhook_events WHERE id = ${eventId}`;
    assert.equal(row?.trace_context, `00-${caller.traceId}-${commit.spanId}-01`);

    const attempts = spans
      .filter((s) => s.name === 'delivery.attempt')
      .sort((a, b) => Number(a.attributes['carteiro.delivery.attempt']) - Number(b.attributes['carteiro.delivery.attempt']));
    assert.equal(attempts.length, 2);
    for (const [i, a] of attempts.entries()) {
      assert.equal(a.kind, SPAN_KIND.client);
      assert.equal(a.parentSpanId, commit.spanId, 'each attempt is a child of the commit');
      assert.equal(a.spanId, sent[i]?.spanId, "the receiver got this attempt's own span as its parent");
      assert.equal(a.attributes['carteiro.event.id'], eventId);
      assert.equal(a.attributes['carteiro.event.type'], 'payment.confirmed');
      assert.equal(a.attributes['carteiro.endpoint.id'], endpoint.id);
      assert.equal(a.attributes['carteiro.delivery.attempt'], i + 1);
      assert.equal(a.attributes['http.request.method'], 'POST');
      assert.equal(a.attributes['server.address'], '127.0.0.1');
      assert.equal(a.attributes['url.full'], undefined, 'the endpoint URL (it may hold a token) is not exported');
    }
    const [failed, retried] = attempts as [CollectedSpan, CollectedSpan];
    assert.equal(failed.attributes['http.response.status_code'], 500);
    assert.equal(failed.attributes['error.type'], '500');
    assert.equal(failed.attributes['carteiro.delivery.outcome'], 'retrying');
    assert.equal(failed.status.code, STATUS_ERROR);
    assert.equal(retried.attributes['http.response.status_code'], 200);
    assert.equal(retried.attributes['carteiro.delivery.outcome'], 'delivered');
    assert.equal(retried.attributes['http.request.resend_count'], 1);
    assert.notEqual(retried.status.code, STATUS_ERROR);

    // Exported as OTLP/HTTP JSON, to the traces path under the configured base.
    assert.ok(
      collector.requests.length > 0 &&
        collector.requests.every((r) => r.method === 'POST' && r.path === '/v1/traces' && r.contentType.startsWith('application/json')),
      JSON.stringify(collector.requests),
    );
  });

  test("without a usable traceparent a batch starts its own trace, and each of its events' deliveries joins it", async () => {
    const res = await post(
      c,
      'events/batch',
      {
        events: [
          { event_type: 'payment.confirmed', data: { payment_id: 'p-2', user_id: 'u-2', amount: 1 } },
          { event_type: 'user.registered', data: { user_id: 'u-3', email: 'u3@example.com', name: 'U3' } },
        ],
      },
      { traceparent: 'not-a-traceparent' },
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const eventIds: string[] = res.body.events.map((e: { event_id: string }) => e.event_id);
    await settled(c, { eventIds });

    const received = receiver.received.filter((r) => eventIds.includes(r.headers['webhook-id'] as string));
    assert.equal(received.length, 4, 'two attempts for each of the two events');
    const traceIds = new Set(received.map((r) => parseTraceparent(r.headers.traceparent).traceId));
    assert.equal(traceIds.size, 1, 'one trace for the whole batch');
    const [traceId] = traceIds as Set<string>;

    const spans = await traceSpans(traceId as string, 6);
    assert.equal(spans.length, 6, `ingest, commit and four attempts: ${JSON.stringify(spans.map((s) => s.name))}`);
    const ingest = one(spans, 'ingest request', (s) => s.name === 'POST /api/webhooks/events/batch');
    assert.equal(ingest.parentSpanId, '', 'a malformed traceparent is ignored: the ingest span is a root');
    assert.deepEqual(ingest.attributes['carteiro.event.ids'], eventIds);
    assert.equal(ingest.attributes['carteiro.event.count'], 2);
    const commit = one(spans, 'commit', (s) => s.name === 'ingest.commit');
    assert.equal(commit.parentSpanId, ingest.spanId);
    const attempts = spans.filter((s) => s.name === 'delivery.attempt');
    assert.equal(attempts.length, 4);
    for (const a of attempts) assert.equal(a.parentSpanId, commit.spanId);
    assert.deepEqual(new Set(attempts.map((a) => a.attributes['carteiro.event.id'])), new Set(eventIds));
    assert.deepEqual(new Set(attempts.map((a) => a.attributes['carteiro.event.type'])), new Set(['payment.confirmed', 'user.registered']));
  });

  test('a Supabase Database Webhook is an ingest request like the others: its trace reaches the deliveries', async () => {
    const caller = callerContext();
    const userId = randomUUID();
    const res = await fetch(`${c.url}/api/webhooks/supabase`, {
      method: 'POST',
      headers: { 'x-supabase-webhook-secret': SUPABASE_SECRET, 'content-type': 'application/json', traceparent: caller.traceparent },
      body: JSON.stringify({
        type: 'INSERT',
        table: 'users',
        schema: 'public',
        record: { id: userId, email: 'ana@example.com', name: 'Ana' },
        old_record: null,
      }),
    });
    assert.equal(res.status, 202);
    const eventId = ((await res.json()) as { event_id: string }).event_id;
    await settled(c, { eventIds: [eventId] });

    const spans = await traceSpans(caller.traceId, 4);
    const ingest = one(spans, 'ingest request', (s) => s.name === 'POST /api/webhooks/supabase');
    assert.equal(ingest.parentSpanId, caller.spanId);
    assert.equal(ingest.attributes['carteiro.event.type'], 'user.registered');
    const commit = one(spans, 'commit', (s) => s.name === 'ingest.commit');
    assert.equal(commit.parentSpanId, ingest.spanId);
    const attempts = spans.filter((s) => s.name === 'delivery.attempt');
    assert.equal(attempts.length, 2);
    for (const a of attempts) {
      assert.equal(a.parentSpanId, commit.spanId);
      assert.equal(a.attributes['carteiro.event.id'], eventId);
    }
  });

  test('a caller that does not sample its trace is followed: receivers get its trace unsampled, and nothing of it is exported', async () => {
    const unsampled = callerContext();
    const res = await post(
      c,
      'trigger',
      { event_type: 'payment.confirmed', data: { payment_id: 'p-u', user_id: 'u-u', amount: 5 } },
      { traceparent: unsampled.traceparent.replace(/-01$/, '-00') },
    );
    assert.equal(res.status, 202);
    await settled(c, { eventIds: [res.body.event_id] });
    const received = receiver.received.filter((r) => r.headers['webhook-id'] === res.body.event_id);
    assert.equal(received.length, 2);
    for (const r of received) {
      const t = parseTraceparent(r.headers.traceparent);
      assert.equal(t.traceId, unsampled.traceId);
      assert.equal(t.flags, '00');
    }
    // A sampled trace made afterwards: once its spans are exported, the unsampled ones, which ended
    // before them, would have been too (spans are exported in the order they end).
    const later = callerContext();
    const next = await post(
      c,
      'trigger',
      { event_type: 'payment.confirmed', data: { payment_id: 'p-s', user_id: 'u-s', amount: 6 } },
      { traceparent: later.traceparent },
    );
    await settled(c, { eventIds: [next.body.event_id] });
    await traceSpans(later.traceId, 4);
    assert.deepEqual(
      collector.spans.filter((s) => s.traceId === unsampled.traceId),
      [],
    );
  });

  test("a refused event is a span with the refusal's code, and nothing is committed", async () => {
    const caller = callerContext();
    const res = await post(c, 'trigger', { event_type: 'payment.confirmed', data: { amount: 'not a number' } }, { traceparent: caller.traceparent });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    const [ingest] = await traceSpans(caller.traceId, 1);
    assert.equal(ingest?.name, 'POST /api/webhooks/trigger');
    assert.equal(ingest?.attributes['http.response.status_code'], 422);
    assert.equal(ingest?.attributes['error.type'], res.body.code);
    // A client error is not the server's: the span is not marked as failed.
    assert.notEqual(ingest?.status.code, STATUS_ERROR);
    assert.equal(collector.spans.filter((s) => s.traceId === caller.traceId && s.name === 'ingest.commit').length, 0);
  });
});

describe('traces across processes', { skip: !DATABASE_URL && 'needs DATABASE_URL (an API and a worker process share one ledger)' }, () => {
  test('a `carteiro worker` process continues the trace the API stored with the event', async (t) => {
    const collector = await startOtlpCollector();
    const receiver = await startReceiver(() => ({ status: 200 }));
    t.after(() => Promise.all([receiver.close(), collector.close()]));
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '50' };
    const api = await startCarteiro({ role: 'api', listen: true, env: otel });
    let worker: CarteiroProcess | null = null;
    // The worker first: the API's stop drops the schema it works in.
    t.after(async () => {
      await worker?.kill();
      await api.stop();
    });
    worker = spawnCarteiro('worker', api.env);
    await createEndpoint(api, { url: `${receiver.url}/hooks`, events: ['payment.confirmed'] });

    const caller = callerContext();
    const res = await post(
      api,
      'trigger',
      { event_type: 'payment.confirmed', data: { payment_id: 'p-mp', user_id: 'u-mp', amount: 7 } },
      { traceparent: caller.traceparent },
    );
    assert.equal(res.status, 202);
    const [delivered] = await receiver.waitFor(1);
    assert.equal(parseTraceparent(delivered?.headers.traceparent).traceId, caller.traceId);

    const spans = await spansOfTrace(collector, caller.traceId, 3);
    const commit = one(spans, 'commit', (s) => s.name === 'ingest.commit');
    const attempt = one(spans, 'attempt', (s) => s.name === 'delivery.attempt');
    assert.equal(commit.resource['carteiro.role'], 'api');
    assert.equal(attempt.resource['carteiro.role'], 'worker');
    assert.notEqual(attempt.resource['service.instance.id'], commit.resource['service.instance.id']);
    assert.equal(attempt.parentSpanId, commit.spanId, "the worker's attempt is a child of the API's commit");
    assert.equal(attempt.attributes['carteiro.event.id'], res.body.event_id);
  });
});

describe('traces, with tracing off', () => {
  test('receivers get no traceparent, none is stored, and nothing is exported', async (t) => {
    const collector = await startOtlpCollector();
    const receiver = await startReceiver(() => ({ status: 200 }));
    t.after(() => Promise.all([receiver.close(), collector.close()]));
    // The endpoint is there, and OTEL_SDK_DISABLED turns it all off.
    const c = await startCarteiro({
      listen: true,
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_SDK_DISABLED: 'true', OTEL_BSP_SCHEDULE_DELAY: '50' },
    });
    let stopped = false;
    t.after(() => (stopped ? undefined : c.stop()));
    assert.equal(c.services.tracing, null);
    await createEndpoint(c, { url: `${receiver.url}/hooks`, events: ['payment.confirmed'] });

    const res = await post(
      c,
      'trigger',
      { event_type: 'payment.confirmed', data: { payment_id: 'p-off', user_id: 'u-off', amount: 3 } },
      { traceparent: callerContext().traceparent },
    );
    assert.equal(res.status, 202);
    const [delivered] = await receiver.waitFor(1);
    assert.equal(delivered?.headers['webhook-id'], res.body.event_id);
    assert.equal(delivered?.headers.traceparent, undefined);
    const [row] = await c.services.ledger.sql<{ trace_context: string | null }[]>`SELECT trace_context FROM webhook_events WHERE id = ${res.body.event_id}`;
    assert.equal(row?.trace_context, null);

    // A stop flushes whatever a tracer had queued: after it, silence at the collector is final.
    await c.stop();
    stopped = true;
    assert.deepEqual(collector.requests, []);
  });
});

describe('tracing configuration', () => {
  const base = { CARTEIRO_ADMIN_KEY: 'ck_admin_test_key_0123456789abcdef' };

  test('off unless an OTLP endpoint is set, and off with OTEL_SDK_DISABLED', () => {
    assert.equal(loadConfig(base).tracing, null);
    assert.equal(loadConfig({ ...base, OTEL_SERVICE_NAME: 'x' }).tracing, null);
    assert.equal(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318', OTEL_SDK_DISABLED: 'true' }).tracing, null);
  });

  test('the base endpoint gets /v1/traces; the traces endpoint is taken as is and wins', () => {
    assert.equal(loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing?.tracesUrl, 'http://collector:4318/v1/traces');
    assert.equal(
      loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'https://otel.example.com/otlp/' }).tracing?.tracesUrl,
      'https://otel.example.com/otlp/v1/traces',
    );
    const both = loadConfig({
      ...base,
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://traces:9999/custom',
    }).tracing;
    assert.equal(both?.tracesUrl, 'http://traces:9999/custom');
    assert.equal(both?.serviceName, 'carteiro');
    assert.equal(both?.exportDelayMs, 5000);
  });

  test('export headers are parsed as the specification writes them, trace-specific ones winning', () => {
    const tracing = loadConfig({
      ...base,
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
      OTEL_EXPORTER_OTLP_HEADERS: 'x-api-key=general, Authorization=Basic%20abc%3D',
      OTEL_EXPORTER_OTLP_TRACES_HEADERS: 'x-api-key=traces',
    }).tracing;
    assert.deepEqual(tracing?.headers, { 'x-api-key': 'traces', authorization: 'Basic abc=' });
  });

  test("bad values are refused at start, without echoing a header's value", () => {
    const refused = (env: Record<string, string>, pattern: RegExp) =>
      assert.throws(
        () => loadConfig({ ...base, ...env }),
        (err: unknown) => {
          assert.ok(err instanceof ConfigError);
          assert.match(err.message, pattern);
          return true;
        },
      );
    refused({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /OTEL_EXPORTER_OTLP_ENDPOINT/);
    refused({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://collector/v1/traces' }, /OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/);
    refused({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317', OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /not gRPC/);
    assert.throws(
      () => loadConfig({ ...base, OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_EXPORTER_OTLP_HEADERS: 'x-key=%E0%A4%A-secret-value' }),
      (err: unknown) => {
        assert.ok(err instanceof ConfigError);
        assert.match(err.message, /OTEL_EXPORTER_OTLP_HEADERS/);
        assert.doesNotMatch(err.message, /secret-value/);
        return true;
      },
    );
    // gRPC set for some other signal's sake does not matter while traces are off.
    assert.equal(loadConfig({ ...base, OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }).tracing, null);
  });
});
