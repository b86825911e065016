/**
 * Turns what happened on the wire into what happens next, as a value:
 * delivered, retry at a time, give up, or gone (410: the receiver asked us to stop).
 */
import type { RetryPolicy } from '../config/config.ts';
import { backoffDelayMs, hasRetriesLeft, parseRetryAfterMs } from './retry-policy.ts';
import type { SendResult } from './http-sender.ts';

export type Outcome =
  | { kind: 'delivered' }
  | { kind: 'retry'; delayMs: number; reason: string }
  | { kind: 'failed'; reason: string }
  | { kind: 'gone'; reason: string };

export type AttemptContext = { attemptsThisRound: number; destinationKind: 'endpoint' | 'n8n' };

/**
 * What an attempt came to: the wire's answer, or the endpoint's transformation failing before anything
 * was sent (it threw, ran past a limit, or returned what the contract refuses). Both are attempts.
 */
export type AttemptResult = SendResult | { kind: 'transformation-error'; error: string; durationMs: number };

export function decideOutcome(result: AttemptResult, ctx: AttemptContext, policy: RetryPolicy): Outcome {
  if (result.kind === 'response' && result.statusCode >= 200 && result.statusCode < 300) return { kind: 'delivered' };
  if (result.kind === 'response' && result.statusCode === 410) {
    return { kind: 'gone', reason: 'receiver answered 410 Gone: endpoint disabled' };
  }
  const reason = describeFailure(result, ctx);
  if (!hasRetriesLeft(policy, ctx.attemptsThisRound)) {
    return { kind: 'failed', reason: `${reason} (gave up after ${ctx.attemptsThisRound} attempts)` };
  }
  let delayMs = backoffDelayMs(policy, ctx.attemptsThisRound);
  if (result.kind === 'response' && (result.statusCode === 429 || result.statusCode === 503)) {
    const asked = parseRetryAfterMs(result.retryAfter);
    // The receiver knows its own load best; we wait at least as long as it asks, up to the policy's cap.
    if (asked !== undefined) delayMs = Math.min(policy.maxDelayMs, Math.max(delayMs, asked));
  }
  return { kind: 'retry', delayMs, reason };
}

function describeFailure(result: AttemptResult, ctx: AttemptContext): string {
  if (result.kind === 'network-error' || result.kind === 'transformation-error') return result.error;
  if (ctx.destinationKind === 'n8n' && result.statusCode === 404) return 'n8n workflow inactive (404 from its production URL)';
  return `HTTP ${result.statusCode}`;
}
