/**
 * Endpoints' transformations (docs/transformations.md): checked when an endpoint is written, applied
 * by the worker before signing (and by the preview route, which sends nothing). The code runs in the
 * QuickJS sandbox (sandbox.ts) on the pool's threads (sandbox-pool.ts), under the limits of
 * CARTEIRO_TRANSFORMATION_*; what it returns is read against the contract (contract.ts).
 */
import type { Config } from '../../config/config.ts';
import { InvalidTransformationError, TransformationBusyError } from '../../errors/errors.ts';
import { interpretOutput, transformationInput, type TransformationEvent, type TransformedRequest } from './contract.ts';
import { createSandboxPool } from './sandbox-pool.ts';
import type { SandboxFailure } from './sandbox.ts';

/** The longest transformation source an endpoint may hold (it travels with every claimed delivery). */
export const TRANSFORMATION_MAX_CHARS = 32_768;

/**
 * A run's result. `failed` is a failed attempt (`kind` says how: threw, timeout, memory, invalid);
 * `busy`: no sandbox thread was free in time, through no fault of this endpoint's (the caller defers).
 */
export type TransformationResult =
  | { kind: 'send'; request: TransformedRequest; durationMs: number }
  | { kind: 'cancel'; durationMs: number }
  | { kind: 'failed'; failure: FailureKind; reason: string; line: number | null; durationMs: number }
  | { kind: 'busy' };

export type FailureKind = 'threw' | 'timeout' | 'memory' | 'invalid';

export type Transformer = {
  /** Throws InvalidTransformationError naming `field` when `source` cannot be an endpoint's transformation. */
  check(source: string, field?: string): Promise<void>;
  /** Runs `source` on the event for the endpoint at `endpointUrl`. `key` (the endpoint) takes turns with other keys for a thread. */
  apply(key: string, source: string, event: TransformationEvent, endpointUrl: string): Promise<TransformationResult>;
  close(): Promise<void>;
};

export function createTransformer(settings: Config['transformations']): Transformer {
  const { timeoutMs, memoryBytes, maxBodyBytes, threads } = settings;
  const mb = Math.round(memoryBytes / (1024 * 1024));
  const pool = createSandboxPool({
    threads,
    timeoutMs,
    memoryBytes,
    // QuickJS's own deadline (CPU time) stops nearly every run; a run whose thread spent twice that
    // (a loop inside a built-in) is stopped with its thread. The wall clock is only a backstop: on a
    // loaded 2-core machine 50 ms of CPU took up to 260 ms of it.
    killAfterCpuMs: 2 * timeoutMs + 20,
    killAfterMs: Math.max(10_000, 100 * timeoutMs),
    maxWaitMs: settings.maxWaitMs,
    checkMaxWaitMs: settings.checkMaxWaitMs,
  });

  /** A failure as the attempt log and the preview say it. */
  function reason(f: SandboxFailure): { failure: FailureKind; reason: string; line: number | null } {
    const at = 'line' in f && f.line ? ` (line ${f.line})` : '';
    switch (f.kind) {
      case 'timeout':
        return { failure: 'timeout', reason: `transformation timed out: it ${f.message}, the limit being ${timeoutMs} ms`, line: null };
      case 'memory':
        return { failure: 'memory', reason: `transformation ${f.message}: the limit is ${mb} MB`, line: null };
      case 'syntax':
        return { failure: 'threw', reason: `transformation does not compile: ${f.message}${at}`, line: f.line };
      case 'threw':
        return { failure: 'threw', reason: `transformation threw ${f.message}${at}`, line: f.line };
      default:
        return { failure: 'invalid', reason: `transformation ${f.message}`, line: null };
    }
  }

  return {
    async check(source, field = 'transformation') {
      if (source.trim().length === 0) throw new InvalidTransformationError(field, 'is empty (to remove a transformation, set it to null)');
      if (source.length > TRANSFORMATION_MAX_CHARS) throw new InvalidTransformationError(field, `is longer than ${TRANSFORMATION_MAX_CHARS} characters`);
      const { failure, busy } = await pool.check(source);
      if (busy) throw new TransformationBusyError();
      if (!failure) return;
      const line = 'line' in failure ? failure.line : null;
      switch (failure.kind) {
        case 'syntax':
          throw new InvalidTransformationError(field, `does not compile: ${failure.message}${line ? ` (line ${line})` : ''}`, line);
        case 'no-handler':
          throw new InvalidTransformationError(field, failure.message);
        default:
          throw new InvalidTransformationError(field, `its top level fails: ${reason(failure).reason.replace(/^transformation /, '')}`, line);
      }
    },

    async apply(key, source, event, endpointUrl) {
      const answer = await pool.run(key, source, transformationInput(event));
      if ('busy' in answer) return { kind: 'busy' };
      if (!answer.ok) return { kind: 'failed', ...reason(answer.failure), durationMs: answer.durationMs };
      const read = interpretOutput(answer.outputJson, event, endpointUrl, maxBodyBytes);
      if (read.kind === 'invalid')
        return {
          kind: 'failed',
          failure: 'invalid',
          reason: `transformation returned an invalid webhook: ${read.message}`,
          line: null,
          durationMs: answer.durationMs,
        };
      if (read.kind === 'cancel') return { kind: 'cancel', durationMs: answer.durationMs };
      return { kind: 'send', request: read.request, durationMs: answer.durationMs };
    },

    close: () => pool.close(),
  };
}
