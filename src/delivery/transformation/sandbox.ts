/**
 * One run of an endpoint's transformation (docs/transformations.md) in QuickJS compiled to WebAssembly.
 * The code sees only the intrinsics of a bare JavaScript engine: no require, fetch, timers, console,
 * file or network access, nor any object of the host. Its limits are enforced by the engine: a memory
 * ceiling (the WebAssembly memory's own maximum, see loadQuickJS), a deadline checked by QuickJS's
 * interrupt handler (on the thread's CPU clock), and a bounded stack. The deadline is not checked inside
 * some built-ins (measured: `Array.prototype.indexOf.call({length: 1e8}, 1)` ran 2 s past a 50 ms
 * deadline), so runs happen on a thread of their own that the host stops by force once it has spent
 * twice its CPU budget (sandbox-pool.ts).
 *
 * Isolation between runs: the WebAssembly module (its compiled code and linear memory) is loaded once
 * per thread, but each run gets a QuickJS runtime and context of its own, created before and freed after
 * it, so no object, global or prototype change of one run (one tenant) is visible to the next. A memory
 * grown to its cap is not reused: the thread is replaced (sandbox-thread.ts).
 *
 * The stack: QuickJS's frames also use the host's native stack, and an overflow of the host's stack in
 * the middle of a QuickJS call leaves the module unable to free its runtime (measured: the free aborted
 * the WebAssembly instance). So QuickJS's own stack limit is low enough (128 KB: ~740 nested calls) to
 * trip first, even with the host's stack already deep; the thread still exits after any failure of the
 * host itself, and the pool replaces it.
 */
import {
  newQuickJSWASMModuleFromVariant,
  newVariant,
  type QuickJSContext,
  type QuickJSHandle,
  type QuickJSSyncVariant,
  type QuickJSWASMModule,
} from 'quickjs-emscripten-core';

export type SandboxLimits = {
  /**
   * CPU time one run may use, checked by QuickJS's interrupt handler against the thread's own CPU clock,
   * so that a loaded machine (this thread waiting for a core) does not fail a run that did little.
   * The pool stops a run by force on the wall clock, well past this.
   */
  timeoutMs: number;
  /** The memory one run may use (see loadQuickJS for how it is held). */
  memoryBytes: number;
};

/** QuickJS's own stack limit (see the module comment). */
const STACK_BYTES = 128 * 1024;
/** CPU time describing a thrown value may take (its `message` may be a getter of the user's). */
const DESCRIBE_BUDGET_MS = 20;
const MESSAGE_CHARS = 500;
export const SCRIPT_NAME = 'transformation.js';

/** Why a run ended without a value. `line` is the line of the code the error points at, when it says. */
export type SandboxFailure =
  | { kind: 'syntax'; message: string; line: number | null }
  | { kind: 'threw'; message: string; line: number | null }
  | { kind: 'timeout'; message: string }
  | { kind: 'memory'; message: string }
  | { kind: 'no-handler'; message: string }
  | { kind: 'bad-return'; message: string };

export type SandboxOutcome = { ok: true; outputJson: string } | { ok: false; failure: SandboxFailure };

/** The engine's WebAssembly memory starts at 16 MiB (the build's floor) and grows in 64 KiB pages. */
const BASE_PAGES = 256;
const PAGE_BYTES = 64 * 1024;

export type LoadedQuickJS = {
  module: QuickJSWASMModule;
  /** Whether the engine's memory has grown to its cap: a run that failed then ran out of memory. */
  atCap(): boolean;
  /** The engine's WebAssembly memory now, in bytes. */
  memoryBytes(): number;
};

/**
 * Loads QuickJS with a WebAssembly memory of its own, capped at the build's 16 MiB floor plus
 * `memoryBytes`. The cap is the memory limit that holds: QuickJS's own (setMemoryLimit) counts only
 * what malloc_usable_size reports, which this WebAssembly build cannot, so it refuses single
 * allocations past the limit but not many smaller ones (measured: forty 1 MiB strings under a 16 MiB
 * limit). Past the cap, malloc fails and QuickJS throws, as it would at its own limit.
 */
export async function loadQuickJS(memoryBytes: number): Promise<LoadedQuickJS> {
  const maximum = memoryCapBytes(memoryBytes) / PAGE_BYTES;
  const memory = new WebAssembly.Memory({ initial: BASE_PAGES, maximum });
  // The package's ESM build exports the variant as its default; its types are CommonJS, which nodenext
  // reads as the whole module, hence the cast.
  const release = (await import('@jitl/quickjs-wasmfile-release-sync')).default as unknown as QuickJSSyncVariant;
  const module = await newQuickJSWASMModuleFromVariant(newVariant(release, { wasmMemory: memory }));
  return { module, atCap: () => memory.buffer.byteLength >= maximum * PAGE_BYTES, memoryBytes: () => memory.buffer.byteLength };
}

/** The size a thread's WebAssembly memory may grow to, for runs of `memoryBytes`. */
export function memoryCapBytes(memoryBytes: number): number {
  return (BASE_PAGES + Math.ceil(memoryBytes / PAGE_BYTES)) * PAGE_BYTES;
}

/**
 * The call, run after the user's script in the same context. It refuses a Promise: there is no I/O to
 * wait for, so a handler needs no `async`, and a pending promise would never settle.
 */
const CALL = `(function (input) {
  const out = handler(JSON.parse(input));
  if (out !== null && typeof out === 'object' && typeof out.then === 'function') {
    throw new TypeError('handler returned a Promise: write a plain (not async) function that returns the webhook');
  }
  return JSON.stringify(out === undefined ? null : out);
})`;

/** Reads a thrown value inside the sandbox, where a throwing or looping getter harms nothing. */
const DESCRIBE = `(function (e) {
  try {
    if (e instanceof Error) return JSON.stringify([String(e.name), String(e.message), String(e.stack || '')]);
    return JSON.stringify(['', typeof e === 'object' && e !== null ? JSON.stringify(e) : String(e), '']);
  } catch (_) {
    return JSON.stringify(['', 'a value that cannot be read (reading it threw)', '']);
  }
})`;

const NO_HANDLER: SandboxFailure = {
  kind: 'no-handler',
  message: 'the code must define a function named handler: function handler(webhook) { … return webhook; }',
};

/** Runs `source`, then `handler(JSON.parse(inputJson))`; answers with the JSON text of what it returned. */
export function runInSandbox(m: QuickJSWASMModule, limits: SandboxLimits, source: string, inputJson: string): SandboxOutcome {
  return session(m, limits, (ctx, deadline) => {
    const defined = defineHandler(ctx, deadline, source);
    if (defined) return { ok: false, failure: defined };
    return evaluate(
      ctx,
      deadline,
      CALL,
      (call): SandboxOutcome => {
        const input = ctx.newString(inputJson);
        try {
          const out = ctx.callFunction(call, ctx.undefined, input);
          if (out.error) return { ok: false, failure: consumeError(ctx, out.error, deadline) };
          try {
            if (ctx.typeof(out.value) !== 'string') return { ok: false, failure: { kind: 'bad-return', message: 'handler must return the webhook object' } };
            return { ok: true, outputJson: ctx.getString(out.value) };
          } finally {
            out.value.dispose();
          }
        } finally {
          input.dispose();
        }
      },
      (failure) => ({ ok: false, failure }),
    );
  });
}

/** Runs `source`'s top level (under the same limits) and checks that it defines a function `handler`. */
export function checkInSandbox(m: QuickJSWASMModule, limits: SandboxLimits, source: string): SandboxFailure | null {
  return session(m, limits, (ctx, deadline) => defineHandler(ctx, deadline, source));
}

/** When the run must stop, on this thread's CPU clock (ms). */
type Deadline = { at: number };

/** This thread's CPU time, user and system, in ms (a clock_gettime per call: ~2 µs, asked every few thousand opcodes). */
export function threadCpuMs(): number {
  const u = process.threadCpuUsage();
  return (u.user + u.system) / 1000;
}

function session<T>(m: QuickJSWASMModule, limits: SandboxLimits, body: (ctx: QuickJSContext, deadline: Deadline) => T): T {
  const rt = m.newRuntime();
  rt.setMemoryLimit(limits.memoryBytes);
  rt.setMaxStackSize(STACK_BYTES);
  const deadline: Deadline = { at: threadCpuMs() + limits.timeoutMs };
  rt.setInterruptHandler(() => threadCpuMs() > deadline.at);
  const ctx = rt.newContext();
  try {
    return body(ctx, deadline);
  } finally {
    ctx.dispose();
    rt.dispose();
  }
}

/** Evaluates `code` and hands its value to `use`, or its failure to `failed`; every handle is freed. */
function evaluate<T>(ctx: QuickJSContext, deadline: Deadline, code: string, use: (h: QuickJSHandle) => T, failed: (f: SandboxFailure) => T): T {
  const result = ctx.evalCode(code, SCRIPT_NAME);
  if (result.error) return failed(consumeError(ctx, result.error, deadline));
  try {
    return use(result.value);
  } finally {
    result.value.dispose();
  }
}

function defineHandler(ctx: QuickJSContext, deadline: Deadline, source: string): SandboxFailure | null {
  const failed = (f: SandboxFailure) => f;
  const ran = evaluate<SandboxFailure | null>(ctx, deadline, source, () => null, failed);
  if (ran) return ran;
  return evaluate<SandboxFailure | null>(ctx, deadline, 'typeof handler', (h) => (ctx.getString(h) === 'function' ? null : NO_HANDLER), failed);
}

/**
 * What a thrown value says (and frees it). A timeout is known by the clock; memory exhaustion by
 * QuickJS's own errors. The rest is read inside the sandbox under a small budget of its own.
 */
function consumeError(ctx: QuickJSContext, error: QuickJSHandle, deadline: Deadline): SandboxFailure {
  try {
    if (threadCpuMs() > deadline.at) return { kind: 'timeout', message: 'did not finish in time' };
    deadline.at = threadCpuMs() + DESCRIBE_BUDGET_MS;
    const read = readError(ctx, error, deadline);
    if (!read) {
      // Reading failed: past its budget, the value's own getters looped; within it, there was no
      // memory left to read it with.
      return threadCpuMs() > deadline.at
        ? { kind: 'threw', message: 'a value that cannot be read', line: null }
        : { kind: 'memory', message: 'ran out of memory' };
    }
    const [name, message, stack] = read;
    if (name === 'InternalError' && /out of memory|string too long|array too long|invalid array length/i.test(message)) {
      return { kind: 'memory', message: `ran out of memory (${message})` };
    }
    if (name === 'InternalError' && message === 'interrupted') return { kind: 'timeout', message: 'did not finish in time' };
    if (name === 'InternalError' && message === 'stack overflow')
      return { kind: 'threw', message: 'stack overflow (too deep a recursion)', line: lineOf(stack) };
    const text = clip(name ? `${name}: ${message}` : message);
    // A syntax error of the code itself has no frame of a function in its stack; one thrown by the
    // code (JSON.parse of a bad string, `new Function`) does.
    return {
      kind: name === 'SyntaxError' && !/ at /.test(stack.replace(/^\s*at transformation\.js:\d+:\d+\s*$/gm, '')) ? 'syntax' : 'threw',
      message: text,
      line: lineOf(stack),
    };
  } finally {
    error.dispose();
  }
}

function readError(ctx: QuickJSContext, error: QuickJSHandle, deadline: Deadline): [string, string, string] | null {
  const fallback = null;
  return evaluate<[string, string, string] | null>(
    ctx,
    deadline,
    DESCRIBE,
    (describe) => {
      const out = ctx.callFunction(describe, ctx.undefined, error);
      if (out.error) {
        out.error.dispose();
        return fallback;
      }
      try {
        const parsed = ctx.typeof(out.value) === 'string' ? (JSON.parse(ctx.getString(out.value)) as unknown) : null;
        return Array.isArray(parsed) && parsed.length === 3 ? (parsed.map(String) as [string, string, string]) : fallback;
      } finally {
        out.value.dispose();
      }
    },
    () => fallback,
  );
}

/** The first `transformation.js:LINE:COL` of a QuickJS stack. */
function lineOf(stack: string): number | null {
  const m = /transformation\.js:(\d+)/.exec(stack);
  return m ? Number(m[1]) : null;
}

function clip(text: string): string {
  return text.length > MESSAGE_CHARS ? `${text.slice(0, MESSAGE_CHARS)}…` : text;
}
