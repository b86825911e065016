/**
 * The seed's retry policy: exponential backoff from a base delay, capped, with jitter so a recovered
 * receiver is not hit by every retry in the same second. With the seed's numbers the retries come
 * 30, 60, 120, 240 and 480 s after each failure.
 */
import type { RetryPolicy } from '../config/config.ts';

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
