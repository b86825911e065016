// The audit log: every management action — who (which key), what, when, from where — recorded before
// the response leaves, queryable (and filterable) by the admin only. Reads and event ingestion are not
// management actions and are not recorded.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { createOrgWithKey, withKey, type TestOrg } from './tenancy-helpers.ts';
import { auditActionFor } from '../../src/api/plugins/audit-trail.ts';
import { ConfigError, loadConfig } from '../../src/config/config.ts';

let c: TestCarteiro;
let receiver: TestReceiver;
let org: TestOrg;
let other: TestOrg;

type Entry = {
  id: string;
  action: string;
  actor: { kind: string; key_id: string | null; organization_id: string | null };
  organization_id: string | null;
  target_id: string | null;
  status_code: number;
  ip: string;
  user_agent: string | null;
  method: string;
  route: string;
  path: string;
  at: string;
};
const audit = async (query = ''): Promise<Entry[]> => {
  const res = await c.request('GET', `audit-log${query ? `?${query}` : ''}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body.data;
};

before(async () => {
  c = await startCarteiro({ env: { CARTEIRO_INGRESS_RATE_PER_SECOND: '0' } });
  receiver = await startReceiver();
  org = await createOrgWithKey(c, 'Audited');
  other = await createOrgWithKey(c, 'Other');
});
after(async () => {
  await c?.stop();
  await receiver?.close();
});

test('action names are derived from the route', () => {
  assert.equal(auditActionFor('POST', '/endpoints'), 'endpoints.create');
  assert.equal(auditActionFor('PATCH', '/endpoints/:id'), 'endpoints.update');
  assert.equal(auditActionFor('DELETE', '/endpoints/:id'), 'endpoints.delete');
  assert.equal(auditActionFor('POST', '/endpoints/:id/rotate-secret'), 'endpoints.rotate-secret');
  assert.equal(auditActionFor('POST', '/events/:id/replay'), 'events.replay');
  assert.equal(auditActionFor('POST', '/replay'), 'replay.create');
  assert.equal(auditActionFor('POST', '/event-types'), 'event-types.create');
  assert.equal(auditActionFor('DELETE', '/users/:user_id/data'), 'users.data.delete');
});

test('organization and key management by the admin is recorded, with the created ids as targets', async () => {
  const entries = await audit(`organization_id=${org.id}`);
  const created = entries.find((e) => e.action === 'organizations.keys.create');
  assert.ok(created, JSON.stringify(entries));
  assert.equal(created.target_id, org.keyId);
  assert.equal(created.actor.kind, 'admin');
  assert.equal(created.actor.key_id, null);
  assert.equal(created.status_code, 201);
  assert.equal(created.method, 'POST');
  assert.equal(created.route, '/api/webhooks/organizations/:id/keys');
  const orgCreated = (await audit('action=organizations.create')).find((e) => e.target_id === org.id);
  assert.ok(orgCreated);
  assert.equal(orgCreated.organization_id, org.id);
  // The key itself is nowhere in the log.
  const all = await c.request('GET', 'audit-log?limit=500');
  assert.ok(!JSON.stringify(all.body).includes(org.key));
});

test('every management action of an organization key is recorded with who, what, when and from where', async () => {
  const as = withKey(c, org.key);
  const t0 = new Date(Date.now() - 1000).toISOString();
  const ua = { 'user-agent': 'audit-test/1.0' };
  const ep = await as('POST', 'endpoints', { name: 'audited', url: `${receiver.url}/x`, events: ['user.registered'] }, ua);
  assert.equal(ep.status, 201);
  const id = ep.body.id;
  // The entry is there as soon as the response is: written before the response leaves.
  assert.ok((await audit(`target_id=${id}`)).some((e) => e.action === 'endpoints.create'));
  assert.equal((await as('PATCH', `endpoints/${id}`, { name: 'renamed' }, ua)).status, 200);
  assert.equal((await as('POST', `endpoints/${id}/disable`, { reason: 'maintenance' }, ua)).status, 200);
  assert.equal((await as('POST', `endpoints/${id}/enable`, {}, ua)).status, 200);
  assert.equal((await as('POST', `endpoints/${id}/rotate-secret`, {}, ua)).status, 200);
  assert.equal((await as('POST', 'event-types', { name: 'audited.thing' }, ua)).status, 201);
  const ev = await as('POST', 'trigger', { event_type: 'user.registered', data: { user_id: 'u', email: 'u@example.com', name: 'u' } }, ua);
  assert.equal(ev.status, 202);
  await receiver.waitFor(1);
  await eventually(async () => (await as('GET', `events/${ev.body.event_id}/status`)).body.status === 'completed', { what: 'the event completed' });
  assert.equal((await as('POST', `events/${ev.body.event_id}/replay`, {}, ua)).status, 202);
  const job = await as('POST', 'replay', { status: 'failed' }, ua);
  assert.equal(job.status, 202);
  assert.equal((await as('DELETE', `endpoints/${id}`, undefined, ua)).status, 204);

  const mine = await audit(`key_id=${org.keyId}&since=${encodeURIComponent(t0)}`);
  const actions = mine.map((e) => e.action).reverse(); // newest first in the log
  assert.deepEqual(actions, [
    'endpoints.create',
    'endpoints.update',
    'endpoints.disable',
    'endpoints.enable',
    'endpoints.rotate-secret',
    'event-types.create',
    'events.replay',
    'replay.create',
    'endpoints.delete',
  ]);
  for (const e of mine) {
    assert.equal(e.actor.kind, 'organization');
    assert.equal(e.actor.key_id, org.keyId);
    assert.equal(e.actor.organization_id, org.id);
    assert.equal(e.organization_id, org.id);
    assert.equal(e.user_agent, 'audit-test/1.0');
    assert.ok(e.ip, 'from where');
    assert.ok(!Number.isNaN(Date.parse(e.at)), 'when');
  }
  assert.equal(mine.find((e) => e.action === 'endpoints.delete')?.target_id, id);
  assert.equal(mine.find((e) => e.action === 'events.replay')?.target_id, ev.body.event_id);
  assert.equal(mine.find((e) => e.action === 'replay.create')?.target_id, job.body.job_id);
  assert.equal(mine.find((e) => e.action === 'endpoints.update')?.path, `/api/webhooks/endpoints/${id}`);
});

test('reads, event ingestion and malformed requests are not recorded; refusals at a target are', async () => {
  const as = withKey(c, other.key);
  const before = (await audit(`key_id=${other.keyId}`)).length;
  await as('GET', 'endpoints');
  await as('GET', 'stats');
  await as('POST', 'trigger', { event_type: 'user.registered', data: { user_id: 'u', email: 'u@example.com', name: 'u' } });
  await as('POST', 'events/batch', { events: [{ event_type: 'user.registered', data: { user_id: 'u', email: 'u@example.com', name: 'u' } }] });
  await as('POST', 'events/user-registered', { user_id: 'u', email: 'u@example.com', name: 'u' });
  await as('POST', 'endpoints', { name: 'x', url: 'http://127.0.0.1:9/x', bogus: 1 }); // 400
  assert.equal((await audit(`key_id=${other.keyId}`)).length, before);

  // Probing another organization's endpoint with a valid key is worth knowing about.
  const foreign = (await withKey(c, org.key)('POST', 'endpoints', { name: 'target', url: 'http://127.0.0.1:9/t' })).body.id;
  assert.equal((await as('DELETE', `endpoints/${foreign}`)).status, 404);
  assert.equal((await as('POST', 'organizations', { name: 'nope' })).status, 403);
  // Acting for another organization (X-Organization-Id) is refused by the key check itself.
  assert.equal((await as('POST', 'endpoints', { name: 'in', url: 'http://127.0.0.1:9/in' }, { 'x-organization-id': org.id })).status, 403);
  const after = await audit(`key_id=${other.keyId}`);
  assert.equal(after.length, before + 3);
  assert.deepEqual(
    after.slice(0, 3).map((e) => [e.action, e.status_code]),
    [
      ['endpoints.create', 403],
      ['organizations.create', 403],
      ['endpoints.delete', 404],
    ],
  );
  assert.equal(after[0]?.actor.organization_id, other.id);
  assert.equal(after[2]?.target_id, foreign);
});

test('the admin naming an organization that does not exist is refused (404) and recorded, attributed to no organization', async () => {
  const missing = '11111111-1111-7111-8111-111111111111';
  const res = await c.request('POST', 'endpoints', { name: 'nowhere', url: 'http://127.0.0.1:9/n' }, { 'x-organization-id': missing });
  assert.equal(res.status, 404);
  const [entry, ...more] = await audit(`target_id=${missing}`);
  assert.equal(more.length, 0);
  assert.equal(entry?.action, 'endpoints.create');
  assert.equal(entry?.status_code, 404);
  assert.equal(entry?.actor.kind, 'admin');
  assert.equal(entry?.actor.key_id, null);
  assert.equal(entry?.organization_id, null);
  assert.equal(entry?.path, '/api/webhooks/endpoints');
});

test('revoking a key is recorded; filters by action prefix, actor and time; pages newest first', async () => {
  const spare = await c.request('POST', `organizations/${org.id}/keys`, { name: 'spare' });
  assert.equal((await c.request('DELETE', `organizations/${org.id}/keys/${spare.body.id}`)).status, 200);
  const revoked = await audit('action=organizations.keys.revoke');
  assert.equal(revoked[0]?.target_id, spare.body.id);
  assert.equal(revoked[0]?.organization_id, org.id);

  const endpointActions = await audit('action=endpoints.*');
  assert.ok(endpointActions.length >= 6);
  assert.ok(endpointActions.every((e) => e.action.startsWith('endpoints.')));
  assert.ok((await audit('actor=admin')).every((e) => e.actor.kind === 'admin'));
  assert.deepEqual(await audit(`since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`), []);

  const page1 = await c.request('GET', 'audit-log?limit=3');
  assert.equal(page1.body.data.length, 3);
  const page2 = await c.request('GET', `audit-log?limit=3&cursor=${page1.body.next_cursor}`);
  assert.ok(page2.body.data[0].id < page1.body.data[2].id);
  assert.equal((await c.request('GET', 'audit-log?since=yesterday')).status, 400);
  assert.equal((await c.request('GET', 'audit-log?organization_id=nope')).status, 400);
  assert.equal((await c.request('GET', 'audit-log?bogus=1')).status, 400);
});

test('behind a trusted proxy the audit log records the client from X-Forwarded-For; otherwise the peer', async () => {
  const forwarded = { 'x-forwarded-for': '203.0.113.9' };
  const proxied = await startCarteiro({ env: { CARTEIRO_INGRESS_RATE_PER_SECOND: '0', CARTEIRO_TRUST_PROXY: 'loopback' } });
  try {
    const made = await proxied.request('POST', 'organizations', { name: 'Behind a proxy' }, forwarded);
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const log = await proxied.request('GET', `audit-log?target_id=${made.body.id}`);
    assert.equal(log.body.data[0]?.ip, '203.0.113.9', 'the client, as the trusted proxy reported it');
  } finally {
    await proxied.stop();
  }
  // Not configured (the default): the header is anyone's to write, so the peer's address is kept.
  const direct = await c.request('POST', 'organizations', { name: 'Direct' }, forwarded);
  assert.equal(direct.status, 201);
  const [entry] = await audit(`target_id=${direct.body.id}`);
  assert.equal(entry?.ip, '127.0.0.1');
});

test('CARTEIRO_TRUST_PROXY is validated at start, naming the variable', () => {
  const env = { CARTEIRO_ADMIN_KEY: 'ck_admin_test_key_0123456789abcdef' };
  assert.deepEqual(loadConfig({ ...env, CARTEIRO_TRUST_PROXY: '10.0.0.0/8, loopback' }).http.trustProxy, ['10.0.0.0/8', 'loopback']);
  assert.equal(loadConfig(env).http.trustProxy, false);
  assert.throws(
    () => loadConfig({ ...env, CARTEIRO_TRUST_PROXY: 'my-proxy' }),
    (err: Error) => err instanceof ConfigError && /CARTEIRO_TRUST_PROXY/.test(err.message),
  );
});
