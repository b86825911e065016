/**
 * Erasure on request: DELETE /users/:user_id/data removes the user's events (payloads, dispatches,
 * attempts and their response bodies) and own endpoints, cancels their pending deliveries, leaves
 * everyone else's data alone, and honours the caller's organization.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, trigger, eventually, testEnv, dropSchema, TEST_ADMIN_KEY, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { createOrgWithKey, withKey } from './tenancy-helpers.ts';
import { scrubLateAttempts } from '../../src/ledger/erasure.ts';
import { userPseudonymizer } from '../../src/protection/erasure-pseudonym.ts';
import { loadConfig } from '../../src/config/config.ts';
import { listMigrations } from '../../src/ledger/migrate.ts';
import { compose } from '../../src/runtime/compose.ts';
import { buildApp } from '../../src/api/app.ts';
import { createHmac, hkdfSync, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import pino from 'pino';

const OTHER_ORG = '0190aaaa-0000-7000-8000-00000000e4a5';
const DEFAULT_ORG = '00000000-0000-7000-8000-000000000000';

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
    await eventually(
      async () => (await sql()<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_event_id = ${ana3}`)[0]!.n === 1,
      { what: "the delivery of Ana's third event to the shared endpoint" },
    );

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
    assert.equal(await scrubLateAttempts(sql(), [erasedEvent, liveEvent], []), 1, "only the erased event's row goes");
    const [left] = await sql()<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_event_id = ${liveEvent} AND response_body = 'kept'`;
    assert.equal(left!.n, 1);
  });

  test('user ids are taken from the path as text (URL-encoded)', async () => {
    const id = await trigger(c, { event_type: 'onboarding.completed', data: { user_id: 'a/b c@x' } });
    const res = await c.request('DELETE', `users/${encodeURIComponent('a/b c@x')}/data`);
    assert.equal(res.status, 200);
    assert.equal(res.body.events_deleted, 1);
    assert.equal((await c.request('GET', `events/${id}`)).status, 404);
  });

  test('the audit log keeps the erasure (who, when, which organization) but names the user only by a keyed pseudonym', async () => {
    const user = 'eva@example.com';
    const pseudonym = userPseudonymizer(TEST_ADMIN_KEY)(user);
    await trigger(c, { event_type: 'onboarding.completed', data: { user_id: user } });
    // Entries that name the user, written before the erasure (as releases before migration 0017 wrote them).
    type Row = { id: string; path: string; target_id: string | null };
    const earlier = async (org: string, path: string, target: string) =>
      (
        await sql()<Row[]>`
      INSERT INTO audit_log (organization_id, actor_kind, action, method, route, path, target_id, status_code)
      VALUES (${org}, 'admin', 'users.data.delete', 'DELETE', '/api/webhooks/users/:user_id/data', ${path}, ${target}, 200)
      RETURNING id, path, target_id`
      )[0]!;
    const inDefault = await earlier(DEFAULT_ORG, '/api/webhooks/users/eva%40example.com/data', user);
    const inOther = await earlier(OTHER_ORG, '/api/webhooks/users/eva%40example.com/data', user);
    const lookalike = await earlier(DEFAULT_ORG, '/api/webhooks/users/eva%40example.com.br/data', 'eva@example.com.br');
    // Not about the user: the id only appears in its path.
    const inPathOnly = (
      await sql()<Row[]>`
      INSERT INTO audit_log (organization_id, actor_kind, action, method, route, path, target_id, status_code)
      VALUES (${DEFAULT_ORG}, 'admin', 'things.x.update', 'POST', '/api/webhooks/things/:id/x', ${`/api/webhooks/things/${user}/x`}, 'thing-1', 200)
      RETURNING id, path, target_id`
    )[0]!;
    // Migration 0017 gives such entries their subject; it is idempotent, so run it again for these rows.
    await sql().unsafe(listMigrations().find((m) => m.version === '0017')!.sql);
    const now = async (r: Row) => (await sql()<Row[]>`SELECT id, path, target_id FROM audit_log WHERE id = ${r.id}`)[0];

    const scoped = await c.request('DELETE', `users/${encodeURIComponent(user)}/data`, undefined, { 'x-organization-id': DEFAULT_ORG });
    assert.equal(scoped.status, 200);
    assert.equal(scoped.body.user_pseudonym, pseudonym);
    assert.equal(scoped.body.audit_entries_pseudonymized, 1);
    assert.deepEqual(await now(inDefault), { id: inDefault.id, path: `/api/webhooks/users/${pseudonym}/data`, target_id: pseudonym });
    assert.deepEqual(await now(inPathOnly), inPathOnly, 'an entry about something else is never rewritten');
    assert.deepEqual(await now(inOther), inOther, "another organization's entries stay until that organization's erasure");
    assert.deepEqual(await now(lookalike), lookalike, 'another user whose id merely contains this one');

    // The erasure's own entry, found by computing the pseudonym: who, when, which organization.
    const found = await c.request('GET', `audit-log?action=users.data.delete&target_id=${encodeURIComponent(pseudonym)}`);
    const entry = found.body.data.find((e: { request_id: string | null; status_code: number }) => e.status_code === 200 && e.request_id !== null);
    assert.ok(entry, JSON.stringify(found.body));
    assert.equal(entry.actor.kind, 'admin');
    assert.equal(entry.organization_id, DEFAULT_ORG);
    assert.equal(entry.path, `/api/webhooks/users/${pseudonym}/data`);
    assert.ok(!Number.isNaN(Date.parse(entry.at)));

    const everywhere = await c.request('DELETE', `users/${encodeURIComponent(user)}/data`);
    assert.equal(everywhere.body.audit_entries_pseudonymized, 1);
    const [left] = await sql()<{ n: number }[]>`
      SELECT count(*)::int AS n FROM audit_log
      WHERE subject_user = ${user} OR target_id = ${user} OR strpos(path, ${`/users/${encodeURIComponent(user)}/`}) > 0`;
    assert.equal(left!.n, 0, 'nothing in the audit log names the user');
  });

  test("a tenant's erasure cannot rewrite its audit trail: ids that are not the user's, or path words, touch no entry", async () => {
    const org = await createOrgWithKey(c, 'Rewriter');
    const asOrg = withKey(c, org.key);
    const ep = await asOrg('POST', 'endpoints', { name: 'mine', url: `${ok.url}/mine` });
    assert.equal(ep.status, 201);
    assert.equal((await asOrg('PATCH', `endpoints/${ep.body.id}`, { name: 'still mine' })).status, 200);
    // The admin's action on the tenant's endpoint: the tenant must not be able to touch its record.
    assert.equal((await c.request('POST', `endpoints/${ep.body.id}/rotate-secret`, {}, { 'x-organization-id': org.id })).status, 200);
    type Row = { id: string; path: string; target_id: string | null; route: string; action: string };
    const trail = async () => [...(await sql()<Row[]>`SELECT id, path, target_id, route, action FROM audit_log WHERE organization_id = ${org.id} ORDER BY id`)];
    const before = await trail();
    const aboutEndpoint = await c.request('GET', `audit-log?target_id=${ep.body.id}`);
    assert.equal(aboutEndpoint.body.data.length, 3, JSON.stringify(aboutEndpoint.body));

    for (const userId of [ep.body.id, 'endpoints', 'api', 'webhooks', org.id]) {
      const res = await asOrg('DELETE', `users/${userId}/data`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.audit_entries_pseudonymized, 0, `erasing "${userId}" rewrote entries`);
    }
    const after = await trail();
    assert.deepEqual(after.slice(0, before.length), before, 'every earlier entry is as it was');
    assert.equal((await c.request('GET', `audit-log?target_id=${ep.body.id}`)).body.data.length, 3);
  });
});

test('the pseudonym is the same for the same user id, and needs the admin key to compute', () => {
  const pseudonymize = userPseudonymizer(TEST_ADMIN_KEY);
  assert.equal(pseudonymize('eva'), pseudonymize('eva'));
  assert.notEqual(pseudonymize('eva'), pseudonymize('eve'));
  assert.notEqual(userPseudonymizer('ck_admin_another_key_0123456789abcdef')('eva'), pseudonymize('eva'));
  // What docs/security.md tells an operator to compute.
  const key = Buffer.from(hkdfSync('sha256', TEST_ADMIN_KEY, '', 'carteiro audit-log user pseudonym v1', 32));
  assert.equal(pseudonymize('eva'), `user-hmac:${createHmac('sha256', key).update('eva').digest('hex')}`);
});

test("the request log shows the erasure route's URL with the pseudonym, not the user id", async () => {
  const lines: string[] = [];
  const env = testEnv();
  const composed = await compose(loadConfig(env), 'api', { log: pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }) });
  const app = await buildApp(composed.services);
  try {
    const res = await app.inject({
      method: 'DELETE',
      url: `/api/webhooks/users/${encodeURIComponent('fe@example.com')}/data`,
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    });
    assert.equal(res.statusCode, 200);
    const incoming = lines.map((l) => JSON.parse(l)).find((l) => l.msg === 'incoming request');
    assert.equal(incoming?.req?.url, `/api/webhooks/users/${userPseudonymizer(TEST_ADMIN_KEY)('fe@example.com')}/data`);
    assert.ok(!lines.some((l) => l.includes('fe@example.com') || l.includes('fe%40example.com')), lines.join(''));
  } finally {
    await app.close();
    await composed.dispose();
    await dropSchema(env);
    if (env.CARTEIRO_DATA_DIR) rmSync(env.CARTEIRO_DATA_DIR, { recursive: true, force: true });
  }
});
