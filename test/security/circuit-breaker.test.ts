/**
 * Circuit breaker: an endpoint whose deliveries keep failing is disabled with the reason recorded,
 * its pending deliveries are held, an `endpoint.disabled` webhook goes to the operations endpoint,
 * and enabling it resets the breaker and resumes what was held.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, trigger, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithSeed, verifiesWithStandardWebhooks, type TestReceiver } from '../support/receiver.ts';

const OPS_SECRET = 'whsec_b3BzLXNlY3JldC1mb3ItdGVzdHMtMTIzNDU2';
const OPERATIONS_ORG = '00000000-0000-7000-8000-00000000000f';
const DEFAULT_ORG = '00000000-0000-7000-8000-000000000000';

describe('circuit breaker', () => {
  let c: TestCarteiro;
  let ops: TestReceiver;
  let flaky: TestReceiver;
  let healthy = false;
  before(async () => {
    ops = await startReceiver();
    // Answers 200 to anything whose data says ok, or to everything once healthy; 500 otherwise.
    flaky = await startReceiver((r) => ({ status: healthy || JSON.parse(r.body).data?.agent_id === 'ok' ? 200 : 500 }));
    c = await startCarteiro({
      env: {
        CARTEIRO_CIRCUIT_BREAKER_FAILURES: '3',
        CARTEIRO_CIRCUIT_BREAKER_HOURS: '24',
        CARTEIRO_OPERATIONS_WEBHOOK_URL: `${ops.url}/ops`,
        CARTEIRO_OPERATIONS_WEBHOOK_SECRET: OPS_SECRET,
      },
    });
  });
  after(async () => {
    await c.stop();
    await Promise.all([ops.close(), flaky.close()]);
  });

  const endpoint = async (id: string) => (await c.request('GET', `endpoints/${id}`)).body;
  const finished = (id: string) =>
    eventually(
      async () => {
        const s = (await c.request('GET', `events/${id}/status`)).body.status;
        return s === 'failed' || s === 'completed' ? s : null;
      },
      { what: `event ${id} to finish` },
    );
  const opsEvents = () => ops.received.map((r) => JSON.parse(r.body));

  test('the operations endpoint is set up from config, in the operations organization, for the operational events', async () => {
    const rows = await c.services.ledger.sql<{ url: string; events: string[]; system_role: string; organization_id: string }[]>`
      SELECT url, events, system_role, organization_id FROM webhook_endpoints WHERE system_role IS NOT NULL`;
    assert.deepEqual(
      rows.map((r) => ({ ...r })),
      [
        {
          url: `${ops.url}/ops`,
          events: ['endpoint.disabled', 'endpoint.failing', 'endpoint.enabled'],
          system_role: 'operations',
          organization_id: OPERATIONS_ORG,
        },
      ],
    );
  });

  test('N deliveries in a row failing all retries warn (endpoint.failing), then disable the endpoint and notify operations', async () => {
    const ep = await createEndpoint(c, { url: `${flaky.url}/a`, events: ['agent.created'] });
    for (let i = 0; i < 3; i++) assert.equal(await finished(await trigger(c, { event_type: 'agent.created', data: { agent_id: `bad-${i}` } })), 'failed');

    const disabled = await eventually(
      async () => {
        const e = await endpoint(ep.id);
        return e.is_active ? null : e;
      },
      { what: 'the endpoint to be disabled' },
    );
    assert.match(disabled.disabled_reason, /^circuit breaker: 3 deliveries in a row failed after all retries$/);
    assert.equal(disabled.consecutive_failures, 3);

    const [note] = await eventually(
      () => {
        const n = opsEvents().filter((e) => e.data.endpoint_id === ep.id && e.type === 'endpoint.disabled');
        return n.length ? n : null;
      },
      { what: 'the endpoint.disabled webhook' },
    );
    assert.equal(note.type, 'endpoint.disabled');
    // Warned first: 3 deliveries × 4 attempts passed the 10 failed attempts in a row of the default.
    const [warning] = await eventually(
      () => {
        const n = opsEvents().filter((e) => e.data.endpoint_id === ep.id && e.type === 'endpoint.failing');
        return n.length ? n : null;
      },
      { what: 'the endpoint.failing webhook' },
    );
    assert.ok(warning.data.failed_attempts_in_row >= 10, JSON.stringify(warning.data));
    const order = await c.services.ledger.sql<{ event_type: string }[]>`
      SELECT event_type FROM webhook_events WHERE id IN (${warning.id}, ${note.id}) ORDER BY created_at, id`;
    assert.deepEqual(
      order.map((r) => r.event_type),
      ['endpoint.failing', 'endpoint.disabled'],
    );
    assert.equal(note.data.reason, disabled.disabled_reason);
    assert.equal(note.data.url, `${flaky.url}/a`);
    assert.equal(note.data.consecutive_failures, 3);
    assert.equal(note.data.enable_path, `/api/webhooks/endpoints/${ep.id}/enable`);
    const raw = ops.received.find((r) => JSON.parse(r.body).id === note.id)!;
    assert.ok(verifiesWithSeed(OPS_SECRET, raw) && verifiesWithStandardWebhooks(OPS_SECRET, raw), 'signed with the operations secret');
    const [system] = await c.services.ledger.sql<{ event_source: string }[]>`SELECT event_source FROM webhook_events WHERE id = ${note.id}`;
    assert.equal(system!.event_source, 'system');

    // Disabled: new events are not routed to it. Enabling resets the breaker.
    const afterDisable = await trigger(c, { event_type: 'agent.created', data: { agent_id: 'later' } });
    assert.equal(await finished(afterDisable), 'completed');
    assert.equal((await c.request('GET', `events/${afterDisable}/status`)).body.deliveries.length, 0);
    const enabled = await c.request('POST', `endpoints/${ep.id}/enable`);
    assert.equal(enabled.body.is_active, true);
    assert.equal(enabled.body.consecutive_failures, 0);
    assert.equal(enabled.body.failing_since, null);
    assert.equal(enabled.body.disabled_reason, null);
  });

  test("operational events stay out of every organization's sight, the default one included; the operations organization takes no keys", async () => {
    const note = await eventually(() => opsEvents().find((e) => e.type === 'endpoint.disabled') ?? null, { what: 'an endpoint.disabled webhook' });
    // A key of the default organization (an ordinary tenant) neither lists the event nor reads it.
    const made = await c.request('POST', `organizations/${DEFAULT_ORG}/keys`, { name: 'default-tenant' });
    assert.equal(made.status, 201);
    const asDefault = { authorization: `Bearer ${made.body.key}` };
    const listed = await c.request('GET', 'events?event_type=endpoint.disabled', undefined, asDefault);
    assert.equal(listed.status, 200);
    assert.deepEqual(listed.body.data, []);
    assert.equal((await c.request('GET', `events/${note.id}`, undefined, asDefault)).status, 404);
    // The admin reads it in the operations organization.
    const asOps = { 'x-organization-id': OPERATIONS_ORG };
    const admin = await c.request('GET', `events/${note.id}`, undefined, asOps);
    assert.equal(admin.status, 200);
    assert.equal(admin.body.organization_id, OPERATIONS_ORG);
    const refused = await c.request('POST', `organizations/${OPERATIONS_ORG}/keys`, { name: 'nope' });
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.match(refused.body.message, /operations organization takes no keys/);
    // Nor through the database.
    await assert.rejects(
      c.services.ledger.sql`INSERT INTO api_keys (organization_id, name, key_hash, prefix) VALUES (${OPERATIONS_ORG}, 'sql', 'h', 'p')`,
      /api_keys_not_for_operations/,
    );
  });

  test("a receiver's 410 Gone disables its endpoint at once and notifies operations too", async (t) => {
    const gone = await startReceiver(() => ({ status: 410 }));
    t.after(() => gone.close());
    const ep = await createEndpoint(c, { url: `${gone.url}/gone`, events: ['template.applied'] });
    await finished(await trigger(c, { event_type: 'template.applied', data: { template_id: 't1', agent_id: 'a1' } }));
    const e = await endpoint(ep.id);
    assert.equal(e.is_active, false);
    assert.match(e.disabled_reason, /410 Gone/);
    const [note] = await eventually(
      () => {
        const n = opsEvents().filter((x) => x.data.endpoint_id === ep.id);
        return n.length ? n : null;
      },
      { what: 'the endpoint.disabled webhook' },
    );
    assert.match(note.data.reason, /410 Gone/);
    assert.equal(e.next_probe_at, null, 'a receiver that said Gone is never probed');
  });

  test('a success resets the count', async () => {
    const ep = await createEndpoint(c, { url: `${flaky.url}/c`, events: ['agent.deleted'] });
    for (const agent of ['bad-1', 'bad-2', 'ok', 'bad-3', 'bad-4'])
      await finished(await trigger(c, { event_type: 'agent.deleted', data: { agent_id: agent } }));
    const e = await endpoint(ep.id);
    assert.equal(e.is_active, true);
    assert.equal(e.consecutive_failures, 2);
    assert.ok(e.failing_since, 'failing since the last success');
  });

  test('every attempt failing for the configured hours disables it; its deliveries are held and resume on enable', async () => {
    const ep = await createEndpoint(c, { url: `${flaky.url}/b`, events: ['agent.updated'] });
    // As if it had been failing for a day already.
    await c.services.ledger.sql`UPDATE webhook_endpoints SET failing_since = now() - interval '25 hours' WHERE id = ${ep.id}`;
    const ids = [
      await trigger(c, { event_type: 'agent.updated', data: { agent_id: 'x1' } }),
      await trigger(c, { event_type: 'agent.updated', data: { agent_id: 'x2' } }),
    ];
    const disabled = await eventually(
      async () => {
        const e = await endpoint(ep.id);
        return e.is_active ? null : e;
      },
      { what: 'the endpoint to be disabled' },
    );
    assert.match(disabled.disabled_reason, /^circuit breaker: every attempt failed for 24 h \(since \d{4}-\d\d-\d\dT/);
    const held = await eventually(
      async () => {
        const rows = await c.services.ledger.sql<{ status: string }[]>`SELECT status FROM webhook_dispatches WHERE webhook_endpoint_id = ${ep.id}`;
        return rows.length === 2 && rows.every((r) => r.status === 'paused') ? rows : null;
      },
      { what: 'both deliveries held' },
    );
    assert.equal(held.length, 2);
    await eventually(() => opsEvents().some((e) => e.data.endpoint_id === ep.id && e.type === 'endpoint.disabled'), { what: 'the endpoint.disabled webhook' });

    healthy = true;
    const enabled = await c.request('POST', `endpoints/${ep.id}/enable`);
    assert.equal(enabled.status, 200);
    for (const id of ids) assert.equal(await finished(id), 'completed');
    const e = await endpoint(ep.id);
    assert.equal(e.is_active, true);
    assert.equal(e.failing_since, null);
    assert.equal(e.consecutive_failures, 0);
  });
});

describe('self-healing: half-open probes and recovery', () => {
  let c: TestCarteiro;
  let ops: TestReceiver;
  let rx: TestReceiver;
  let healthy = false;
  before(async () => {
    ops = await startReceiver();
    rx = await startReceiver(() => ({ status: healthy ? 200 : 503 }));
    c = await startCarteiro({
      env: {
        CARTEIRO_CIRCUIT_BREAKER_FAILURES: '2',
        CARTEIRO_PROBE_COOLOFF_MS: '200',
        CARTEIRO_OPERATIONS_WEBHOOK_URL: `${ops.url}/ops`,
        CARTEIRO_OPERATIONS_WEBHOOK_SECRET: OPS_SECRET,
      },
    });
  });
  after(async () => {
    await c.stop();
    await Promise.all([ops.close(), rx.close()]);
  });

  const endpoint = async (id: string) => (await c.request('GET', `endpoints/${id}`)).body;
  const status = async (id: string) => (await c.request('GET', `events/${id}/status`)).body.status;

  test('a disabled endpoint is probed after a cool-off and re-enabled by itself when it answers; recover re-sends what it missed', async () => {
    const ep = await createEndpoint(c, { url: `${rx.url}/heal`, events: ['agent.created'] });
    const failed: string[] = [];
    for (let i = 0; i < 2; i++) {
      const id = await trigger(c, { event_type: 'agent.created', data: { agent_id: `f-${i}` } });
      failed.push(id);
      await eventually(async () => ((await status(id)) === 'failed' ? true : null), { what: `event ${id} to fail` });
    }
    const disabled = await eventually(
      async () => {
        const e = await endpoint(ep.id);
        return e.is_active ? null : e;
      },
      { what: 'the breaker to open' },
    );
    assert.equal(disabled.health, 'disabled');
    assert.ok(disabled.next_probe_at, 'a probe is scheduled');

    // Still failing: probes are tried and the endpoint stays disabled.
    await eventually(
      async () => {
        const [row] = await c.services.ledger.sql<
          { probes: number; is_active: boolean }[]
        >`SELECT probes, is_active FROM webhook_endpoints WHERE id = ${ep.id}`;
        return row!.probes >= 1 ? row : null;
      },
      { what: 'a first probe' },
    );
    assert.equal((await endpoint(ep.id)).is_active, false);

    // An event while disabled is not routed to it.
    const before = new Date(Date.now() - 1000).toISOString();
    const missed = await trigger(c, { event_type: 'agent.created', data: { agent_id: 'missed' } });
    await eventually(async () => ((await status(missed)) === 'completed' ? true : null), { what: 'the unrouted event to settle' });

    healthy = true;
    const enabled = await eventually(
      async () => {
        const e = await endpoint(ep.id);
        return e.is_active ? e : null;
      },
      { what: 'the probe to re-enable the endpoint' },
    );
    assert.equal(enabled.health, 'healthy');
    assert.equal(enabled.consecutive_failures, 0);
    assert.equal(enabled.next_probe_at, null);
    const note = await eventually(
      () => ops.received.map((r) => JSON.parse(r.body)).find((e) => e.type === 'endpoint.enabled' && e.data.endpoint_id === ep.id) ?? null,
      { what: 'the endpoint.enabled webhook' },
    );
    assert.equal(note.data.reason, 'a probe delivery succeeded');
    // The probe was one of the failed deliveries, sent again with its own webhook-id.
    assert.ok(rx.received.some((r) => r.headers['webhook-id'] === failed[1] || r.headers['webhook-id'] === failed[0]));

    // Recovery: what arrived while it was disabled is delivered when asked for, once.
    const bad = await c.request('POST', `endpoints/${ep.id}/recover`, { since: 'yesterday' });
    assert.equal(bad.status, 400);
    assert.match(bad.body.message, /since/);
    const recovered = await c.request('POST', `endpoints/${ep.id}/recover`, { since: before });
    assert.equal(recovered.status, 200, JSON.stringify(recovered.body));
    assert.equal(recovered.body.recovered, 1);
    assert.equal(recovered.body.truncated, false);
    await eventually(() => (rx.received.some((r) => r.headers['webhook-id'] === missed) ? true : null), { what: 'the missed event to be delivered' });
    assert.equal((await c.request('POST', `endpoints/${ep.id}/recover`, { since: before })).body.recovered, 0, 'a second recover queues nothing');
  });

  test('an endpoint disabled by hand is never probed', async () => {
    const ep = await createEndpoint(c, { url: `${rx.url}/manual`, events: ['agent.deleted'] });
    const off = await c.request('POST', `endpoints/${ep.id}/disable`, { reason: 'maintenance' });
    assert.equal(off.body.is_active, false);
    assert.equal(off.body.next_probe_at, null);
    const [row] = await c.services.ledger.sql<{ probe_at: Date | null }[]>`SELECT probe_at FROM webhook_endpoints WHERE id = ${ep.id}`;
    assert.equal(row!.probe_at, null);
  });
});
