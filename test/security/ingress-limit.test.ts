// Per-key request limits: over the limit is 429 with Retry-After; the limit is per key, holds across
// API processes through Redis (when there is one), leaves /health alone, and applies to the admin
// key only when configured to.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { REDIS_URL, DATABASE_URL, startCarteiro, type TestCarteiro } from '../support/carteiro.ts';
import { createOrgWithKey, withKey } from './tenancy-helpers.ts';

const started: { c: TestCarteiro; sharesSchema: boolean }[] = [];
after(async () => {
  // Stop the processes that joined another's schema first, without dropping it.
  for (const s of started.reverse()) await s.c.stop({ keepSchema: s.sharesSchema });
});

async function start(env: Record<string, string>, schema?: string): Promise<TestCarteiro> {
  const c = await startCarteiro({ env, ...(schema ? { schema } : {}) });
  started.push({ c, sharesSchema: schema !== undefined });
  return c;
}

/** Fires `n` requests at once and tallies the statuses. */
async function burst(send: () => Promise<{ status: number; body: unknown; headers: Record<string, unknown> }>, n: number) {
  const results = await Promise.all(Array.from({ length: n }, send));
  const ok = results.filter((r) => r.status === 200);
  const limited = results.filter((r) => r.status === 429);
  return { ok, limited, other: results.filter((r) => r.status !== 200 && r.status !== 429) };
}

test('a key over its rate gets 429 with Retry-After; another key and the admin key are unaffected; /health is never limited', async () => {
  const c = await start({ CARTEIRO_INGRESS_RATE_PER_SECOND: '5', CARTEIRO_INGRESS_BURST: '0' });
  const a = await createOrgWithKey(c, 'Limited A');
  const b = await createOrgWithKey(c, 'Limited B');
  const asA = withKey(c, a.key);

  const first = await burst(() => asA('GET', 'endpoints'), 15);
  assert.deepEqual(first.other, []);
  // A fixed one-second window: a burst that straddles two windows may get up to two windows' worth.
  assert.ok(first.ok.length >= 5 && first.ok.length <= 10, `ok ${first.ok.length}`);
  assert.ok(first.limited.length >= 5, `limited ${first.limited.length}`);
  const refused = first.limited[0] as { body?: { code?: string }; headers: Record<string, unknown> };
  assert.equal(refused.body?.code, 'CARTEIRO_RATE_LIMITED');
  assert.equal(refused.headers['retry-after'], '1'); // whole seconds, rounded up: the window is one second
  assert.equal(first.ok[0]!.headers['x-ratelimit-limit'], '5');

  // Another organization's key has its own budget; the admin key is not limited by default.
  assert.equal((await burst(() => withKey(c, b.key)('GET', 'endpoints'), 5)).ok.length >= 4, true);
  assert.equal((await burst(() => c.request('GET', 'endpoints'), 30)).ok.length, 30);
  const health = await Promise.all(Array.from({ length: 30 }, () => c.app.inject({ method: 'GET', url: '/api/webhooks/health' })));
  assert.ok(health.every((r) => r.statusCode !== 429));

  // After Retry-After the key works again.
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal((await asA('GET', 'endpoints')).status, 200);
});

test('the burst allowance absorbs a spike above the per-second rate, then runs out', async () => {
  const c = await start({ CARTEIRO_INGRESS_RATE_PER_SECOND: '2', CARTEIRO_INGRESS_BURST: '6' });
  const org = await createOrgWithKey(c, 'Bursty');
  const spike = await burst(() => withKey(c, org.key)('GET', 'endpoints'), 20);
  assert.ok(spike.ok.length >= 8 && spike.ok.length <= 10, `ok ${spike.ok.length}`); // 2 (+2 next window) + 6
  assert.ok(spike.limited.length >= 10);
});

test('the admin key is limited too when CARTEIRO_INGRESS_LIMIT_ADMIN is set', async () => {
  const c = await start({ CARTEIRO_INGRESS_RATE_PER_SECOND: '3', CARTEIRO_INGRESS_BURST: '0', CARTEIRO_INGRESS_LIMIT_ADMIN: 'true' });
  const r = await burst(() => c.request('GET', 'endpoints'), 12);
  assert.ok(r.limited.length >= 6, `limited ${r.limited.length}`);
});

test('CARTEIRO_INGRESS_RATE_PER_SECOND=0 turns the limit off', async () => {
  const c = await start({ CARTEIRO_INGRESS_RATE_PER_SECOND: '0' });
  const org = await createOrgWithKey(c, 'Unlimited');
  assert.equal((await burst(() => withKey(c, org.key)('GET', 'endpoints'), 40)).ok.length, 40);
});

test('with Redis the limit holds across API processes', {
  skip: !(REDIS_URL && DATABASE_URL) && 'needs REDIS_URL and DATABASE_URL (two processes sharing one ledger and one Redis)',
}, async () => {
  // 1 a second plus 5 per 10 s: in a quick run of requests a key gets about 6, whatever the timing.
  const env = { CARTEIRO_INGRESS_RATE_PER_SECOND: '1', CARTEIRO_INGRESS_BURST: '5' };
  const one = await start(env);
  const org = await createOrgWithKey(one, 'Shared');
  const two = await start(env, one.env.CARTEIRO_SCHEMA);
  const statuses: number[] = [];
  for (let i = 0; i < 16; i++) statuses.push((await withKey(i % 2 ? two : one, org.key)('GET', 'endpoints')).status);
  const ok = statuses.filter((s) => s === 200).length;
  // Per-process counters would let each process give 6 (12 in all); one shared budget gives 6, 7 at most.
  assert.ok(ok >= 6 && ok <= 7, `ok ${ok}: ${statuses.join(' ')}`);
  assert.ok(statuses.every((s) => s === 200 || s === 429));
});
