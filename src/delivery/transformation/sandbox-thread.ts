/**
 * A thread that runs transformations (sandbox.ts) for the pool (sandbox-pool.ts). It loads QuickJS
 * once, says `ready`, then answers each request in turn. It may be terminated mid-run at any time (the
 * pool's hard deadline), so it holds nothing but the loaded module. A reply says `recycle` once the
 * module's memory has grown to its cap (WebAssembly memory never shrinks): the pool then replaces the
 * thread, so the next run starts with all its memory. If QuickJS ever fails as a host
 * (not as JavaScript: a WebAssembly trap, the host's stack), the module may be unusable: the thread
 * says so and exits, and the pool starts another.
 */
import { getHeapStatistics } from 'node:v8';
import { parentPort, workerData } from 'node:worker_threads';
import { checkInSandbox, loadQuickJS, runInSandbox, threadCpuMs, type SandboxFailure, type SandboxLimits } from './sandbox.ts';
import type { ThreadReply, ThreadRequest } from './sandbox-pool.ts';

const limits = workerData as SandboxLimits;
const port = parentPort;
if (!port) throw new Error('sandbox-thread.ts runs as a worker thread of sandbox-pool.ts');

/**
 * Runs before the thread says it is ready. The first runs of a fresh module are slow while the engine
 * compiles its WebAssembly (measured: 20-30 ms for the first, spikes after): past them before any
 * tenant's run is timed against its limit.
 */
const WARM_UP = {
  runs: 10,
  limits: { timeoutMs: 5_000, memoryBytes: limits.memoryBytes },
  source:
    'function handler(w) { w.payload = { text: Object.keys(w.data).map((k) => k + "=" + JSON.stringify(w.data[k])).join("\\n") }; w.headers["x-a"] = "1"; return w; }',
  input:
    '{"event_type":"warm.up","event_id":"0","timestamp":"1970-01-01T00:00:00.000Z","data":{"a":1,"b":"x","c":[1,2,3]},"headers":{},"path":null,"cancel":false}',
};

const { module: quickjs, atCap, memoryBytes } = await loadQuickJS(limits.memoryBytes);
for (let i = 0; i < WARM_UP.runs; i++) runInSandbox(quickjs, WARM_UP.limits, WARM_UP.source, WARM_UP.input);
checkInSandbox(quickjs, WARM_UP.limits, 'function handler(w) { throw new Error("warm") }\nhandler()');

/**
 * A failure once the memory reached its cap is the memory's, whatever QuickJS said: near the cap
 * its allocations fail in several ways (an "out of memory" error, a null exception when there was no
 * memory left for an error object, or so much retrying that the deadline passed first).
 */
function byMemory(failure: SandboxFailure | null): SandboxFailure | null {
  if (!failure || !atCap() || failure.kind === 'syntax' || failure.kind === 'no-handler') return failure;
  return { kind: 'memory', message: `ran out of memory${failure.kind === 'memory' ? '' : ` (${failure.message})`}` };
}

port.on('message', (m: ThreadRequest) => {
  let reply: ThreadReply;
  try {
    // The run's CPU time on this thread: what its limit counts, and what the attempt log shows.
    const started = threadCpuMs();
    if (m.kind === 'run') {
      const ran = runInSandbox(quickjs, limits, m.source, m.inputJson);
      const outcome = ran.ok ? ran : { ok: false as const, failure: byMemory(ran.failure) as SandboxFailure };
      reply = { id: m.id, kind: 'ran', outcome, durationMs: threadCpuMs() - started, recycle: atCap(), engineBytes: memoryBytes() };
    } else {
      reply = {
        id: m.id,
        kind: 'checked',
        failure: byMemory(checkInSandbox(quickjs, limits, m.source)),
        durationMs: threadCpuMs() - started,
        recycle: atCap(),
        engineBytes: memoryBytes(),
      };
    }
  } catch (err) {
    port.postMessage({ id: m.id, kind: 'crashed', message: err instanceof Error ? err.message : String(err) } satisfies ThreadReply);
    process.exit(1);
  }
  port.postMessage(reply);
});
// The thread's external memory besides the engine's: the pool reads the engine's size from the
// thread's external memory (which it can read even while the thread spins) less this.
port.postMessage({
  id: 0,
  kind: 'ready',
  otherExternalBytes: getHeapStatistics().external_memory - memoryBytes(),
  engineBytes: memoryBytes(),
} satisfies ThreadReply);
