/**
 * Requests without a valid key are limited per client address: past CARTEIRO_AUTH_FAILURES_PER_MINUTE
 * the address gets 429 with Retry-After for everything, before any key lookup; the budget is one
 * across API processes when Redis is there. Postgres and Redis with the URLs set, else embedded.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { REDIS_URL, startCarteiro, TEST_ADMIN_KEY, uniqueSchema, type TestCarteiro } from '../support/carteiro.ts';

// Well-formed (so it costs a lookup) and unknown.
const UNKNOWN_KEY = `ck_live_${'A'.repeat(43)}`;
const asUnknown = { authorization: `Bearer ${UNKNOWN_KEY}` };

describe('failed authentications per address', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro({ env: { CARTEIRO_AUTH_FAILURES_PER_MINUTE: '5' } });
  });
  after(async () => {
    await c?.stop();
  });

  test('the first failures are 401s; past the budget every request from the address is a 429 with Retry-After', async () => {
    for (let i = 0; i < 4; i++) assert.equal((await c.request('GET', 'endpoints', undefined, asUnknown)).status, 401);
    assert.equal((await c.request('GET', 'endpoints', undefined, { authorization: 'Basic nope' })).status, 401, 'a missing key counts too');
    const refused = await c.request('GET', 'endpoints', undefined, asUnknown);
    assert.equal(refused.status, 429);
    assert.match(refused.body.message, /without a valid API key/);
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `Retry-After ${refused.headers['retry-after']}`);
    // The address is held as a whole: even a valid key waits (telling keys apart would cost the lookup).
    assert.equal((await c.request('GET', 'endpoints', undefined, { authorization: `Bearer ${TEST_ADMIN_KEY}` })).status, 429);
    // Public routes are not behind the key check.
    assert.equal((await c.request('GET', 'health', undefined, {})).status, 200);
  });

  test('another address is not affected', async () => {
    const res = await c.app.inject({
      method: 'GET',
      url: '/api/webhooks/endpoints',
      remoteAddress: '127.0.0.2',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` },
    });
    assert.equal(res.statusCode, 200);
  });
});

describe('failed authentications across API processes', { skip: REDIS_URL ? false : 'needs REDIS_URL (the shared budget lives in Redis)' }, () => {
  let a: TestCarteiro;
  let b: TestCarteiro;
  before(async () => {
    // Two instances of one deployment: same schema, same Redis.
    const schema = uniqueSchema('af');
    a = await startCarteiro({ schema, env: { CARTEIRO_AUTH_FAILURES_PER_MINUTE: '5' } });
    b = await startCarteiro({ schema, env: { CARTEIRO_AUTH_FAILURES_PER_MINUTE: '5' } });
  });
  after(async () => {
    await b?.stop({ keepSchema: true });
    await a?.stop();
  });

  test('failures on one API process count on the other', async () => {
    for (let i = 0; i < 3; i++) assert.equal((await a.request('GET', 'endpoints', undefined, asUnknown)).status, 401);
    for (let i = 0; i < 2; i++) assert.equal((await b.request('GET', 'endpoints', undefined, asUnknown)).status, 401);
    assert.equal((await b.request('GET', 'endpoints', undefined, asUnknown)).status, 429);
    assert.equal((await a.request('GET', 'endpoints', undefined, asUnknown)).status, 429);
  });
});
