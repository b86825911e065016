import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../src/config/config.ts';
import { backoffDelayMs, endpointRetryPolicy, hasRetriesLeft, parseRetryAfterMs } from '../../src/delivery/retry-policy.ts';
import { decideOutcome } from '../../src/delivery/outcome.ts';

const seedPolicy = loadConfig({}).delivery.retry;

test("the default policy is the seed's: 5 retries, 30 s base doubling, 1 h cap, 30 s timeout", () => {
  assert.equal(seedPolicy.maxRetries, 5);
  assert.equal(seedPolicy.timeoutMs, 30_000);
  const noJitter = { ...seedPolicy, jitter: 0 };
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => backoffDelayMs(noJitter, n) / 1000),
    [30, 60, 120, 240, 480],
  );
  assert.equal(backoffDelayMs(noJitter, 20), 3_600_000, 'capped at max_delay');
});

test('jitter spreads delays within ±jitter of the nominal delay', () => {
  const p = { ...seedPolicy, jitter: 0.1 };
  assert.equal(
    backoffDelayMs(p, 1, () => 0),
    27_000,
  );
  assert.equal(
    backoffDelayMs(p, 1, () => 1),
    33_000,
  );
});

test('six attempts in all: the first plus five retries', () => {
  assert.equal(hasRetriesLeft(seedPolicy, 5), true);
  assert.equal(hasRetriesLeft(seedPolicy, 6), false);
});

test("an endpoint's overrides change the count and the first delay, never the shape, and never exceed the service's count", () => {
  assert.equal(endpointRetryPolicy(seedPolicy, { max_retries: null, retry_base_delay_ms: null }), seedPolicy, "no overrides: the service's own policy");
  const p = { ...endpointRetryPolicy(seedPolicy, { max_retries: 2, retry_base_delay_ms: 10_000 }), jitter: 0 };
  assert.deepEqual(
    [1, 2].map((n) => backoffDelayMs(p, n) / 1000),
    [10, 20],
  );
  assert.equal(hasRetriesLeft(p, 2), true);
  assert.equal(hasRetriesLeft(p, 3), false, 'three attempts in all');
  // Stored when the service allowed more: held to what it allows now.
  assert.equal(endpointRetryPolicy(seedPolicy, { max_retries: 50, retry_base_delay_ms: null }).maxRetries, 5);
});

test('Retry-After is read as seconds or as an HTTP date', () => {
  assert.equal(parseRetryAfterMs('7'), 7000);
  assert.equal(parseRetryAfterMs(new Date(Date.now() + 60_000).toUTCString())! > 55_000, true);
  assert.equal(parseRetryAfterMs('soon'), undefined);
  assert.equal(parseRetryAfterMs(undefined), undefined);
});

test('outcomes: 2xx delivers, 410 is gone, 429 waits at least Retry-After, exhaustion fails', () => {
  const p = { ...seedPolicy, jitter: 0 };
  const ctx = { attemptsThisRound: 1, destinationKind: 'endpoint' as const };
  const res = (statusCode: number, retryAfter?: string) => ({ kind: 'response' as const, statusCode, body: '', durationMs: 1, retryAfter });
  assert.deepEqual(decideOutcome(res(204), ctx, p), { kind: 'delivered' });
  assert.equal(decideOutcome(res(410), ctx, p).kind, 'gone');
  const limited = decideOutcome(res(429, '120'), ctx, p);
  assert.equal(limited.kind === 'retry' && limited.delayMs, 120_000);
  const plain = decideOutcome(res(500), ctx, p);
  assert.equal(plain.kind === 'retry' && plain.delayMs, 30_000);
  const last = decideOutcome(res(500), { ...ctx, attemptsThisRound: 6 }, p);
  assert.equal(last.kind, 'failed');
  const n8n = decideOutcome(res(404), { attemptsThisRound: 1, destinationKind: 'n8n' }, p);
  assert.match(n8n.kind === 'retry' ? n8n.reason : '', /n8n workflow inactive/);
  const network = decideOutcome({ kind: 'network-error', error: 'ECONNREFUSED: connect', durationMs: 1 }, ctx, p);
  assert.equal(network.kind, 'retry');
});
