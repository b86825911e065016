/**
 * Delivery settings per endpoint (migration 0027): static headers reach the receiver with every
 * delivery, sealed in the ledger; a timeout override ends an attempt at the endpoint's deadline; a
 * retry override decides when a delivery is exhausted; bad settings are a 422 naming the field and
 * change nothing; null clears an override. Behaviour is read from the ledger (attempts, errors,
 * statuses), never from how long something took.
 *
 * The service here allows a 30 s timeout (so an attempt that ends at 1 s ended at the endpoint's
 * deadline), 3 retries 40 ms apart at first (the harness's fast policy), and delays up to 1 s.
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, trigger, eventually, settled, type TestCarteiro } from '../support/carteiro.ts';
import { startHangingReceiver, startReceiver, verifiesWithSeed, verifiesWithStandardWebhooks } from '../support/receiver.ts';
import { createOrgWithKey, withKey } from '../security/tenancy-helpers.ts';

type Attempt = { attempt_number: number; success: boolean; status_code: number | null; error: string | null; created_at: string };

describe('delivery settings per endpoint', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro({ env: { WEBHOOK_TIMEOUT_MS: '30000', CARTEIRO_LEASE_MS: '60000' } });
  });
  after(async () => c.stop());

  const endpointCount = async () =>
    (await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_endpoints WHERE kind = 'endpoint'`)[0]?.n;
  const storedSettings = async (id: string) =>
    (
      await c.services.ledger.sql<
        { headers: Record<string, string> | null; timeout_ms: number | null; max_retries: number | null; retry_base_delay_ms: number | null }[]
      >`
      SELECT headers, timeout_ms, max_retries, retry_base_delay_ms FROM webhook_endpoints WHERE id = ${id}`
    )[0];
  const attemptsOf = async (eventId: string): Promise<Attempt[]> => (await c.request('GET', `events/${eventId}/attempts`)).body.data;
  const finished = (eventId: string) =>
    eventually(
      async () => {
        const s = (await c.request('GET', `events/${eventId}/status`)).body;
        return s.status === 'completed' || s.status === 'failed' ? s : null;
      },
      { what: `event ${eventId} to finish` },
    );

  test('the receiver gets the static headers with every delivery, beside the signatures; the ledger keeps the values sealed', async (t: TestContext) => {
    const receiver = await startReceiver((_r, i) => ({ status: i === 0 ? 500 : 200 }));
    t.after(() => receiver.close());
    const ep = await createEndpoint(c, {
      url: receiver.url,
      events: ['user.updated'],
      headers: { Authorization: 'Bearer receiver-token-123', 'X-Tenant': 'acme' },
    });
    assert.deepEqual(ep.headers, { authorization: 'Bearer receiver-token-123', 'x-tenant': 'acme' }, 'the owner sees names (lower case) and values');

    const id = await trigger(c, { event_type: 'user.updated', data: { user_id: 'u-headers' } });
    assert.equal((await finished(id)).status, 'completed');
    assert.equal(receiver.received.length, 2, 'a failed attempt, then its retry');
    for (const r of receiver.received) {
      assert.equal(r.headers.authorization, 'Bearer receiver-token-123');
      assert.equal(r.headers['x-tenant'], 'acme');
      assert.ok(verifiesWithSeed(ep.secret, r) && verifiesWithStandardWebhooks(ep.secret, r), 'signed as always');
      assert.equal(r.headers['content-type'], 'application/json');
    }

    const stored = await storedSettings(ep.id);
    assert.deepEqual(Object.keys(stored?.headers ?? {}).sort(), ['authorization', 'x-tenant']);
    for (const value of Object.values(stored?.headers ?? {})) assert.match(value, /^enc:v1:/);
    assert.equal(JSON.stringify(stored).includes('receiver-token-123'), false, 'no value in the clear');
    assert.deepEqual((await c.request('GET', `endpoints/${ep.id}`)).body.headers, ep.headers);
    const preview = await c.request('POST', `endpoints/${ep.id}/transformation/preview`, { event_type: 'user.updated', data: { user_id: 'u-preview' } });
    assert.equal(preview.body.request.headers.authorization, 'Bearer receiver-token-123', 'the preview shows the request as sent');
  });

  test('a header Carteiro sets, or that is not a valid header, is a 422 naming it, and nothing is stored', async (t: TestContext) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const many = Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`X-H${i}`, 'v']));
    const refused: [Record<string, unknown>, string][] = [
      [{ headers: { Host: 'evil.example' } }, 'headers.Host'],
      [{ headers: { 'Content-Length': '1' } }, 'headers.Content-Length'],
      [{ headers: { 'Content-Type': 'text/plain' } }, 'headers.Content-Type'],
      [{ headers: { 'Transfer-Encoding': 'chunked' } }, 'headers.Transfer-Encoding'],
      [{ headers: { Connection: 'close' } }, 'headers.Connection'],
      [{ headers: { 'webhook-signature': 'v1,forged' } }, 'headers.webhook-signature'],
      [{ headers: { 'Webhook-Id': 'x' } }, 'headers.Webhook-Id'],
      [{ headers: { 'X-Webhook-Signature': 'sha256=forged' } }, 'headers.X-Webhook-Signature'],
      [{ headers: { 'User-Agent': 'me' } }, 'headers.User-Agent'],
      [{ headers: { traceparent: '00-x' } }, 'headers.traceparent'],
      [{ headers: { 'X-Foo': 'a\r\nX-Injected: 1' } }, 'headers.X-Foo'],
      [{ headers: { 'X-Bell': 'a\u0007b' } }, 'headers.X-Bell'], // (a NUL anywhere in a body is refused before: 400)
      [{ headers: { 'Bad Name': 'x' } }, 'headers.Bad Name'],
      [{ headers: { 'X-Big': 'a'.repeat(5000) } }, 'headers.X-Big'],
      [{ headers: { 'X-Twice': 'a', 'x-twice': 'b' } }, 'headers.x-twice'],
      [{ headers: many }, 'headers'],
      [{ timeout_ms: 500 }, 'timeout_ms'],
      [{ timeout_ms: 30_001 }, 'timeout_ms'],
      [{ max_retries: 4 }, 'max_retries'],
      [{ max_retries: -1 }, 'max_retries'],
      [{ retry_base_delay_ms: 5 }, 'retry_base_delay_ms'],
      [{ retry_base_delay_ms: 1_000_000 }, 'retry_base_delay_ms'],
    ];
    const before = await endpointCount();
    for (const [fields, field] of refused) {
      const res = await c.request('POST', 'endpoints', { name: 'refused', url: receiver.url, events: ['onboarding.completed'], ...fields });
      assert.equal(res.status, 422, `${field}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'CARTEIRO_INVALID_DELIVERY_SETTING');
      assert.equal(res.body.details.field, field);
      assert.ok(res.body.message.startsWith(`${field}: `), res.body.message);
      assert.equal(res.body.message.includes('forged') || res.body.message.includes('X-Injected'), false, 'the message never repeats a value');
    }
    assert.equal(await endpointCount(), before, 'no endpoint was created');

    // Changing an endpoint: a bad setting beside good ones changes none of them.
    const ep = await createEndpoint(c, { url: receiver.url, events: ['onboarding.completed'], headers: { 'X-Keep': 'kept' }, timeout_ms: 5000 });
    const storedBefore = await storedSettings(ep.id);
    const res = await c.request('PATCH', `endpoints/${ep.id}`, { name: 'renamed', timeout_ms: 2000, max_retries: 1, headers: { 'X-Webhook-Timestamp': '0' } });
    assert.equal(res.status, 422);
    assert.equal(res.body.details.field, 'headers.X-Webhook-Timestamp');
    assert.deepEqual(await storedSettings(ep.id), storedBefore);
    assert.equal((await c.request('GET', `endpoints/${ep.id}`)).body.name, 'test');
  });

  test("a timeout override ends a silent receiver's attempt at the endpoint's deadline, not the service's", async (t: TestContext) => {
    const receiver = await startHangingReceiver();
    t.after(() => receiver.close());
    const ep = await createEndpoint(c, { url: receiver.url, events: ['agent.updated'], timeout_ms: 1000, max_retries: 0 });
    assert.equal(ep.timeout_ms, 1000);
    const id = await trigger(c, { event_type: 'agent.updated', data: { agent_id: 'a-slow' } });
    const status = await finished(id);
    assert.equal(status.status, 'failed');
    const attempts = await attemptsOf(id);
    assert.equal(attempts.length, 1);
    assert.match(attempts[0]?.error ?? '', /timeout after 1000 ms/, "the endpoint's deadline, not WEBHOOK_TIMEOUT_MS (30000)");
  });

  test('a retry override exhausts a delivery after its own count of attempts', async (t: TestContext) => {
    const receiver = await startReceiver(() => ({ status: 503, body: 'down' }));
    t.after(() => receiver.close());
    const none = await createEndpoint(c, { url: `${receiver.url}/none`, events: ['agent.deleted'], max_retries: 0 });
    const one = await createEndpoint(c, { url: `${receiver.url}/one`, events: ['agent.deleted'], max_retries: 1 });
    const service = await createEndpoint(c, { url: `${receiver.url}/service`, events: ['agent.deleted'] });
    const id = await trigger(c, { event_type: 'agent.deleted', data: { agent_id: 'a-exhausted' } });
    const status = await finished(id);
    assert.equal(status.status, 'failed');
    const byEndpoint = new Map<string, Record<string, unknown>>(status.deliveries.map((d: { endpoint_id: string }) => [d.endpoint_id, d]));
    assert.deepEqual(byEndpoint.get(none.id), { ...byEndpoint.get(none.id), status: 'failed', attempts: 1 });
    assert.deepEqual(byEndpoint.get(one.id), { ...byEndpoint.get(one.id), status: 'failed', attempts: 2 });
    assert.deepEqual(byEndpoint.get(service.id), { ...byEndpoint.get(service.id), status: 'failed', attempts: 4 }, "the service's 3 retries");
    assert.match(String(byEndpoint.get(one.id)?.last_error), /gave up after 2 attempts/);
  });

  test("a base delay override spaces the endpoint's retries", async (t: TestContext) => {
    const receiver = await startReceiver((_r, i) => ({ status: i === 0 ? 500 : 200 }));
    t.after(() => receiver.close());
    await createEndpoint(c, { url: receiver.url, events: ['template.applied'], retry_base_delay_ms: 1000 });
    const id = await trigger(c, { event_type: 'template.applied', data: { template_id: 't-delay', agent_id: 'a-delay' } });
    await settled(c, { eventIds: [id] });
    const ledger = await c.services.ledger.sql<{ scheduled_ms: number }[]>`
      SELECT (extract(epoch FROM b.created_at - a.created_at) * 1000)::int AS scheduled_ms
        FROM webhook_deliveries a JOIN webhook_deliveries b ON b.dispatch_id = a.dispatch_id AND b.attempt_number = 2
       WHERE a.webhook_event_id = ${id} AND a.attempt_number = 1`;
    assert.equal(ledger.length, 1);
    // The service's first retry comes 40 ms after the failure; this endpoint's 1 s after (no jitter
    // here). Measured between the two attempts' records, which each trail their attempt by a flush.
    assert.ok((ledger[0]?.scheduled_ms ?? 0) >= 900, `retried ${ledger[0]?.scheduled_ms} ms after`);
  });

  test("null clears an override, and a PATCH of headers replaces them: the endpoint's deliveries follow", async (t: TestContext) => {
    const receiver = await startReceiver(() => ({ status: 503 }));
    t.after(() => receiver.close());
    const ep = await createEndpoint(c, {
      url: receiver.url,
      events: ['agent.created'],
      headers: { 'X-Old': 'old', 'X-Also-Old': 'old' },
      timeout_ms: 4000,
      max_retries: 0,
      retry_base_delay_ms: 500,
    });
    const replaced = await c.request('PATCH', `endpoints/${ep.id}`, { headers: { 'X-New': 'new' }, max_retries: null });
    assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
    assert.deepEqual(replaced.body.headers, { 'x-new': 'new' });
    assert.equal(replaced.body.max_retries, null);
    assert.equal(replaced.body.timeout_ms, 4000, 'fields not named are unchanged');
    assert.equal(replaced.body.retry_base_delay_ms, 500);

    const id = await trigger(c, { event_type: 'agent.created', data: { agent_id: 'a-cleared' } });
    assert.equal((await finished(id)).status, 'failed');
    const mine = receiver.received;
    assert.equal(mine.length, 4, "max_retries cleared: the service's 3 retries");
    assert.ok(mine.every((r) => r.headers['x-new'] === 'new' && r.headers['x-old'] === undefined));

    const cleared = await c.request('PATCH', `endpoints/${ep.id}`, { headers: null, timeout_ms: null, retry_base_delay_ms: null });
    assert.equal(cleared.status, 200);
    assert.deepEqual({ ...cleared.body }, { ...cleared.body, headers: null, timeout_ms: null, max_retries: null, retry_base_delay_ms: null });
    assert.deepEqual(await storedSettings(ep.id), { headers: null, timeout_ms: null, max_retries: null, retry_base_delay_ms: null });
  });

  test('an organization key and a portal session set and see the same settings, held to the same bounds', async (t: TestContext) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const org = await createOrgWithKey(c, 'Settings org');
    const asOrg = withKey(c, org.key);
    const byOrg = await asOrg('POST', 'endpoints', { name: 'org', url: receiver.url, events: ['user.registered'], headers: { 'X-Org': 'o' }, max_retries: 2 });
    assert.equal(byOrg.status, 201, JSON.stringify(byOrg.body));
    assert.deepEqual([byOrg.body.headers, byOrg.body.max_retries], [{ 'x-org': 'o' }, 2]);

    const session = (await asOrg('POST', 'portal/sessions', { user_id: 'settings-user', scope: 'manage' })).body;
    const asUser = (method: string, path: string, body?: unknown) => c.request(method, path, body, { authorization: `Bearer ${session.token}` });
    const mine = await asUser('POST', 'portal/endpoints', {
      name: 'mine',
      url: receiver.url,
      events: ['user.registered'],
      headers: { Authorization: 'Basic dXNlcjpwdw==' },
      timeout_ms: 2000,
    });
    assert.equal(mine.status, 201, JSON.stringify(mine.body));
    assert.deepEqual((await asUser('GET', `portal/endpoints/${mine.body.id}`)).body.headers, { authorization: 'Basic dXNlcjpwdw==' });
    const refused = await asUser('PATCH', `portal/endpoints/${mine.body.id}`, { headers: { 'Webhook-Signature': 'v1,x' } });
    assert.equal(refused.status, 422);
    assert.equal(refused.body.details.field, 'headers.Webhook-Signature');
    const tooPatient = await asUser('PATCH', `portal/endpoints/${mine.body.id}`, { timeout_ms: 60_000 });
    assert.equal(tooPatient.status, 422);
    assert.equal(tooPatient.body.details.field, 'timeout_ms');
  });
});
