/**
 * Batching (docs/batching.md) in the worker. A claim returns a batch as rows that share a `batch_id`;
 * the worker sends them as one delivery, led by the batch's first member, which carries the others.
 * One request is one slot, one rate-limit token and one attempt span; its outcome is recorded onto
 * every member, each member's attempt row carrying the batch's id.
 */
import type { ClaimedDispatch } from '../ledger/claims.ts';
import type { OutcomeRecord } from '../ledger/outcomes.ts';

/** A claimed dispatch as the worker sends it: alone, or leading its batch (`members`, itself first). */
export type Delivery = ClaimedDispatch & { members?: ClaimedDispatch[] };

/** Groups a claim's rows into deliveries: each batch becomes one, its members in event order. */
export function groupBatches(rows: readonly ClaimedDispatch[]): Delivery[] {
  if (!rows.some((d) => d.batch_id !== null)) return rows as Delivery[];
  const out: Delivery[] = [];
  const batches = new Map<string, Delivery>();
  for (const d of rows) {
    if (d.batch_id === null) {
      out.push(d);
      continue;
    }
    const lead = batches.get(d.batch_id);
    if (lead) {
      lead.members?.push(d);
      continue;
    }
    const delivery: Delivery = { ...d, members: [d] };
    batches.set(d.batch_id, delivery);
    out.push(delivery);
  }
  for (const b of batches.values()) b.members?.sort((a, c) => (a.webhook_event_id < c.webhook_event_id ? -1 : a.webhook_event_id > c.webhook_event_id ? 1 : 0));
  return out;
}

/** The outcome of a delivery, one per dispatch it carried: a batch's outcome goes to each member. */
export function memberOutcomes(d: Delivery, record: OutcomeRecord): OutcomeRecord[] {
  if (!d.members) return [record];
  return d.members.map((m, i) => ({
    ...record,
    dispatchId: m.id,
    eventId: m.webhook_event_id,
    attemptNumber: m.attempts,
    batchId: d.batch_id,
    batchFollower: i > 0,
    // The endpoint is disabled once, by the first member's outcome.
    disableEndpointReason: i === 0 ? record.disableEndpointReason : null,
  }));
}
