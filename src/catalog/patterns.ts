/**
 * Endpoint filters are exact names or wildcards (`integration.*`, `*`). Rather than test every
 * endpoint's filters against an event, fan-out computes the few patterns an event type matches and
 * asks Postgres for endpoints whose `events` array overlaps them (a GIN index lookup).
 */
export function matchingPatterns(eventType: string): string[] {
  const parts = eventType.split('.');
  const patterns = ['*', eventType];
  for (let i = 1; i < parts.length; i++) patterns.push(`${parts.slice(0, i).join('.')}.*`);
  return patterns;
}

const FILTER_PATTERN = /^(\*|[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*(\.\*)?)$/;

export function isValidEventFilter(filter: string): boolean {
  return filter.length <= 200 && FILTER_PATTERN.test(filter);
}
