// The customer portal's API (docs/portal.md): sessions issued by an organization key for one user,
// that expire and can be revoked; a session token that acts only for its user, within its scope, and
// is refused everywhere else; another user's ids answering 404 with nothing changed; the endpoint
// quota; ingress limits per user id with an override; row level security as the second wall.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { eventually, startCarteiro, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithStandardWebhooks, type TestReceiver } from '../support/receiver.ts';
import type { TxSql } from '../../src/ledger/connection.ts';
import { createOrgWithKey, withKey, type TestOrg } from './tenancy-helpers.ts';

type Answer = { status: number; body: any; headers: Record<string, unknown> };

let c: TestCarteiro;
let receiver: TestReceiver;
let org: TestOrg;
let other: TestOrg;
const ROLE = `carteiro_portal_${randomBytes(4).toString('hex')}`;

before(async () => {
  receiver = await startReceiver(() => ({ status: 200, body: 'thanks from the receiver' }));
  c = await startCarteiro({ env: { CARTEIRO_INGRESS_RATE_PER_SECOND: '0', CARTEIRO_PUBLIC_URL: 'https://hooks.example.com/' } });
  org = await createOrgWithKey(c, 'Portal SaaS');
  other = await createOrgWithKey(c, 'Portal Other');
});

after(async () => {
  if (c) {
    await c.services.ledger.sql.unsafe(`DROP OWNED BY ${ROLE}`).catch(() => {});
    await c.services.ledger.sql.unsafe(`DROP ROLE IF EXISTS ${ROLE}`).catch(() => {});
    await c.stop();
  }
  await receiver?.close();
});

const asOrg = (o: TestOrg = org) => withKey(c, o.key);

async function issue(userId: string, extra: Record<string, unknown> = {}, o: TestOrg = org): Promise<{ id: string; token: string; [k: string]: any }> {
  const res = await asOrg(o)('POST', 'portal/sessions', { user_id: userId, ...extra });
  assert.equal(res.status, 201, JSON.stringify(res.body));
  return res.body;
}

function portal(token: string) {
  return (method: string, path: string, body?: unknown): Promise<Answer> => c.request(method, path, body, { authorization: `Bearer ${token}` });
}

/** A user with a manage session and one endpoint at the loopback receiver. */
async function userWithEndpoint(userId: string) {
  const session = await issue(userId, { scope: 'manage' });
  const as = portal(session.token);
  const created = await as('POST', 'portal/endpoints', { name: `${userId} hooks`, url: `${receiver.url}/${userId}`, events: ['user.*'] });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return { session, as, endpoint: created.body as { id: string; secret: string } };
}

test('a session is issued once with a token and a URL, listed without its token, and its token works on the portal', async () => {
  const s = await issue('customer-1', { scope: 'manage', ttl_seconds: 600, features: ['endpoints'] });
  assert.match(s.token, /^cp_sess_[A-Za-z0-9_-]{43}$/);
  assert.equal(s.url, `https://hooks.example.com/portal?token=${s.token}`);
  assert.equal(s.scope, 'manage');
  assert.equal(s.user_id, 'customer-1');
  assert.equal(s.organization_id, org.id);
  const lifetime = (Date.parse(s.expires_at) - Date.parse(s.created_at)) / 1000;
  assert.ok(lifetime > 590 && lifetime <= 600, `lifetime ${lifetime}`);

  const me = await portal(s.token)('GET', 'portal/session');
  assert.equal(me.status, 200);
  assert.deepEqual({ user: me.body.user_id, org: me.body.organization_id, scope: me.body.scope }, { user: 'customer-1', org: org.id, scope: 'manage' });

  const listed = await asOrg()('GET', 'portal/sessions?user_id=customer-1');
  assert.equal(listed.status, 200);
  assert.equal(listed.body.data.length, 1);
  assert.equal(JSON.stringify(listed.body).includes(s.token), false, 'a listing never shows a token');
  assert.equal(listed.body.data[0].prefix, s.token.slice(0, 14));
  // The ledger keeps a hash, not the token.
  const stored = await c.services.ledger.sql`SELECT token_hash FROM portal_sessions WHERE id = ${s.id}`;
  assert.notEqual(stored[0]?.token_hash, s.token);
  assert.equal(JSON.stringify(stored).includes(s.token), false);

  // Default: read scope, one hour.
  const d = await issue('customer-1');
  assert.equal(d.scope, 'read');
  assert.equal(Math.round((Date.parse(d.expires_at) - Date.parse(d.created_at)) / 1000), 3600);
  // The admin key issues for the organization it names.
  const byAdmin = await c.request('POST', 'portal/sessions', { user_id: 'customer-1' }, { 'x-organization-id': org.id });
  assert.equal(byAdmin.status, 201);
  assert.equal(byAdmin.body.organization_id, org.id);
});

test('bad session requests are refused naming the field, and nothing is stored', async () => {
  const before = await c.services.ledger.sql`SELECT count(*)::int AS n FROM portal_sessions`;
  for (const [body, field] of [
    [{}, 'user_id'],
    [{ user_id: 'u', ttl_seconds: 86_401 }, 'ttl_seconds'],
    [{ user_id: 'u', ttl_seconds: 10 }, 'ttl_seconds'],
    [{ user_id: 'u', scope: 'admin' }, 'scope'],
    [{ user_id: 'u', organization_id: other.id }, 'organization_id'],
  ] as const) {
    const res = await asOrg()('POST', 'portal/sessions', body);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.match(JSON.stringify(res.body), new RegExp(field));
  }
  const after = await c.services.ledger.sql`SELECT count(*)::int AS n FROM portal_sessions`;
  assert.equal(after[0]?.n, before[0]?.n);
});

test('a session carries a theme: stored, listed, read by the page from GET /portal/session; bad values are 422 naming the field', async () => {
  const logo = 'data:image/svg+xml;base64,' + Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"/>').toString('base64');
  const s = await issue('customer-theme', { theme: { mode: 'dark', primary_color: '#FF6600', logo_url: logo } });
  assert.deepEqual(s.theme, { mode: 'dark', primary_color: '#ff6600', logo_url: logo });
  assert.equal(s.url, `https://hooks.example.com/portal?token=${s.token}`, 'the theme travels with the session, not in the URL');
  const me = await portal(s.token)('GET', 'portal/session');
  assert.deepEqual(me.body.theme, { mode: 'dark', primary_color: '#ff6600', logo_url: logo });
  const listed = await asOrg()('GET', 'portal/sessions?user_id=customer-theme');
  assert.deepEqual(listed.body.data[0].theme, s.theme);
  const https = await issue('customer-theme', { theme: { logo_url: 'https://app.example.com/logo.svg' } });
  assert.deepEqual(https.theme, { logo_url: 'https://app.example.com/logo.svg' });
  // No theme (or an empty one): null, the page's defaults.
  assert.equal((await issue('customer-theme')).theme, null);
  assert.equal((await issue('customer-theme', { theme: {} })).theme, null);
  assert.equal((await portal((await issue('customer-theme')).token)('GET', 'portal/session')).body.theme, null);

  const before = await c.services.ledger.sql`SELECT count(*)::int AS n FROM portal_sessions`;
  for (const [theme, field] of [
    [{ mode: 'sepia' }, 'theme.mode'],
    [{ primary_color: 'orange' }, 'theme.primary_color'],
    [{ primary_color: '#f60' }, 'theme.primary_color'],
    [{ primary_color: '#ff6600;background:url(https://evil.example/x)' }, 'theme.primary_color'],
    [{ logo_url: 'http://app.example.com/logo.svg' }, 'theme.logo_url'],
    [{ logo_url: 'javascript:alert(1)' }, 'theme.logo_url'],
    [{ logo_url: 'https://user:pass@app.example.com/logo.svg' }, 'theme.logo_url'],
    [{ logo_url: 'data:text/html;base64,PHNjcmlwdD4=' }, 'theme.logo_url'],
    [{ logo_url: 'data:image/png;base64,' + 'A'.repeat(40_000) }, 'theme.logo_url'],
  ] as const) {
    const res = await asOrg()('POST', 'portal/sessions', { user_id: 'u', theme });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.code, 'CARTEIRO_INVALID_THEME');
    assert.equal(res.body.details.field, field, JSON.stringify(res.body));
    assert.match(res.body.message, new RegExp(`^${field.replace('.', '\\.')}: `));
  }
  const extra = await asOrg()('POST', 'portal/sessions', { user_id: 'u', theme: { font: 'Comic Sans' } });
  assert.equal(extra.status, 400);
  assert.equal(extra.body.details.field, 'body.theme.font');
  const after = await c.services.ledger.sql`SELECT count(*)::int AS n FROM portal_sessions`;
  assert.equal(after[0]?.n, before[0]?.n, 'nothing stored');
});

test('a revoked or expired session answers 401; another organization cannot revoke it', async () => {
  const s = await issue('customer-2', { scope: 'manage' });
  const as = portal(s.token);
  assert.equal((await as('GET', 'portal/endpoints')).status, 200);

  assert.equal((await asOrg(other)('DELETE', `portal/sessions/${s.id}`)).status, 404);
  assert.equal((await as('GET', 'portal/endpoints')).status, 200, "another organization's attempt changed nothing");

  const revoked = await asOrg()('DELETE', `portal/sessions/${s.id}`);
  assert.equal(revoked.status, 200);
  assert.ok(revoked.body.revoked_at);
  assert.equal(revoked.body.active, false);
  assert.equal((await as('GET', 'portal/endpoints')).status, 401);
  assert.equal((await asOrg()('DELETE', `portal/sessions/${randomUUID()}`)).status, 404);

  const e = await issue('customer-2');
  assert.equal((await portal(e.token)('GET', 'portal/session')).status, 200);
  await c.services.ledger.sql`
    UPDATE portal_sessions SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 second' WHERE id = ${e.id}`;
  const expired = await portal(e.token)('GET', 'portal/session');
  assert.equal(expired.status, 401);
  assert.equal(expired.body.code, 'CARTEIRO_UNAUTHORIZED');
  // A token of the right shape that was never issued.
  assert.equal((await portal(`cp_sess_${randomBytes(32).toString('base64url')}`)('GET', 'portal/session')).status, 401);
});

test('a portal token is refused (403) by every route that is not the portal’s, and keys are refused by the portal’s', async () => {
  const { session, endpoint } = await userWithEndpoint('customer-3');
  const as = portal(session.token);
  const outside: [string, string, unknown?][] = [
    ['GET', 'endpoints'],
    ['GET', `endpoints/${endpoint.id}`],
    ['POST', 'endpoints', { name: 'x', url: `${receiver.url}/x` }],
    ['POST', `endpoints/${endpoint.id}/test`, {}],
    ['GET', 'events'],
    ['POST', 'trigger', { event_type: 'user.registered', data: { user_id: 'customer-3', email: 'a@example.com', name: 'A' } }],
    ['POST', 'events/batch', { events: [{ event_type: 'user.registered', data: {} }] }],
    ['GET', 'event-types'],
    ['POST', 'event-types', { name: 'portal.planted' }],
    ['GET', 'organizations'],
    ['POST', `organizations/${org.id}/keys`, { name: 'minted' }],
    ['GET', 'audit-log'],
    ['GET', 'n8n/workflows'],
    ['POST', 'replay', {}],
    ['GET', 'stats'],
    ['GET', 'live'],
    ['GET', 'portal/sessions'],
    ['POST', 'portal/sessions', { user_id: 'someone-else', scope: 'manage' }],
    ['DELETE', `portal/sessions/${session.id}`],
    ['GET', 'user-limits'],
    ['PATCH', 'user-limits', { max_endpoints_per_user: 1000 }],
    ['DELETE', 'users/customer-3/data'],
  ];
  for (const [method, path, body] of outside) {
    const res = await as(method, path, body);
    assert.equal(res.status, 403, `${method} ${path}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.code, 'CARTEIRO_FORBIDDEN');
  }
  // An X-Organization-Id naming another organization is refused too.
  const named = await c.request('GET', 'portal/endpoints', undefined, { authorization: `Bearer ${session.token}`, 'x-organization-id': other.id });
  assert.equal(named.status, 403);
  // The session still works, and was not revoked by its own DELETE attempt.
  assert.equal((await as('GET', 'portal/endpoints')).status, 200);
  // The portal's routes are the sessions': a key is told so.
  assert.equal((await asOrg()('GET', 'portal/endpoints')).status, 403);
  assert.equal((await c.request('GET', 'portal/endpoints')).status, 403);
});

test('a manage session creates, edits, pauses, tests, rotates, replays, recovers and deletes its own endpoints', async () => {
  const { as, endpoint } = await userWithEndpoint('customer-4');
  assert.match(endpoint.secret, /^whsec_/);
  // The owner is the session's user, and a body cannot name another.
  const seen = await asOrg()('GET', `endpoints/${endpoint.id}`);
  assert.equal(seen.body.user_id, 'customer-4');
  const planted = await as('POST', 'portal/endpoints', { name: 'x', url: `${receiver.url}/x`, user_id: 'customer-5' });
  assert.equal(planted.status, 400);
  assert.match(planted.body.message, /user_id/);
  assert.equal((await as('PATCH', `portal/endpoints/${endpoint.id}`, { user_id: 'customer-5' })).status, 400);
  assert.equal((await as('PATCH', `portal/endpoints/${endpoint.id}`, { max_in_flight: 1000 })).status, 400);

  const listed = await as('GET', 'portal/endpoints');
  assert.deepEqual(
    listed.body.data.map((e: { id: string }) => e.id),
    [endpoint.id],
  );
  const edited = await as('PATCH', `portal/endpoints/${endpoint.id}`, { description: 'mine', events: ['user.*', 'webhook.*'] });
  assert.equal(edited.status, 200);
  assert.equal(edited.body.description, 'mine');

  // A test event reaches the receiver signed with the secret shown once; the portal shows what it answered.
  const before = receiver.received.length;
  const sent = await as('POST', `portal/endpoints/${endpoint.id}/test`, { message: 'hello' });
  assert.equal(sent.status, 202, JSON.stringify(sent.body));
  const [got] = (await receiver.waitFor(before + 1)).slice(before);
  assert.ok(got && verifiesWithStandardWebhooks(endpoint.secret, got), 'signed with the endpoint secret');
  const delivery = await eventually(
    async () => {
      const r = await as('GET', sent.body.deliveries_url);
      return r.body.data?.[0]?.status === 'succeeded' ? r.body.data[0] : null;
    },
    { what: 'the test delivery to succeed' },
  );
  const attempts = await as('GET', `portal/deliveries/${delivery.id}/attempts`);
  assert.equal(attempts.status, 200);
  assert.equal(attempts.body.data[0].status_code, 200);
  assert.equal(attempts.body.data[0].response_body, 'thanks from the receiver');
  assert.equal((await as('GET', `portal/endpoints/${endpoint.id}/attempts`)).body.data.length, 1);
  assert.equal((await as('GET', `portal/deliveries/${delivery.id}`)).body.event_id, sent.body.event_id);

  // Replay it.
  const replayed = await as('POST', `portal/deliveries/${delivery.id}/replay`);
  assert.equal(replayed.status, 202);
  await receiver.waitFor(before + 2);

  // Pause: a test is held; resume: it goes out.
  assert.equal((await as('POST', `portal/endpoints/${endpoint.id}/disable`)).body.is_active, false);
  const held = await as('POST', `portal/endpoints/${endpoint.id}/test`);
  assert.equal(held.body.paused, true);
  assert.equal((await as('POST', `portal/endpoints/${endpoint.id}/enable`)).body.is_active, true);
  await receiver.waitFor(before + 3);

  // Rotate: a new secret, once; the next delivery verifies with it.
  const rotated = await as('POST', `portal/endpoints/${endpoint.id}/rotate-secret`);
  assert.equal(rotated.status, 200);
  assert.notEqual(rotated.body.secret, endpoint.secret);
  assert.equal((await as('GET', `portal/endpoints/${endpoint.id}`)).body.secret, undefined);
  await as('POST', `portal/endpoints/${endpoint.id}/test`);
  const [afterRotation] = (await receiver.waitFor(before + 4)).slice(before + 3);
  assert.ok(afterRotation && verifiesWithStandardWebhooks(rotated.body.secret, afterRotation));

  // Recover: an event routed while paused is queued again.
  await as('POST', `portal/endpoints/${endpoint.id}/disable`);
  const missedAt = new Date(Date.now() - 1000).toISOString();
  const ingested = await asOrg()('POST', 'trigger', { event_type: 'user.registered', data: { user_id: 'customer-4', email: 'c4@example.com', name: 'C4' } });
  assert.equal(ingested.status, 202);
  await as('POST', `portal/endpoints/${endpoint.id}/enable`);
  const recovered = await as('POST', `portal/endpoints/${endpoint.id}/recover`, { since: missedAt });
  assert.equal(recovered.status, 200);
  assert.equal(recovered.body.recovered, 1);
  const badRecover = await as('POST', `portal/endpoints/${endpoint.id}/recover`, { since: 'yesterday' });
  assert.equal(badRecover.status, 400);
  assert.match(badRecover.body.message, /since/);

  // The catalog is there to pick from.
  const types = await as('GET', 'portal/event-types');
  assert.ok(types.body.data.some((t: { name: string }) => t.name === 'user.registered'));

  assert.equal((await as('DELETE', `portal/endpoints/${endpoint.id}`)).status, 204);
  assert.equal((await asOrg()('GET', `endpoints/${endpoint.id}`)).status, 404);
});

test("hostile user: with A's token, every id of B's (endpoints, deliveries, events, attempts, filters) is 404 and nothing changes", async () => {
  const a = await userWithEndpoint('hostile-a');
  const b = await userWithEndpoint('victim-b');
  const bTest = await b.as('POST', `portal/endpoints/${b.endpoint.id}/test`);
  const bDelivery = await eventually(
    async () => {
      const r = await b.as('GET', `portal/deliveries?event_id=${bTest.body.event_id}`);
      return r.body.data?.[0]?.status === 'succeeded' ? r.body.data[0] : null;
    },
    { what: "B's test delivery" },
  );
  // An endpoint of the organization with no owner, and one of another organization: as unknown to A.
  const unowned = (await asOrg()('POST', 'endpoints', { name: 'org-wide', url: `${receiver.url}/org` })).body;
  const foreign = (await asOrg(other)('POST', 'endpoints', { name: 'foreign', url: `${receiver.url}/foreign`, user_id: 'hostile-a' })).body;
  const snapshot = async () => c.services.ledger.sql`
    SELECT id, name, url, events, is_active, secret, description, updated_at FROM webhook_endpoints WHERE id IN (${b.endpoint.id}, ${unowned.id}, ${foreign.id}) ORDER BY id`;
  const dispatches = async () => c.services.ledger.sql`
    SELECT id, status, attempts, updated_at FROM webhook_dispatches WHERE webhook_endpoint_id IN (${b.endpoint.id}, ${unowned.id}, ${foreign.id}) ORDER BY id`;
  const endpointsBefore = await snapshot();
  const dispatchesBefore = await dispatches();
  const receivedBefore = receiver.received.length;

  for (const id of [b.endpoint.id, unowned.id, foreign.id]) {
    const probes: [string, string, unknown?][] = [
      ['GET', `portal/endpoints/${id}`],
      ['PATCH', `portal/endpoints/${id}`, { name: 'hijacked', url: `${receiver.url}/stolen` }],
      ['DELETE', `portal/endpoints/${id}`],
      ['POST', `portal/endpoints/${id}/disable`],
      ['POST', `portal/endpoints/${id}/enable`],
      ['POST', `portal/endpoints/${id}/rotate-secret`],
      ['POST', `portal/endpoints/${id}/test`],
      ['POST', `portal/endpoints/${id}/recover`, { since: '2000-01-01T00:00:00Z' }],
      ['GET', `portal/endpoints/${id}/attempts`],
    ];
    for (const [method, path, body] of probes) {
      const res = await a.as(method, path, body);
      assert.equal(res.status, 404, `${method} ${path}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'CARTEIRO_NOT_FOUND');
    }
  }
  for (const [method, path] of [
    ['GET', `portal/deliveries/${bDelivery.id}`],
    ['GET', `portal/deliveries/${bDelivery.id}/attempts`],
    ['POST', `portal/deliveries/${bDelivery.id}/replay`],
    // An event id or an endpoint id is not a delivery id either.
    ['GET', `portal/deliveries/${bTest.body.event_id}`],
    ['POST', `portal/deliveries/${b.endpoint.id}/replay`],
  ] as const) {
    const res = await a.as(method, path);
    assert.equal(res.status, 404, `${method} ${path}: ${JSON.stringify(res.body)}`);
  }
  // Filters naming B's endpoint or event find nothing.
  for (const q of [`endpoint_id=${b.endpoint.id}`, `event_id=${bTest.body.event_id}`, `endpoint_id=${foreign.id}`, 'status=succeeded']) {
    const res = await a.as('GET', `portal/deliveries?${q}`);
    assert.equal(res.status, 200);
    assert.ok(
      res.body.data.every((d: { endpoint_id: string }) => d.endpoint_id === a.endpoint.id),
      q,
    );
  }
  assert.deepEqual(
    (await a.as('GET', 'portal/endpoints')).body.data.map((e: { id: string }) => e.id),
    [a.endpoint.id],
  );

  assert.deepEqual(await snapshot(), endpointsBefore, "B's, the organization's and the other organization's endpoints are unchanged");
  assert.deepEqual(await dispatches(), dispatchesBefore, 'no delivery was queued, replayed or recovered');
  assert.equal(receiver.received.length, receivedBefore, 'nothing was sent');
});

test('a read session reads, and every write answers 403 with nothing changed', async () => {
  const owner = await userWithEndpoint('customer-6');
  const reader = portal((await issue('customer-6', { scope: 'read' })).token);
  assert.equal((await reader('GET', 'portal/endpoints')).body.data.length, 1);
  assert.equal((await reader('GET', `portal/endpoints/${owner.endpoint.id}`)).status, 200);
  assert.equal((await reader('GET', 'portal/deliveries')).status, 200);
  const before = await c.services.ledger.sql`SELECT * FROM webhook_endpoints WHERE id = ${owner.endpoint.id}`;
  const id = owner.endpoint.id;
  for (const [method, path, body] of [
    ['POST', 'portal/endpoints', { name: 'x', url: `${receiver.url}/x` }],
    ['PATCH', `portal/endpoints/${id}`, { name: 'renamed' }],
    ['DELETE', `portal/endpoints/${id}`],
    ['POST', `portal/endpoints/${id}/disable`],
    ['POST', `portal/endpoints/${id}/enable`],
    ['POST', `portal/endpoints/${id}/rotate-secret`],
    ['POST', `portal/endpoints/${id}/test`],
    ['POST', `portal/endpoints/${id}/recover`, { since: '2000-01-01T00:00:00Z' }],
    ['POST', `portal/deliveries/${randomUUID()}/replay`],
  ] as const) {
    const res = await reader(method, path, body);
    assert.equal(res.status, 403, `${method} ${path}`);
    assert.match(res.body.message, /read/);
  }
  assert.deepEqual(await c.services.ledger.sql`SELECT * FROM webhook_endpoints WHERE id = ${owner.endpoint.id}`, before);
  assert.equal((await owner.as('GET', 'portal/endpoints')).body.data.length, 1);
});

test('portal actions are in the audit log with the session as the actor', async () => {
  const { session, endpoint } = await userWithEndpoint('customer-7');
  const log = await c.request('GET', `audit-log?organization_id=${org.id}&actor=portal&target_id=${endpoint.id}`);
  assert.equal(log.status, 200);
  const entry = log.body.data.find((e: { action: string }) => e.action === 'portal.endpoints.create');
  assert.ok(entry, JSON.stringify(log.body.data));
  assert.deepEqual(entry.actor, { kind: 'portal', key_id: session.id, organization_id: org.id });
});

test('the endpoint quota: the organization default, then one user overridden; refusals are 422 naming the limit', async () => {
  const set = await asOrg()('PATCH', 'user-limits', { max_endpoints_per_user: 2 });
  assert.equal(set.status, 200);
  assert.equal(set.body.effective.max_endpoints_per_user, 2);
  const as = portal((await issue('quota-user', { scope: 'manage' })).token);
  const create = (n: number) => as('POST', 'portal/endpoints', { name: `q${n}`, url: `${receiver.url}/q${n}` });
  assert.equal((await create(1)).status, 201);
  assert.equal((await create(2)).status, 201);
  const refused = await create(3);
  assert.equal(refused.status, 422);
  assert.equal(refused.body.code, 'CARTEIRO_QUOTA_EXCEEDED');
  assert.equal(refused.body.details.limit, 'max_endpoints_per_user');
  assert.equal(refused.body.details.max_endpoints_per_user, 2);
  assert.match(refused.body.message, /limit is 2 endpoints per user/);
  // The organization key naming the same owner is held to the same quota.
  assert.equal((await asOrg()('POST', 'endpoints', { name: 'q', url: `${receiver.url}/q`, user_id: 'quota-user' })).status, 422);
  const count = async () => (await as('GET', 'portal/endpoints')).body.data.length;
  assert.equal(await count(), 2);

  const override = await asOrg()('PUT', 'user-limits/users/quota-user', { max_endpoints: 3 });
  assert.equal(override.status, 200);
  assert.equal(override.body.effective.max_endpoints, 3);
  assert.equal((await create(4)).status, 201);
  assert.equal((await create(5)).status, 422);
  // Back to the organization's default.
  assert.equal((await asOrg()('DELETE', 'user-limits/users/quota-user')).status, 204);
  assert.equal((await asOrg()('DELETE', 'user-limits/users/quota-user')).status, 404);
  assert.equal((await asOrg()('GET', 'user-limits/users/quota-user')).body.override, null);
  // Concurrent creations cannot overrun the quota.
  await asOrg()('PATCH', 'user-limits', { max_endpoints_per_user: 4 });
  const racing = portal((await issue('quota-racer', { scope: 'manage' })).token);
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => racing('POST', 'portal/endpoints', { name: `r${i}`, url: `${receiver.url}/r${i}` })));
  assert.equal(results.filter((r) => r.status === 201).length, 4);
  assert.equal(results.filter((r) => r.status === 422).length, 4);
  assert.equal((await asOrg()('PATCH', 'user-limits', { max_endpoints_per_user: -1 })).status, 400);
  await asOrg()('PATCH', 'user-limits', { max_endpoints_per_user: null });
});

test('ingress per user id: one user over its limit gets 429 naming it, another user of the organization is served, an override lifts it', async () => {
  const set = await asOrg()('PATCH', 'user-limits', { user_events_per_second: 3, user_events_burst: 0 });
  assert.equal(set.body.effective.user_events_per_second, 3);
  const send = (userId: string, how: 'top' | 'data' = 'top') =>
    asOrg()('POST', 'trigger', {
      event_type: 'user.registered',
      data: { user_id: userId, email: `${userId}@example.com`, name: userId },
      ...(how === 'top' ? { user_id: userId } : {}),
    });
  const noisy = await Promise.all(Array.from({ length: 10 }, () => send('noisy', 'data')));
  const accepted = noisy.filter((r) => r.status === 202).length;
  const limited = noisy.filter((r) => r.status === 429);
  // A fixed one-second window: a burst that straddles two windows may get two windows' worth.
  assert.ok(accepted >= 3 && accepted <= 6, `accepted ${accepted}`);
  assert.ok(limited.length >= 4, `limited ${limited.length}`);
  const refusal = limited[0]!;
  assert.equal(refusal.body.code, 'CARTEIRO_RATE_LIMITED');
  assert.match(refusal.body.message, /user "noisy" is over its limit of 3 events per second/);
  assert.deepEqual({ limit: refusal.body.details.limit, user: refusal.body.details.user_id }, { limit: 'user_events_per_second', user: 'noisy' });
  assert.ok(Number(refusal.headers['retry-after']) >= 1);

  // Another user of the same organization, and an event without a user, are served meanwhile.
  const quiet = await Promise.all(Array.from({ length: 3 }, () => send('quiet')));
  assert.deepEqual(
    quiet.map((r) => r.status),
    [202, 202, 202],
  );
  const anonymous = await asOrg()('POST', 'trigger', { event_type: 'webhook.test', data: {} });
  assert.notEqual(anonymous.status, 429);

  // A batch is counted per event and refused whole: nothing of it is stored.
  const batch = await asOrg()('POST', 'events/batch', {
    events: Array.from({ length: 5 }, (_, i) => ({
      event_type: 'user.registered',
      user_id: 'batcher',
      data: { user_id: 'batcher', email: `b${i}@example.com`, name: 'B' },
    })),
  });
  assert.equal(batch.status, 429);
  assert.match(batch.body.message, /user "batcher"/);
  assert.equal((await asOrg()('GET', 'events?user_id=batcher')).body.data.length, 0);

  // One user overridden: the noisy one may now send 50 a second.
  const override = await asOrg()('PUT', 'user-limits/users/noisy', { events_per_second: 50 });
  assert.equal(override.body.effective.events_per_second, 50);
  assert.equal(override.body.effective.events_burst, 0, 'the burst not overridden stays the organization default');
  const lifted = await Promise.all(Array.from({ length: 10 }, () => send('noisy')));
  assert.deepEqual(
    lifted.filter((r) => r.status !== 202).map((r) => r.status),
    [],
  );

  // Another organization has its own (unlimited) defaults.
  const elsewhere = await Promise.all(
    Array.from({ length: 10 }, () => asOrg(other)('POST', 'trigger', { event_type: 'webhook.test', user_id: 'noisy', data: {} })),
  );
  assert.ok(elsewhere.every((r) => r.status !== 429));
  await asOrg()('PATCH', 'user-limits', { user_events_per_second: null, user_events_burst: null });
  await asOrg()('DELETE', 'user-limits/users/noisy');
});

test('row level security is the second wall: a database session acting for a portal user sees and changes only that user’s rows', async () => {
  const a = await userWithEndpoint('rls-a');
  const b = await userWithEndpoint('rls-b');
  for (const u of [a, b]) {
    const t = await u.as('POST', `portal/endpoints/${u.endpoint.id}/test`);
    await eventually(async () => (await u.as('GET', `portal/deliveries?event_id=${t.body.event_id}`)).body.data?.[0]?.status === 'succeeded', {
      what: 'test delivery',
    });
  }
  const sql = c.services.ledger.sql;
  const schema = c.services.ledger.schema;
  await sql.unsafe(`CREATE ROLE ${ROLE} NOLOGIN`);
  await sql.unsafe(`GRANT USAGE ON SCHEMA "${schema}" TO ${ROLE}`);
  await sql.unsafe(`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "${schema}" TO ${ROLE}`);

  const rollback = new Error('rollback');
  const asPortalUser = async <T>(userId: string | null, fn: (tx: TxSql) => Promise<T>): Promise<T> => {
    let out: T;
    try {
      await sql.begin(async (tx) => {
        await tx`SELECT set_config('carteiro.organization_id', ${org.id}, true)`;
        if (userId !== null) await tx`SELECT set_config('carteiro.portal_user_id', ${userId}, true)`;
        await tx.unsafe(`SET LOCAL ROLE ${ROLE}`);
        out = await fn(tx);
        throw rollback;
      });
    } catch (err) {
      if (err !== rollback) throw err;
    }
    return out!;
  };

  const seen = await asPortalUser('rls-a', async (tx) => ({
    endpoints: (await tx`SELECT DISTINCT user_id FROM webhook_endpoints`).map((r) => r.user_id),
    dispatches: (await tx`SELECT DISTINCT webhook_endpoint_id AS id FROM webhook_dispatches`).map((r) => r.id),
    attempts: (await tx`SELECT DISTINCT webhook_endpoint_id AS id FROM webhook_deliveries`).map((r) => r.id),
    events: (
      await tx`SELECT count(*)::int AS n FROM webhook_events e WHERE NOT EXISTS (
      SELECT 1 FROM webhook_dispatches d WHERE d.webhook_event_id = e.id AND d.webhook_endpoint_id = ${a.endpoint.id})`
    )[0]?.n,
    ownEvents: (await tx`SELECT count(*)::int AS n FROM webhook_events`)[0]?.n,
    keys: (await tx`SELECT count(*)::int AS n FROM api_keys`)[0]?.n,
    sessions: (await tx`SELECT count(*)::int AS n FROM portal_sessions`)[0]?.n,
    audit: (await tx`SELECT count(*)::int AS n FROM audit_log`)[0]?.n,
    organizations: (await tx`SELECT count(*)::int AS n FROM organizations`)[0]?.n,
    catalog: (await tx`SELECT count(*)::int AS n FROM event_types`)[0]?.n,
  }));
  assert.deepEqual(seen.endpoints, ['rls-a']);
  assert.deepEqual(seen.dispatches, [a.endpoint.id]);
  assert.deepEqual(seen.attempts, [a.endpoint.id]);
  assert.equal(seen.events, 0, 'no event that was not routed to its endpoint');
  assert.ok((seen.ownEvents ?? 0) >= 1);
  assert.deepEqual([seen.keys, seen.sessions, seen.audit, seen.organizations], [0, 0, 0, 0]);

  // The organization's own session (no portal user) still sees both users: the wall is per portal user.
  const orgWide = await asPortalUser(null, async (tx) =>
    (await tx`SELECT DISTINCT user_id FROM webhook_endpoints WHERE user_id LIKE 'rls-%' ORDER BY 1`).map((r) => r.user_id),
  );
  assert.deepEqual(orgWide, ['rls-a', 'rls-b']);

  await asPortalUser('rls-a', async (tx) => {
    assert.equal((await tx`UPDATE webhook_endpoints SET name = 'hijacked' WHERE id = ${b.endpoint.id} RETURNING id`).length, 0);
    assert.equal((await tx`DELETE FROM webhook_dispatches WHERE webhook_endpoint_id = ${b.endpoint.id} RETURNING id`).length, 0);
    // Giving its endpoint away, or planting one for another user, is refused by WITH CHECK.
    await assert.rejects(tx`UPDATE webhook_endpoints SET user_id = 'rls-b' WHERE id = ${a.endpoint.id}`, /row-level security/);
  });
  await asPortalUser('rls-a', async (tx) => {
    await assert.rejects(
      tx`INSERT INTO webhook_endpoints (organization_id, user_id, name, url) VALUES (${org.id}, 'rls-b', 'planted', 'http://127.0.0.1:9/x')`,
      /row-level security/,
    );
  });
  await asPortalUser('rls-a', async (tx) => {
    await assert.rejects(tx`INSERT INTO event_types (organization_id, name) VALUES (${org.id}, 'portal.planted')`, /row-level security/);
  });
  const [row] = await sql`SELECT name FROM webhook_endpoints WHERE id = ${b.endpoint.id}`;
  assert.notEqual(row?.name, 'hijacked');
});

test("erasing a user's data ends its portal sessions and removes its limit overrides", async () => {
  const s = await issue('erased-user', { scope: 'manage' });
  assert.equal((await asOrg()('PUT', 'user-limits/users/erased-user', { max_endpoints: 5 })).status, 200);
  assert.equal((await portal(s.token)('GET', 'portal/session')).status, 200);
  assert.equal((await asOrg()('DELETE', 'users/erased-user/data')).status, 200);
  assert.equal((await portal(s.token)('GET', 'portal/session')).status, 401);
  assert.equal((await asOrg()('GET', 'user-limits/users/erased-user')).body.override, null);
  const left = await c.services.ledger.sql`SELECT count(*)::int AS n FROM portal_sessions WHERE user_id = 'erased-user'`;
  assert.equal(left[0]?.n, 0);
});

test('a portal user sets a transformation, a template and ordered delivery with the same checks as an organization key', async () => {
  const session = await issue('customer-code', { scope: 'manage' });
  const as = portal(session.token);
  const count = async () => (await asOrg()('GET', 'endpoints?limit=200')).body.data.filter((e: { user_id: string }) => e.user_id === 'customer-code').length;

  const broken = await as('POST', 'portal/endpoints', { name: 'x', url: `${receiver.url}/code`, transformation: 'function handler(webhook) { return webhook' });
  assert.equal(broken.status, 422, JSON.stringify(broken.body));
  assert.match(JSON.stringify(broken.body), /transformation/);
  assert.equal(await count(), 0, 'nothing created');

  const created = await as('POST', 'portal/endpoints', {
    name: 'slack',
    url: `${receiver.url}/code`,
    template: 'slack',
    fifo: true,
    fifo_on_exhausted: 'skip',
  });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.template, 'slack');
  assert.match(created.body.transformation, /handler/);
  assert.deepEqual({ fifo: created.body.fifo, on: created.body.fifo_on_exhausted }, { fifo: true, on: 'skip' });

  const badPatch = await as('PATCH', `portal/endpoints/${created.body.id}`, { transformation: 'not javascript at all (' });
  assert.equal(badPatch.status, 422, JSON.stringify(badPatch.body));
  assert.match(JSON.stringify(badPatch.body), /transformation/);
  const unchanged = await as('GET', `portal/endpoints/${created.body.id}`);
  assert.equal(unchanged.body.template, 'slack', 'the refused change changed nothing');

  const patched = await as('PATCH', `portal/endpoints/${created.body.id}`, { template: 'discord', fifo: false });
  assert.equal(patched.status, 200, JSON.stringify(patched.body));
  assert.equal(patched.body.template, 'discord');
  assert.equal(patched.body.fifo, false);
});
