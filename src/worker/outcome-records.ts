/**
 * What the ledger is told about one claimed dispatch: an attempt's outcome (decided by the retry
 * policy), or a settlement without a request (handed back, deferred by a rate limit, cancelled by a
 * transformation). Pure: the dispatcher counts and schedules around these.
 */
import type { ClaimedDispatch } from '../ledger/claims.ts';
import type { OutcomeRecord } from '../ledger/outcomes.ts';
import { decideOutcome, type AttemptResult } from '../delivery/outcome.ts';
import { endpointRetryPolicy } from '../delivery/retry-policy.ts';
import type { RetryPolicy } from '../config/config.ts';

export const CANCELLED_BY_TRANSFORMATION = "cancelled by the endpoint's transformation (nothing was sent)";
const FIFO_HOLD_REASON = 'ordered delivery held: the delivery at the head of the queue failed for good; replay it, or enable the endpoint to skip it';

/** Seals a response body for storage (personal data may be in it); absent when sealing is off. */
export type SealResponseBody = ((body: string) => string) | undefined;

/** An attempt's record; `at` is when it ended, from which a retry is scheduled. */
export function attemptRecord(d: ClaimedDispatch, result: AttemptResult, at: number, policy: RetryPolicy, seal: SealResponseBody): OutcomeRecord {
  const outcome = decideOutcome(result, { attemptsThisRound: d.round_attempts, destinationKind: d.kind }, endpointRetryPolicy(policy, d));
  const base = {
    ...recordSubject(d),
    attempted: true,
    statusCode: result.kind === 'response' ? result.statusCode : null,
    ...responseBodyRecord(result, seal),
    durationMs: result.durationMs,
    disableEndpointReason: null,
  };
  switch (outcome.kind) {
    case 'delivered':
      return { ...base, success: true, error: null, nextStatus: 'succeeded', nextAttemptAt: null };
    case 'retry':
      return { ...base, success: false, error: outcome.reason, nextStatus: 'pending', nextAttemptAt: new Date(at + outcome.delayMs) };
    case 'failed':
      // The head of a FIFO queue that holds: everything after it waits, with the endpoint disabled,
      // until someone replays this one or enables the endpoint again (which skips it).
      if (d.fifo && d.fifo_on_exhausted === 'hold') {
        return {
          ...base,
          success: false,
          error: outcome.reason,
          nextStatus: 'failed',
          nextAttemptAt: null,
          disableEndpointReason: `${FIFO_HOLD_REASON}: ${outcome.reason}`,
        };
      }
      return { ...base, success: false, error: outcome.reason, nextStatus: 'failed', nextAttemptAt: null };
    case 'gone':
      return { ...base, success: false, error: outcome.reason, nextStatus: 'failed', nextAttemptAt: null, disableEndpointReason: outcome.reason };
    default:
      return assertNever(outcome);
  }
}

/** An empty body holds nothing to protect, and is by far the commonest: it is not sealed. */
function responseBodyRecord(result: AttemptResult, seal: SealResponseBody): { responseBody: string | null; responseSealed: boolean } {
  if (result.kind !== 'response') return { responseBody: null, responseSealed: false };
  if (!result.body || !seal) return { responseBody: result.body, responseSealed: false };
  return { responseBody: seal(result.body), responseSealed: true };
}

/** An outcome without a request: nothing reached the receiver, so it is no attempt, neither success nor failure. */
export function unattemptedRecord(d: ClaimedDispatch, o: Pick<OutcomeRecord, 'durationMs' | 'error' | 'nextStatus' | 'nextAttemptAt'>): OutcomeRecord {
  return {
    ...recordSubject(d),
    attempted: false,
    success: false,
    statusCode: null,
    responseBody: null,
    responseSealed: false,
    disableEndpointReason: null,
    ...o,
  };
}

/** Which dispatch, event, endpoint and attempt a record is about. */
export function recordSubject(d: ClaimedDispatch) {
  return {
    dispatchId: d.id,
    eventId: d.webhook_event_id,
    endpointId: d.webhook_endpoint_id,
    organizationId: d.organization_id,
    destinationKind: d.kind,
    attemptNumber: d.attempts,
  };
}

/** Settled without a request: the transformation cancelled it. */
export function cancelledRecord(d: ClaimedDispatch, durationMs: number): OutcomeRecord {
  return unattemptedRecord(d, { durationMs: Math.round(durationMs), error: CANCELLED_BY_TRANSFORMATION, nextStatus: 'cancelled', nextAttemptAt: null });
}

function assertNever(x: never): never {
  throw new Error(`unexpected outcome ${JSON.stringify(x)}`);
}
