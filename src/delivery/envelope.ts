/**
 * The body every receiver gets: `{id, type, timestamp, data}`. Built by string concatenation around
 * the stored jsonb text, so an event's data is never parsed and re-serialised on the delivery path;
 * the bytes built here are the bytes signed and the bytes sent.
 */
export function buildEnvelope(eventId: string, eventType: string, createdAt: Date, dataJson: string): string {
  return `{"id":${JSON.stringify(eventId)},"type":${JSON.stringify(eventType)},"timestamp":${JSON.stringify(createdAt.toISOString())},"data":${dataJson}}`;
}
