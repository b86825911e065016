/**
 * Organizations' larger schemas, compiled and run on a thread of their own under deadlines (of the
 * thread's CPU time) and a heap limit (custom-schema.ts says why). One task runs at a time, in arrival order; a task that passes its
 * deadline, or the heap limit, costs its thread, which is replaced for the next.
 *
 * Compiling is a task of its own with a longer deadline (ajv generates code: 30 KB of schema took
 * 1 s), done once per schema per thread: when a schema is registered (and then dropped), and before
 * the first event of its type a thread sees.
 */
import { Worker } from 'node:worker_threads';
import type { ErrorObject } from 'ajv';
import type { JsonSchema } from '../ledger/event-types.ts';
import { watchThreadCpu, type CpuWatch } from '../util/thread-cpu-watch.ts';

export type ThreadRequest =
  | { id: number; kind: 'compile'; key: number; schema: JsonSchema; keep: boolean }
  | { id: number; kind: 'validate'; key: number; data: unknown };
export type ThreadReply =
  | { id: number; kind: 'compiled' }
  | { id: number; kind: 'valid' }
  | { id: number; kind: 'invalid'; error: ErrorObject | null }
  | { id: number; kind: 'failed'; message: string };

export type IsolatedVerdict =
  | { kind: 'valid' }
  | { kind: 'invalid'; error: ErrorObject | null }
  /** A deadline passed, or the heap limit: the schema is too costly (for this data). */
  | { kind: 'too-costly'; reason: string };

export type CompileVerdict = { kind: 'compiled' } | { kind: 'invalid-schema'; message: string } | { kind: 'too-costly'; reason: string };

export type IsolatedValidatorOptions = { validateDeadlineMs: number; compileDeadlineMs: number; heapLimitMb: number };

export type IsolatedValidator = {
  /** `key` names `schema` for the life of the process (one key per compiled event type). */
  validate(key: number, schema: JsonSchema, data: unknown): Promise<IsolatedVerdict>;
  /** Compiles `schema` once, to check it, and keeps nothing. */
  check(schema: JsonSchema): Promise<CompileVerdict>;
  close(): Promise<void>;
};

/** Past this many schemas the thread is replaced, so a long-lived process does not keep every one. */
const SCHEMAS_PER_THREAD = 1000;

type Task =
  | { kind: 'validate'; key: number; schema: JsonSchema; data: unknown; resolve: (v: IsolatedVerdict) => void; reject: (e: Error) => void }
  | { kind: 'check'; schema: JsonSchema; resolve: (v: CompileVerdict) => void; reject: (e: Error) => void };
type Thread = { worker: Worker; compiled: Set<number> };
type Running = { id: number; task: Task; phase: 'compile' | 'validate'; watch: CpuWatch; thread: Thread };

/** A run is given up past this many times its deadline on the wall clock, whatever its CPU time. */
const WALL_BACKSTOP = 10;
/** The shortest wait before the CPU time is read again, once the deadline has passed on the wall clock. */
const MIN_RECHECK_MS = 10;

export function createIsolatedValidator(opts: IsolatedValidatorOptions): IsolatedValidator {
  const queue: Task[] = [];
  let thread: Thread | null = null;
  let running: Running | null = null;
  let nextId = 1;
  let closed = false;

  function start(): Thread {
    const worker = new Worker(new URL('./validation-thread.ts', import.meta.url), {
      resourceLimits: { maxOldGenerationSizeMb: opts.heapLimitMb, maxYoungGenerationSizeMb: Math.min(32, opts.heapLimitMb) },
    });
    worker.unref(); // an idle validator never keeps the process alive
    const t: Thread = { worker, compiled: new Set() };
    worker.on('message', (reply: ThreadReply) => {
      if (running?.id === reply.id) answered(running, reply);
    });
    // A thread that dies (heap limit, or terminated) takes only the task it was running.
    const died = (reason: string) => {
      if (thread === t) thread = null;
      if (running?.thread === t) finish(running, { kind: 'too-costly', reason });
    };
    worker.on('error', (err: Error & { code?: string }) =>
      died(err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? `it needed more than ${opts.heapLimitMb} MB` : `its thread failed (${err.message})`),
    );
    worker.on('exit', () => died('its thread stopped'));
    return t;
  }

  function answered(r: Running, reply: ThreadReply): void {
    const { task } = r;
    if (reply.kind === 'failed') {
      if (task.kind === 'check') finish(r, { kind: 'invalid-schema', message: reply.message });
      else finish(r, new Error(`schema validation failed: ${reply.message}`));
    } else if (reply.kind === 'compiled') {
      if (task.kind === 'check') finish(r, { kind: 'compiled' });
      else {
        r.watch.cancel();
        r.thread.compiled.add(task.key);
        send(r.thread, task, 'validate');
      }
    } else {
      finish(r, reply.kind === 'valid' ? { kind: 'valid' } : { kind: 'invalid', error: reply.error });
    }
  }

  function finish(r: Running, outcome: IsolatedVerdict | CompileVerdict | Error): void {
    r.watch.cancel();
    if (running === r) running = null;
    if (outcome instanceof Error) r.task.reject(outcome);
    else (r.task.resolve as (v: IsolatedVerdict | CompileVerdict) => void)(outcome);
    pump();
  }

  function send(t: Thread, task: Task, phase: 'compile' | 'validate'): void {
    const id = nextId++;
    const deadlineMs = phase === 'compile' ? opts.compileDeadlineMs : opts.validateDeadlineMs;
    // The deadline counts the thread's CPU time (util/thread-cpu-watch.ts): on a loaded machine a thread
    // waits for a core, and a cheap event must not be refused for that (the suite once saw a
    // one-element array refused with six test files at once on two cores). Past WALL_BACKSTOP times
    // the deadline on the wall clock it is given up all the same, so a request never waits unbounded.
    const watch = watchThreadCpu(t.worker, { cpuMs: deadlineMs, wallMs: WALL_BACKSTOP * deadlineMs, recheckMs: MIN_RECHECK_MS }, () => {
      if (running?.id !== id) return;
      if (thread === t) thread = null;
      void t.worker.terminate();
      finish(running, { kind: 'too-costly', reason: `${phase === 'compile' ? 'compiling its schema' : 'validating'} took longer than ${deadlineMs} ms` });
    });
    running = { id, task, phase, watch, thread: t };
    const request: ThreadRequest =
      phase === 'compile'
        ? { id, kind: 'compile', key: task.kind === 'validate' ? task.key : 0, schema: task.schema, keep: task.kind === 'validate' }
        : { id, kind: 'validate', key: (task as { key: number }).key, data: (task as { data: unknown }).data };
    t.worker.postMessage(request);
  }

  function pump(): void {
    if (running || closed) return;
    const task = queue.shift();
    if (!task) return;
    if (thread && task.kind === 'validate' && thread.compiled.size >= SCHEMAS_PER_THREAD && !thread.compiled.has(task.key)) {
      void thread.worker.terminate();
      thread = null;
    }
    thread ??= start();
    send(thread, task, task.kind === 'validate' && thread.compiled.has(task.key) ? 'validate' : 'compile');
  }

  function enqueue<T>(make: (resolve: (v: T) => void, reject: (e: Error) => void) => Task): Promise<T> {
    if (closed) return Promise.reject(new Error('the schema validator is closed'));
    return new Promise<T>((resolve, reject) => {
      queue.push(make(resolve, reject));
      pump();
    });
  }

  return {
    validate: (key, schema, data) => enqueue<IsolatedVerdict>((resolve, reject) => ({ kind: 'validate', key, schema, data, resolve, reject })),
    check: (schema) => enqueue<CompileVerdict>((resolve, reject) => ({ kind: 'check', schema, resolve, reject })),
    async close() {
      closed = true;
      const closedError = new Error('the schema validator is closed');
      for (const task of queue.splice(0)) task.reject(closedError);
      if (running) {
        running.watch.cancel();
        running.task.reject(closedError);
        running = null;
      }
      const t = thread;
      thread = null;
      if (t) await t.worker.terminate();
    },
  };
}
