// Organizations and their API keys: shown once, stored hashed, revocable, with a last-used time;
// only the admin key manages them.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { startCarteiro, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { createOrgWithKey, withKey } from './tenancy-helpers.ts';

let c: TestCarteiro;
before(async () => {
  c = await startCarteiro({ env: { CARTEIRO_INGRESS_RATE_PER_SECOND: '0' } });
});
after(() => c?.stop());

test('an organization gets a key that is shown once, stored only as a SHA-256, and lets it in', async () => {
  const org = await c.request('POST', 'organizations', { name: 'Acme' });
  assert.equal(org.status, 201);
  assert.equal(org.body.name, 'Acme');

  const made = await c.request('POST', `organizations/${org.body.id}/keys`, { name: 'ci' });
  assert.equal(made.status, 201);
  assert.match(made.body.key, /^ck_live_[A-Za-z0-9_-]{43}$/);
  assert.equal(made.body.prefix, made.body.key.slice(0, 14));
  assert.equal(made.body.organization_id, org.body.id);

  // The ledger has the hash and the prefix, never the key.
  const [row] = await c.services.ledger.sql`SELECT * FROM api_keys WHERE id = ${made.body.id}`;
  assert.equal(row?.key_hash, createHash('sha256').update(made.body.key).digest('hex'));
  assert.ok(!JSON.stringify(row).includes(made.body.key));

  // Listing shows it without the key or its hash.
  const listed = await c.request('GET', `organizations/${org.body.id}/keys`);
  assert.equal(listed.status, 200);
  assert.equal(listed.body.data.length, 1);
  assert.equal(listed.body.data[0].key, undefined);
  assert.equal(listed.body.data[0].key_hash, undefined);
  assert.ok(!JSON.stringify(listed.body).includes(made.body.key));

  // The key works, acts for its organization only, and its first use is recorded.
  const as = withKey(c, made.body.key);
  const created = await as('POST', 'endpoints', { name: 'mine', url: 'http://127.0.0.1:9/hook' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.equal(created.body.organization_id, org.body.id);
  await eventually(
    async () => {
      const [k] = await c.services.ledger.sql`SELECT last_used_at FROM api_keys WHERE id = ${made.body.id}`;
      return k?.last_used_at;
    },
    { what: 'last_used_at' },
  );
});

test('last_used_at is written at most once a minute per key, not on every request', async () => {
  const org = await createOrgWithKey(c, 'Busy');
  const as = withKey(c, org.key);
  await as('GET', 'endpoints');
  const first = await eventually(async () => {
    const [k] = await c.services.ledger.sql<{ last_used_at: Date | null }[]>`SELECT last_used_at FROM api_keys WHERE id = ${org.keyId}`;
    return k?.last_used_at;
  });
  for (let i = 0; i < 20; i++) assert.equal((await as('GET', 'endpoints')).status, 200);
  await new Promise((r) => setTimeout(r, 50));
  const [k] = await c.services.ledger.sql<{ last_used_at: Date }[]>`SELECT last_used_at FROM api_keys WHERE id = ${org.keyId}`;
  assert.equal(k?.last_used_at.getTime(), first.getTime());
});

test('a revoked key is refused at once; other keys of the organization keep working', async () => {
  const org = await createOrgWithKey(c, 'Revokers');
  const second = await c.request('POST', `organizations/${org.id}/keys`, {});
  assert.equal(second.status, 201);
  assert.equal(second.body.name, 'default');
  const as = withKey(c, org.key);
  assert.equal((await as('GET', 'endpoints')).status, 200); // cached from here on

  const revoked = await c.request('DELETE', `organizations/${org.id}/keys/${org.keyId}`);
  assert.equal(revoked.status, 200);
  assert.equal(revoked.body.active, false);
  assert.ok(revoked.body.revoked_at);

  const refused = await as('GET', 'endpoints');
  assert.equal(refused.status, 401);
  assert.equal(refused.body.code, 'CARTEIRO_UNAUTHORIZED');
  assert.equal((await withKey(c, second.body.key)('GET', 'endpoints')).status, 200);

  // Revoking again is harmless and keeps the first time; the listing shows it inactive.
  const again = await c.request('DELETE', `organizations/${org.id}/keys/${org.keyId}`);
  assert.equal(again.status, 200);
  assert.equal(again.body.revoked_at, revoked.body.revoked_at);
  const listed = await c.request('GET', `organizations/${org.id}/keys`);
  assert.deepEqual(
    listed.body.data.map((k: { active: boolean }) => k.active),
    [false, true],
  );
});

test('keys that are unknown, malformed or of another shape are 401', async () => {
  for (const token of ['ck_live_' + 'A'.repeat(43), 'ck_live_short', 'nope', 'ck_admin_wrong_but_long_enough']) {
    const res = await withKey(c, token)('GET', 'endpoints');
    assert.equal(res.status, 401, token);
  }
  const none = await c.app.inject({ method: 'GET', url: '/api/webhooks/endpoints' });
  assert.equal(none.statusCode, 401);
  // /health needs no key.
  const health = await c.app.inject({ method: 'GET', url: '/api/webhooks/health' });
  assert.ok([200, 503].includes(health.statusCode));
});

test('only the admin key manages organizations, keys and reads the audit log: an organization key gets 403', async () => {
  const org = await createOrgWithKey(c, 'NotAdmin');
  const as = withKey(c, org.key);
  const calls: [string, string, unknown?][] = [
    ['POST', 'organizations', { name: 'x' }],
    ['POST', 'organizations', { bogus: true }], // refused before the body is even looked at
    ['GET', 'organizations'],
    ['GET', `organizations/${org.id}`],
    ['POST', `organizations/${org.id}/keys`, {}],
    ['GET', `organizations/${org.id}/keys`],
    ['DELETE', `organizations/${org.id}/keys/${org.keyId}`],
    ['GET', 'audit-log'],
  ];
  for (const [method, path, body] of calls) {
    const res = await as(method, path, body);
    assert.equal(res.status, 403, `${method} ${path}`);
    assert.equal(res.body.code, 'CARTEIRO_FORBIDDEN');
  }
  // The key was not revoked by its own attempt.
  assert.equal((await as('GET', 'endpoints')).status, 200);
});

test('organizations: listing pages, unknown ids are 404, bodies are strict', async () => {
  const a = await c.request('POST', 'organizations', { name: 'Page A' });
  const b = await c.request('POST', 'organizations', { name: 'Page B' });
  const page = await c.request('GET', 'organizations?limit=1');
  assert.equal(page.status, 200);
  assert.equal(page.body.data.length, 1);
  assert.ok(page.body.next_cursor);
  const all = await c.request('GET', 'organizations?limit=500');
  const ids = all.body.data.map((o: { id: string }) => o.id);
  assert.ok(ids.includes(a.body.id) && ids.includes(b.body.id) && ids.includes('00000000-0000-7000-8000-000000000000'));

  const missing = '01900000-0000-7000-8000-000000000000';
  assert.equal((await c.request('GET', `organizations/${missing}`)).status, 404);
  assert.equal((await c.request('POST', `organizations/${missing}/keys`, {})).status, 404);
  assert.equal((await c.request('GET', `organizations/${missing}/keys`)).status, 404);
  assert.equal((await c.request('DELETE', `organizations/${a.body.id}/keys/${missing}`)).status, 404);
  assert.equal((await c.request('GET', 'organizations/not-a-uuid')).status, 400);
  const extra = await c.request('POST', 'organizations', { name: 'x', plan: 'gold' });
  assert.equal(extra.status, 400);
  assert.equal(extra.body.details.field, 'body.plan');
  assert.equal((await c.request('POST', 'organizations', { name: '' })).status, 400);
  assert.equal((await c.request('POST', 'organizations', { name: 42 })).status, 400);
});

test("a key of one organization cannot revoke through another organization's path", async () => {
  const a = await createOrgWithKey(c, 'Owner A');
  const b = await createOrgWithKey(c, 'Owner B');
  // The admin names the wrong organization: 404, and the key still works.
  assert.equal((await c.request('DELETE', `organizations/${b.id}/keys/${a.keyId}`)).status, 404);
  assert.equal((await withKey(c, a.key)('GET', 'endpoints')).status, 200);
});

test('the admin naming an organization that does not exist gets 404, and nothing is stored for it', async () => {
  const ghost = '01900000-0000-7000-8000-00000000dead';
  const h = { 'x-organization-id': ghost };
  const data = { user_id: 'u', email: 'u@example.com', name: 'n' };
  const calls: [string, string, unknown, Record<string, string>][] = [
    ['POST', 'endpoints', { name: 'x', url: 'http://127.0.0.1:9/x' }, h],
    ['POST', 'event-types', { name: 'ghost.type' }, h],
    ['POST', 'trigger', { event_type: 'user.registered', data }, h],
    ['GET', 'endpoints', undefined, h],
    ['POST', 'trigger', { event_type: 'user.registered', organization_id: ghost, data }, {}],
    ['POST', 'events/batch', { events: [{ event_type: 'user.registered', organization_id: ghost, data }] }, {}],
  ];
  for (const [method, path, body, headers] of calls) {
    const res = await c.request(method, path, body, headers);
    assert.equal(res.status, 404, `${method} ${path}: ${JSON.stringify(res.body)}`);
  }
  const [row] = await c.services.ledger.sql<{ n: number }[]>`
    SELECT (SELECT count(*) FROM webhook_events WHERE organization_id = ${ghost}) + (SELECT count(*) FROM webhook_endpoints WHERE organization_id = ${ghost}) AS n`;
  assert.equal(Number(row?.n), 0);
  // A real organization named the same ways works.
  const org = await c.request('POST', 'organizations', { name: 'Real' });
  assert.equal((await c.request('POST', 'trigger', { event_type: 'user.registered', data }, { 'x-organization-id': org.body.id })).status, 202);
  assert.equal((await c.request('POST', 'trigger', { event_type: 'user.registered', organization_id: org.body.id, data })).status, 202);
});
