/**
 * The sandbox pool's verdict on a run it stops by force. Its thread's WebAssembly memory never
 * shrinks, so a run that an earlier one left large (a hog stopped inside QuickJS, below the cap) must
 * still be told apart: a loop inside a built-in allocates nothing, and is a timeout.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSandboxPool } from '../../src/delivery/transformation/sandbox-pool.ts';

const HOGS = "function handler(webhook) { const kept = []; for (;;) kept.push('x'.repeat(65536) + kept.length); }";
const LOOPS_IN_BUILTIN = 'function handler(webhook) { return Array.prototype.indexOf.call({ length: 2 ** 52 }, 1); }';
const INPUT = '{"event_type":"a.b","event_id":"0","timestamp":"1970-01-01T00:00:00.000Z","data":{},"headers":{},"path":null,"cancel":false}';

test('a loop inside a built-in, on a thread a hog left large, is stopped as a timeout, not as memory', async () => {
  // One thread, so the loop runs where the hog ran.
  const pool = createSandboxPool({ threads: 1, timeoutMs: 50, memoryBytes: 16 * 1048576, killAfterCpuMs: 120, killAfterMs: 60_000, maxWaitMs: 60_000 });
  try {
    const hog = await pool.run('k', HOGS, INPUT);
    assert.equal(hog.ok, false);
    const loop = await pool.run('k', LOOPS_IN_BUILTIN, INPUT);
    assert.equal(loop.ok, false);
    assert.ok(!('busy' in loop));
    assert.equal(loop.failure.kind, 'timeout', loop.failure.message);
    assert.match(loop.failure.message, /^did not finish in time \(stopped by force after \d+ ms/);
  } finally {
    await pool.close();
  }
});
