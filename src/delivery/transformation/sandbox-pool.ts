/**
 * The threads that run transformations (sandbox-thread.ts), and the hard deadline over each run.
 *
 * QuickJS stops a run at its deadline from its interrupt handler, but some built-ins loop without
 * asking it (sandbox.ts), so a run whose thread has spent `killAfterCpuMs` of CPU time on it (or
 * `killAfterMs` on the wall clock) is stopped by terminating its thread, which is replaced. Off the caller's thread, a run never holds up its event loop either:
 * a worker's other deliveries go on while a transformation runs.
 *
 * Runs wait for a free thread in turns per key (the endpoint): waiting runs are kept per key and a
 * free thread takes the next key's first, so an endpoint with many runs queued (or with code that
 * always runs to its deadline) delays another endpoint's run by at most one run per key ahead of it.
 * A run that has waited `maxWaitMs` without a thread is given up as `busy` (the caller defers it).
 *
 * Threads start on first use, and are unref'd: an idle pool never keeps a process alive.
 */
import { Worker } from 'node:worker_threads';
import { watchThreadCpu, type CpuWatch } from '../../util/thread-cpu-watch.ts';
import { memoryCapBytes, type SandboxFailure, type SandboxLimits, type SandboxOutcome } from './sandbox.ts';

export type ThreadRequest = { id: number; kind: 'run'; source: string; inputJson: string } | { id: number; kind: 'check'; source: string };
export type ThreadReply =
  | { id: number; kind: 'ready'; otherExternalBytes: number; engineBytes: number }
  | { id: number; kind: 'ran'; outcome: SandboxOutcome; durationMs: number; recycle: boolean; engineBytes: number }
  | { id: number; kind: 'checked'; failure: SandboxFailure | null; durationMs: number; recycle: boolean; engineBytes: number }
  | { id: number; kind: 'crashed'; message: string };

export type PoolOptions = SandboxLimits & {
  threads: number;
  /** A run whose thread has used this much CPU time since the run started is stopped by terminating the thread. */
  killAfterCpuMs: number;
  /** The same on the wall clock, as a backstop (a thread whose CPU time cannot be read). */
  killAfterMs: number;
  /** A run that waited this long for a thread is given up (`busy`). */
  maxWaitMs: number;
  /** The same for a check of code (an API request waits; default maxWaitMs). */
  checkMaxWaitMs?: number;
};

/** A run's answer, and how long it ran on its thread (ms). `busy`: it never got a thread. */
export type PoolAnswer = (SandboxOutcome & { durationMs: number }) | { ok: false; busy: true; durationMs: 0 };

export type SandboxPool = {
  run(key: string, source: string, inputJson: string): Promise<PoolAnswer>;
  /** `source`'s top level run and checked for a `handler` (null: fine). `busy` as for run. */
  check(source: string): Promise<{ failure: SandboxFailure | null; busy?: true }>;
  close(): Promise<void>;
};

/** How a task ended: its thread's reply, a failure seen from here (deadline, dead thread), or no thread in time. */
type Settlement = { kind: 'reply'; reply: ThreadReply } | { kind: 'failed'; failure: SandboxFailure } | { kind: 'busy' };
type Task = { request: ThreadRequest; key: string; settle: (s: Settlement) => void; waitTimer: NodeJS.Timeout | null };
/** `engineBytes`: its WebAssembly memory when its last run ended (it never shrinks), the next run's starting size. */
type Thread = {
  worker: Worker;
  ready: boolean;
  task: Task | null;
  watch: CpuWatch | null;
  startedAt: number;
  otherExternal: number;
  engineBytes: number;
};

/** A thread that dies before it is ready (QuickJS failed to load) is started again this much later. */
const RESTART_DELAY_MS = 200;
/** A run stopped by force grew its thread's memory if it grew by more than this (see stop). */
const GREW_BYTES = 1_048_576;
/** The shortest wait before the watchdog reads a running thread's CPU time again. */
const WATCH_INTERVAL_MS = 20;

/** A thread's external memory (its WebAssembly memory, mostly) in bytes; null if it does not say within a moment. */
async function externalMemoryOf(worker: Worker): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), 250);
  });
  try {
    return await Promise.race([
      worker.getHeapStatistics().then(
        (h) => h.external_memory,
        () => null,
      ),
      late,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

export function createSandboxPool(opts: PoolOptions): SandboxPool {
  const threads: Thread[] = [];
  const waiting = new Map<string, Task[]>();
  let nextId = 1;
  let closed = false;
  const heapMb = Math.max(64, Math.ceil((4 * opts.memoryBytes) / (1024 * 1024)));
  const memoryCap = memoryCapBytes(opts.memoryBytes);

  function startThread(): void {
    if (closed) return;
    const worker = new Worker(new URL('./sandbox-thread.ts', import.meta.url), {
      workerData: { timeoutMs: opts.timeoutMs, memoryBytes: opts.memoryBytes } satisfies SandboxLimits,
      resourceLimits: { maxOldGenerationSizeMb: heapMb },
    });
    worker.unref();
    const t: Thread = { worker, ready: false, task: null, watch: null, startedAt: 0, otherExternal: 0, engineBytes: 0 };
    threads.push(t);
    worker.on('message', (reply: ThreadReply) => {
      if (reply.kind === 'ready') {
        t.ready = true;
        t.otherExternal = reply.otherExternalBytes;
        t.engineBytes = reply.engineBytes;
        pump();
      } else if (t.task && reply.id === t.task.request.id) {
        finish(t, reply);
      }
    });
    let gone = false;
    const died = (why: string) => {
      if (gone) return;
      gone = true;
      const index = threads.indexOf(t);
      if (index >= 0) threads.splice(index, 1);
      t.watch?.cancel();
      const task = t.task;
      t.task = null;
      if (task) task.settle({ kind: 'failed', failure: { kind: 'threw', message: `the sandbox failed (${why})`, line: null } });
      if (closed) return;
      // Replaced at once after a run, later if it never became ready (so a load that keeps failing
      // does not spin), and only while there is work for it.
      const restart = () => {
        if (!closed && waiting.size > 0 && threads.length < opts.threads) startThread();
      };
      if (t.ready) pump();
      else setTimeout(restart, RESTART_DELAY_MS).unref();
    };
    worker.on('error', (err: Error & { code?: string }) => died(err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'its thread ran out of memory' : err.message));
    worker.on('exit', () => died('its thread stopped'));
  }

  function finish(t: Thread, reply: ThreadReply): void {
    const task = t.task;
    if (!task) return;
    t.watch?.cancel();
    t.watch = null;
    t.task = null;
    if (reply.kind === 'ran' || reply.kind === 'checked') {
      t.engineBytes = reply.engineBytes;
      if (reply.recycle) retire(t);
    }
    task.settle({ kind: 'reply', reply });
    pump();
  }

  /** Takes a thread out of the pool (before its exit is reported: no run may be handed to it) and stops it. */
  function retire(t: Thread): void {
    const index = threads.indexOf(t);
    if (index >= 0) threads.splice(index, 1);
    void t.worker.terminate();
  }

  /** Hands waiting runs to idle threads, the keys in turn; starts threads up to the pool's size. */
  function pump(): void {
    for (const t of threads) {
      if (!t.ready || t.task) continue;
      const task = takeNext();
      if (!task) return;
      begin(t, task);
    }
    if (waiting.size > 0 && threads.length < opts.threads) startThread();
  }

  function takeNext(): Task | null {
    const first = waiting.entries().next();
    if (first.done) return null;
    const [key, queue] = first.value;
    const task = queue.shift() as Task;
    // Served keys move to the back: round-robin in O(1).
    waiting.delete(key);
    if (queue.length) waiting.set(key, queue);
    return task;
  }

  function begin(t: Thread, task: Task): void {
    if (task.waitTimer) clearTimeout(task.waitTimer);
    t.task = task;
    t.startedAt = performance.now();
    // The watchdog reads the thread's CPU time, so a loaded machine, where a run waits for a core,
    // does not make it stop a run that still had time.
    t.watch = watchThreadCpu(t.worker, { cpuMs: opts.killAfterCpuMs, wallMs: opts.killAfterMs, recheckMs: WATCH_INTERVAL_MS }, (usedMs) =>
      stop(t, task, usedMs),
    );
    t.worker.postMessage(task.request);
  }

  /**
   * Past the hard deadline: the run is stopped with its thread (terminate() ends even a loop inside a
   * built-in), and a new thread takes the next run.
   */
  function stop(t: Thread, task: Task, usedMs: number): void {
    t.task = null;
    const index = threads.indexOf(t);
    if (index >= 0) threads.splice(index, 1);
    pump();
    const spent = usedMs > opts.killAfterCpuMs ? `${Math.round(usedMs)} ms of CPU` : `${Math.round(performance.now() - t.startedAt)} ms`;
    // Filling its memory, QuickJS can spin in its allocator without asking the interrupt handler
    // (measured: stopped with 12 of its 16 MB taken, after 120 ms of CPU). Such a run is told apart by
    // the size of the thread's WebAssembly memory (its external memory less the rest, as the thread
    // said when ready), read before it stops: past half its allowance, and grown during this run, its
    // memory, not its loop, is what stopped it (a loop inside a built-in allocates nothing). Grown (by
    // more than GREW_BYTES: the rest of the thread's external memory moves a little): the memory never
    // shrinks, so a thread that an earlier run left large (a hog stopped inside QuickJS, below the
    // cap) would otherwise call the next run's loop a lack of memory.
    void externalMemoryOf(t.worker).then((external) => {
      void t.worker.terminate();
      const engine = external === null ? 0 : external - t.otherExternal;
      const failure: SandboxFailure =
        engine >= memoryCap - opts.memoryBytes / 2 && engine > t.engineBytes + GREW_BYTES
          ? { kind: 'memory', message: `ran out of memory (stopped by force after ${spent}, ${Math.round(engine / 1048576)} MB in use)` }
          : { kind: 'timeout', message: `did not finish in time (stopped by force after ${spent})` };
      task.settle({ kind: 'failed', failure });
    });
  }

  function submit(request: ThreadRequest, key: string, maxWaitMs: number): Promise<Settlement> {
    if (closed) return Promise.resolve({ kind: 'busy' });
    return new Promise((resolve) => {
      const task: Task = { request, key, settle: resolve, waitTimer: null };
      task.waitTimer = setTimeout(() => {
        const queue = waiting.get(key);
        const at = queue?.indexOf(task) ?? -1;
        if (!queue || at < 0) return;
        queue.splice(at, 1);
        if (queue.length === 0) waiting.delete(key);
        resolve({ kind: 'busy' });
      }, maxWaitMs);
      task.waitTimer.unref();
      const queue = waiting.get(key);
      if (queue) queue.push(task);
      else waiting.set(key, [task]);
      pump();
    });
  }

  /** A failure of the thread or of the deadline, as a run's failure. */
  function failureOf(s: Settlement): SandboxFailure {
    if (s.kind === 'failed') return s.failure;
    if (s.kind === 'reply' && s.reply.kind === 'crashed') return { kind: 'threw', message: `the sandbox failed (${s.reply.message})`, line: null };
    return { kind: 'threw', message: 'the sandbox answered out of turn', line: null };
  }

  return {
    async run(key, source, inputJson) {
      const started = performance.now();
      const s = await submit({ id: nextId++, kind: 'run', source, inputJson }, key, opts.maxWaitMs);
      if (s.kind === 'busy') return { ok: false, busy: true, durationMs: 0 };
      if (s.kind === 'reply' && s.reply.kind === 'ran') return { ...s.reply.outcome, durationMs: s.reply.durationMs };
      return { ok: false, failure: failureOf(s), durationMs: performance.now() - started };
    },
    async check(source) {
      const s = await submit({ id: nextId++, kind: 'check', source }, '', opts.checkMaxWaitMs ?? opts.maxWaitMs);
      if (s.kind === 'busy') return { failure: null, busy: true };
      if (s.kind === 'reply' && s.reply.kind === 'checked') return { failure: s.reply.failure };
      return { failure: failureOf(s) };
    },
    async close() {
      closed = true;
      for (const queue of waiting.values()) for (const task of queue) task.settle({ kind: 'busy' });
      waiting.clear();
      await Promise.all(threads.splice(0).map((t) => t.worker.terminate()));
    },
  };
}
