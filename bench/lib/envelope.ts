// The JSON envelope every benchmark sends: {id, type, timestamp, data}.
// data.sent_at_ms is the sender's epoch-ms clock at the moment the event was
// accepted/sent; the receiver subtracts it from its own clock to get latency.
// Both sides read performance.timeOrigin + performance.now(): sub-ms resolution
// and comparable across processes on the same host.

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export interface EnvelopeData {
  sent_at_ms: number;
  pad: string;
  [key: string]: unknown;
}

export interface Envelope {
  id: string;
  type: string;
  timestamp: string;
  data: EnvelopeData;
}

// Padding is reused across calls: slicing a cached string is cheaper than building one.
let padCache = '';
function pad(n: number): string {
  if (n <= 0) return '';
  if (padCache.length < n) padCache = 'x'.repeat(Math.max(n, 4096));
  return padCache.slice(0, n);
}

/**
 * Payload object (`data`) of about `payloadBytes` bytes once the whole envelope
 * is serialized. The pad length is sized for a representative envelope; the
 * exact size varies by a few bytes with the id and timestamp, which is fine
 * for "~1 KB" workloads.
 */
export function makeData(payloadBytes: number, sentAtMs: number = nowMs()): EnvelopeData {
  // 131 ≈ the serialized size of the envelope with an empty pad.
  return { sent_at_ms: sentAtMs, pad: pad(payloadBytes - 131) };
}

export function makeEnvelope(id: string, type: string, data: EnvelopeData): Envelope {
  return { id, type, timestamp: new Date().toISOString(), data };
}

/** Serialized envelope of ~payloadBytes, stamped now. */
export function envelopeBody(id: string, payloadBytes: number, type = 'bench.event'): string {
  return JSON.stringify(makeEnvelope(id, type, makeData(payloadBytes)));
}
