/**
 * The seed's retry policy: exponential backoff from a base delay, capped, with jitter so a recovered
 * receiver is not hit by every retry in the same second. With the seed's numbers the retries come
 * 30, 60, 120, 240 and 480 s after each failure.
 */
import type { RetryPolicy } from '../config/config.ts';

/** An endpoint's overrides of the retry policy (migration 0027); null: the service's. */
export type RetryOverrides = { max_retries: number | null; retry_base_delay_ms: number | null };

/**
 * The policy for one endpoint: the service's, with the endpoint's retry count and first delay. The
 * factor, cap and jitter stay the service's, so an override changes the schedule's length and scale,
 * never its shape. Without overrides (the common case) this is the service's own object: no allocation
 * per outcome.
 */
export function endpointRetryPolicy(policy: RetryPolicy, o: RetryOverrides): RetryPolicy {
  if (o.max_retries == null && o.retry_base_delay_ms == null) return policy;
  // Held to the service's count here too: an override stored before the operator lowered it asks for no more.
  const maxRetries = o.max_retries == null ? policy.maxRetries : Math.min(o.max_retries, policy.maxRetries);
  return { ...policy, maxRetries, baseDelayMs: o.retry_base_delay_ms ?? policy.baseDelayMs };
}

/** Delay before the next attempt, after `failedAttempts` attempts of this round have failed. */
export function backoffDelayMs(policy: RetryPolicy, failedAttempts: number, random: () => number = Math.random): number {
  const exponential = policy.baseDelayMs * policy.backoffFactor ** Math.max(0, failedAttempts - 1);
  const capped = Math.min(policy.maxDelayMs, exponential);
  const spread = capped * policy.jitter;
  return Math.max(0, Math.round(capped - spread + random() * 2 * spread));
}

export function hasRetriesLeft(policy: RetryPolicy, attemptsThisRound: number): boolean {
  return attemptsThisRound <= policy.maxRetries;
}

/** Retry-After as seconds or an HTTP date; undefined when absent or unreadable. */
export function parseRetryAfterMs(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (!raw) return undefined;
  if (/^\d+$/.test(raw.trim())) return Number(raw.trim()) * 1000;
  const at = Date.parse(raw);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
