/**
 * Erasure on request: DELETE /users/:user_id/data removes the user's events (payloads, dispatches,
 * attempts and their response bodies) and own endpoints, cancels their pending deliveries, leaves
 * everyone else's data alone, and honours the caller's organization.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, trigger, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { scrubLateAttempts } from '../../src/ledger/erasure.ts';
import { randomUUID } from 'node:crypto';

const OTHER_ORG = '0190aaaa-0000-7000-8000-00000000e4a5';

describe('erasure', () => {
  let c: TestCarteiro;
  let ok: TestReceiver;
  before(async () => {
    c = await startCarteiro();
    ok = await startReceiver(() => ({ status: 200, body: 'received for ana@example.com' }));
    await c.services.ledger.sql`INSERT INTO organizations (id, name) VALUES (${OTHER_ORG}, 'other') ON CONFLICT DO NOTHING`;
  });
  after(async () => {
    await c.stop();
    await ok.close();
  });

  const sql = () => c.services.ledger.sql;
  const waitStatus = (id: string, status: string) =>
    eventually(async () => ((await c.request('GET', `events/${id}/status`)).body.status === status ? true : null), { what: `${id} ${status}` });

  test("removes the user's events, attempts, own endpoints and pending deliveries, and reports it", async () => {
    await createEndpoint(c, { url: `${ok.url}/shared`, events: ['user.*', 'agent.*'] });
    // A disabled endpoint holds its deliveries as paused: erasure must cancel those.
    const held = await createEndpoint(c, { url: `${ok.url}/held`, events: ['user.*'] });
    // The user's own endpoint, with deliveries of someone else's event.
    const own = await createEndpoint(c, { url: `${ok.url}/own`, events: ['agent.created'], user_id: 'user-ana' });

    const ana1 = await trigger(c, { event_type: 'user.registered', data: { user_id: 'user-ana', email: 'ana@example.com', name: 'Ana' } });
    const ana2 = await trigger(c, { event_type: 'agent.updated', data: { agent_id: 'ag0', name: 'Ana S.' }, user_id: 'user-ana' });
    const bia = await trigger(c, { event_type: 'user.registered', data: { user_id: 'user-bia', email: 'bia@example.com' } });
    const agentOfBia = await trigger(c, { event_type: 'agent.created', data: { agent_id: 'ag1', user_id: 'user-bia' } });
    for (const id of [ana1, ana2, bia]) await waitStatus(id, 'completed');
    await waitStatus(agentOfBia, 'completed');

    // A delivery of Ana's held while `held` is disabled (as a disable does to pending work).
    await c.request('POST', `endpoints/${held.id}/disable`, { reason: 'maintenance' });
    const ana3 = await trigger(c, { event_type: 'user.updated', data: { user_id: 'user-ana', email: 'ana@new.example.com' } });
    await sql()`
      INSERT INTO webhook_dispatches (organization_id, webhook_event_id, webhook_endpoint_id, status)
      VALUES ('00000000-0000-7000-8000-000000000000', ${ana3}, ${held.id}, 'paused')`;
    await eventually(async () => (await sql()<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_event_id = ${ana3}`)[0]!.n === 1,
      { what: 'the delivery of Ana\'s third event to the shared endpoint' });

    const [before] = await sql()<{ attempts: number }[]>`
      SELECT count(*)::int AS attempts FROM webhook_deliveries WHERE webhook_event_id = ANY(${[ana1, ana2, ana3]}::uuid[]) OR webhook_endpoint_id = ${own.id}`;

    const res = await c.request('DELETE', 'users/user-ana/data');
    assert.equal(res.status, 200);
    assert.equal(res.body.user_id, 'user-ana');
    assert.equal(res.body.organization_id, null);
    assert.equal(res.body.events_deleted, 3);
    assert.equal(res.body.deliveries_cancelled, 1);
    assert.equal(res.body.endpoints_deleted, 1);
    assert.equal(res.body.attempts_deleted, before!.attempts);
    assert.ok(res.body.dispatches_deleted >= 4);

    const left = await sql()<{ t: string; n: number }[]>`
      SELECT 'events' AS t, count(*)::int AS n FROM webhook_events WHERE user_id = 'user-ana' OR id = ANY(${[ana1, ana2, ana3]}::uuid[])
      UNION ALL SELECT 'dispatches', count(*)::int FROM webhook_dispatches WHERE webhook_event_id = ANY(${[ana1, ana2, ana3]}::uuid[]) OR webhook_endpoint_id = ${own.id}
      UNION ALL SELECT 'attempts', count(*)::int FROM webhook_deliveries WHERE webhook_event_id = ANY(${[ana1, ana2, ana3]}::uuid[]) OR webhook_endpoint_id = ${own.id}
      UNION ALL SELECT 'endpoints', count(*)::int FROM webhook_endpoints WHERE user_id = 'user-ana' OR id = ${own.id}
      UNION ALL SELECT 'payloads', count(*)::int FROM webhook_events WHERE data::text LIKE '%user-ana%'`;
    assert.deepEqual(Object.fromEntries(left.map((r) => [r.t, r.n])), { events: 0, dispatches: 0, attempts: 0, endpoints: 0, payloads: 0 });

    // Bia's data is untouched (her agent event lost only its delivery to Ana's endpoint, and stays settled).
    assert.equal((await c.request('GET', `events/${bia}`)).status, 200);
    const agentStatus = await c.request('GET', `events/${agentOfBia}/status`);
    assert.equal(agentStatus.body.status, 'completed');
    assert.equal((await c.request('GET', `events/${ana1}`)).status, 404);

    const again = await c.request('DELETE', 'users/user-ana/data');
    assert.equal(again.status, 200);
    assert.equal(again.body.events_deleted, 0, 'erasing twice is harmless');
  });

  test("an organization's erasure stays inside that organization", async () => {
    await createEndpoint(c, { url: `${ok.url}/org`, events: ['onboarding.completed'] });
    const inDefault = await trigger(c, { event_type: 'onboarding.completed', data: { user_id: 'user-caio' } });
    const inOther = await trigger(c, { event_type: 'onboarding.completed', data: { user_id: 'user-caio' }, organization_id: OTHER_ORG });

    const scoped = await c.request('DELETE', 'users/user-caio/data', undefined, { 'x-organization-id': OTHER_ORG });
    assert.equal(scoped.status, 200);
    assert.equal(scoped.body.organization_id, OTHER_ORG);
    assert.equal(scoped.body.events_deleted, 1, JSON.stringify(scoped.body));
    assert.equal((await c.request('GET', `events/${inOther}`)).status, 404);
    assert.equal((await c.request('GET', `events/${inDefault}`)).status, 200);

    const all = await c.request('DELETE', 'users/user-caio/data');
    assert.equal(all.body.events_deleted, 1, JSON.stringify(all.body));
    assert.equal((await c.request('GET', `events/${inDefault}`)).status, 404);
  });

  test('an attempt a worker records after the erasure (it was in flight) is scrubbed afterwards', async () => {
    const erasedEvent = randomUUID();
    const liveEvent = await trigger(c, { event_type: 'onboarding.completed', data: { user_id: 'user-dora' } });
    await sql()`
      INSERT INTO webhook_deliveries (organization_id, webhook_event_id, attempt_number, success, response_body, delivery_duration_ms)
      VALUES ('00000000-0000-7000-8000-000000000000', ${erasedEvent}, 1, true, 'hello dora', 3),
             ('00000000-0000-7000-8000-000000000000', ${liveEvent}, 1, true, 'kept', 3)`;
    assert.equal(await scrubLateAttempts(sql(), [erasedEvent, liveEvent], []), 1, 'only the erased event\'s row goes');
    const [left] = await sql()<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_event_id = ${liveEvent} AND response_body = 'kept'`;
    assert.equal(left!.n, 1);
  });

  test('user ids are taken from the path as text (URL-encoded)', async () => {
    const id = await trigger(c, { event_type: 'onboarding.completed', data: { user_id: 'a/b c@x' } });
    const res = await c.request('DELETE', `users/${encodeURIComponent('a/b c@x')}/data`);
    assert.equal(res.status, 200);
    assert.equal(res.body.events_deleted, 1);
    assert.equal((await c.request('GET', `events/${id}`)).status, 404);
  });
});
