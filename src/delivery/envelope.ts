/**
 * The body every receiver gets: `{id, type, timestamp, data}`. Built by string concatenation around
 * the stored jsonb text, so an event's data is never parsed and re-serialised on the delivery path;
 * the bytes built here are the bytes signed and the bytes sent.
 */
export function buildEnvelope(eventId: string, eventType: string, createdAt: Date, dataJson: string): string {
  return `{"id":${JSON.stringify(eventId)},"type":${JSON.stringify(eventType)},"timestamp":${JSON.stringify(createdAt.toISOString())},"data":${dataJson}}`;
}

/**
 * A batch's body (docs/batching.md): `{id, type: "batch", count, events: [...]}`, where `id` is the
 * batch's id (its webhook-id) and each of `events` is the envelope that event alone would have been
 * sent in, its own id included. Members are given already built, in the batch's order.
 */
export function buildBatchEnvelope(batchId: string, memberEnvelopes: readonly string[]): string {
  return `{"id":${JSON.stringify(batchId)},"type":"batch","count":${memberEnvelopes.length},"events":[${memberEnvelopes.join(',')}]}`;
}
