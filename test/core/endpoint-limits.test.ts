/**
 * Adaptive limits per endpoint (src/worker/endpoint-limits.ts), on a clock the test moves: additive
 * increase and multiplicative decrease, and contention control, which caps the busiest endpoints
 * while quiet claims are slow and lifts the cap when they are fast again or stop.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createEndpointLimits, slowLaneHoldMs } from '../../src/worker/endpoint-limits.ts';

function limitsAt(start: number, contention = { targetMs: 10, floor: 4 }) {
  let t = 1_000_000;
  const limits = createEndpointLimits(start, { afterFailures: 0, intervalMs: 0 }, () => t, contention);
  const limitOf = (id: string) => {
    const v = limits.view();
    const i = v.endpointIds.indexOf(id);
    return i < 0 ? undefined : v.limits[i];
  };
  return { limits, limitOf, advance: (ms: number) => (t += ms) };
}

/** `n` requests to the endpoint started and still in flight. */
function inFlight(limits: ReturnType<typeof createEndpointLimits>, id: string, n: number, cap = 256) {
  for (let i = 0; i < n; i++) limits.started(id, cap);
}

describe('endpoint limits', () => {
  test('a success raises the limit by one up to the cap; an overload halves it', () => {
    const { limits, limitOf } = limitsAt(8);
    inFlight(limits, 'a', 2, 10);
    limits.finished('a', 'ok', 10, false);
    assert.equal(limitOf('a'), 9);
    for (let i = 0; i < 5; i++) limits.finished('a', 'ok', 10, false);
    assert.equal(limitOf('a'), 10);
    limits.finished('a', 'overload', 10, false);
    assert.equal(limitOf('a'), 5);
  });

  test('successes that came back only after being parked raise the limit by one per round of the limit, not one each', () => {
    const { limits, limitOf } = limitsAt(8);
    const slowSuccess = () => {
      limits.started('slow', 256);
      limits.parked('slow');
      limits.finished('slow', 'ok', 256, true);
    };
    for (let i = 0; i < 7; i++) slowSuccess();
    assert.equal(limitOf('slow'), 8, 'seven slow answers are less than one round at limit 8');
    slowSuccess();
    assert.equal(limitOf('slow'), 9);
    for (let i = 0; i < 9; i++) slowSuccess();
    assert.equal(limitOf('slow'), 10, 'the next step takes a round of 9');
    // Prompt answers still raise it by one each, up to the cap.
    limits.started('slow', 12);
    limits.finished('slow', 'ok', 12, false);
    assert.equal(limitOf('slow'), 11);
    for (let i = 0; i < 40; i++) slowSuccess();
    assert.equal(limitOf('slow'), 14);
    limits.started('slow', 12);
    limits.finished('slow', 'ok', 12, false);
    assert.equal(limitOf('slow'), 12, 'never past the cap');
  });

  test('the slow lane holds an endpoint for its interval, doubling with each further failure, up to the maximum', () => {
    const lane = { afterFailures: 3, intervalMs: 1000, maxIntervalMs: 60_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 6, 7, 50].map((n) => slowLaneHoldMs(lane, n)),
      [1000, 2000, 4000, 8000, 32_000, 60_000, 60_000],
    );
    assert.equal(slowLaneHoldMs({ afterFailures: 3, intervalMs: 1000 }, 9), 1000, 'no maximum: a fixed interval');
    assert.equal(slowLaneHoldMs(lane, 10_000), 60_000, 'a long outage stays at the maximum');
    let t = 0;
    const limits = createEndpointLimits(8, lane, () => t);
    const fail = () => {
      limits.started('down', 256);
      limits.finished('down', 'overload', 256, false);
    };
    for (let i = 0; i < 3; i++) fail();
    assert.equal(limits.hasRoom('down', 256), false, 'held after the third failure');
    t += 999;
    assert.equal(limits.hasRoom('down', 256), false);
    t += 1;
    assert.equal(limits.hasRoom('down', 256), true, 'one attempt after the interval');
    fail();
    t += 1999;
    assert.equal(limits.hasRoom('down', 256), false, 'the fourth failure holds it twice as long');
    t += 1;
    assert.equal(limits.hasRoom('down', 256), true);
    limits.started('down', 256);
    limits.finished('down', 'ok', 256, false);
    assert.equal(limits.hasRoom('down', 256), true, 'a success ends the hold');
  });

  test('failures of requests already on their way when the hold began do not lengthen it', () => {
    let t = 0;
    const limits = createEndpointLimits(8, { afterFailures: 3, intervalMs: 1000, maxIntervalMs: 60_000 }, () => t);
    for (let i = 0; i < 8; i++) limits.started('burst', 256);
    for (let i = 0; i < 8; i++) limits.finished('burst', 'overload', 256, false);
    t += 1000;
    assert.equal(limits.hasRoom('burst', 256), true, 'eight refusals at once hold the endpoint for the first interval only');
    limits.started('burst', 256);
    limits.finished('burst', 'overload', 256, false);
    t += 1999;
    assert.equal(limits.hasRoom('burst', 256), false);
    t += 1;
    assert.equal(limits.hasRoom('burst', 256), true, 'the next failure after the hold doubles it');
  });

  test('a success while others of its requests wait parked grows the limit as a slow one does; an overload drops the credit', () => {
    const { limits, limitOf } = limitsAt(8);
    // A receiver that answers every other request at once and holds the rest.
    for (let i = 0; i < 4; i++) {
      limits.started('mixed', 1000);
      limits.parked('mixed');
    }
    for (let i = 0; i < 7; i++) {
      limits.started('mixed', 1000);
      limits.finished('mixed', 'ok', 1000, false);
    }
    assert.equal(limitOf('mixed'), 8, 'prompt answers beside parked requests count as slow ones');
    limits.started('mixed', 1000);
    limits.finished('mixed', 'ok', 1000, false);
    assert.equal(limitOf('mixed'), 9, 'one round of them adds one');
    // Slow credit gathered before an overload does not count after it.
    for (let i = 0; i < 8; i++) {
      limits.started('mixed', 1000);
      limits.finished('mixed', 'ok', 1000, false, true);
    }
    limits.started('mixed', 1000);
    limits.finished('mixed', 'overload', 1000, false);
    assert.equal(limitOf('mixed'), 4);
    limits.started('mixed', 1000);
    limits.finished('mixed', 'ok', 1000, false, true);
    assert.equal(limitOf('mixed'), 4, 'the credit starts again after a halving');
  });

  test('slow quiet claims cap the busiest endpoint, halving from what it has in flight, down to the floor; a quiet endpoint keeps its own limit', () => {
    const { limits, limitOf, advance } = limitsAt(8);
    inFlight(limits, 'drain', 64);
    for (let i = 0; i < 56; i++) limits.finished('drain', 'ok', 256, false); // limit 8 + 56 = 64, 8 left in flight
    inFlight(limits, 'drain', 56);
    inFlight(limits, 'quiet', 1);
    assert.equal(limitOf('drain'), 64);
    assert.equal(limits.contendedCap(), Infinity);

    limits.quietClaimed(25, ['quiet']);
    assert.equal(limits.contendedCap(), 32);
    assert.equal(limitOf('drain'), 32);
    assert.equal(limitOf('quiet'), 8);
    // At most one cut per interval: a burst of slow claims is one signal.
    limits.quietClaimed(25, ['quiet']);
    assert.equal(limits.contendedCap(), 32);
    advance(100);
    limits.quietClaimed(25, ['quiet']);
    assert.equal(limits.contendedCap(), 16);
    for (let i = 0; i < 5; i++) {
      advance(100);
      limits.quietClaimed(25, ['quiet']);
    }
    assert.equal(limits.contendedCap(), 4, 'never below the floor');
    assert.equal(limits.hasRoom('drain', 256), false, 'the drain, with 64 in flight, has no room under the cap');
    assert.equal(limits.hasRoom('quiet', 256), true);
  });

  test('quiet claims within the target raise the cap by one each; without quiet claims for a second it is lifted', () => {
    const { limits, limitOf, advance } = limitsAt(8);
    inFlight(limits, 'drain', 40);
    limits.quietClaimed(50, ['quiet']);
    assert.equal(limits.contendedCap(), 20);
    limits.quietClaimed(3, ['quiet']);
    limits.quietClaimed(3, ['quiet']);
    assert.equal(limits.contendedCap(), 22);
    advance(999);
    assert.equal(limits.contendedCap(), 22);
    advance(2);
    assert.equal(limits.contendedCap(), Infinity);
    assert.equal(limitOf('drain'), 8, 'the endpoint is back to its own (adaptive) limit');
  });

  test('a busy endpoint found idle for a moment is no quiet signal; the quiet endpoints are never capped', () => {
    const { limits, limitOf, advance } = limitsAt(8);
    // A lone endpoint at a steady rate: often idle between its events, but with the floor or more
    // in flight lately it is bulk, and its own waits never cap it.
    inFlight(limits, 'lone', 60);
    for (let i = 0; i < 52; i++) limits.finished('lone', 'ok', 256, false); // limit 60, 8 in flight
    limits.quietClaimed(50, ['lone']);
    assert.equal(limits.contendedCap(), Infinity);
    assert.equal(limitOf('lone'), 60);
    // A quiet endpoint waits: the bulk one is capped, the quiet one keeps its own limit.
    inFlight(limits, 'quiet', 1);
    inFlight(limits, 'lone', 52);
    limits.quietClaimed(50, ['quiet', 'lone']);
    assert.equal(limits.contendedCap(), 30);
    assert.equal(limitOf('lone'), 30);
    assert.equal(limitOf('quiet'), 8);
    assert.equal(limits.hasRoom('quiet', 256), true);
    assert.equal(limits.hasRoom('lone', 256), false);
    // No quiet endpoint sending: nothing is cut, whatever the waits.
    advance(2_000);
    assert.equal(limits.contendedCap(), Infinity);
  });

  test('with a target of 0 contention control is off', () => {
    const { limits } = limitsAt(8, { targetMs: 0, floor: 4 });
    inFlight(limits, 'drain', 100);
    limits.quietClaimed(10_000, ['quiet']);
    assert.equal(limits.contendedCap(), Infinity);
  });
});
