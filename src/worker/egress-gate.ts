/**
 * Per-endpoint delivery rate limits. The dispatcher asks before each POST; a positive answer is how
 * long to wait, and the dispatch goes back to the queue for that long without spending an attempt.
 */
export type EgressGate = {
  /** ms to wait before this endpoint may receive another request; 0 to go now. */
  reserve(endpointId: string, ratePerSecond: number): Promise<number>;
  close(): Promise<void>;
};
