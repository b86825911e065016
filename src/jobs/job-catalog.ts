/**
 * Every background job Carteiro runs, with its payload and result shapes, in one place.
 * Jobs are conveniences over the ledger (they only read and write it), so a lost job loses no event.
 */
export type JobCatalog = {
  'bulk-replay': {
    payload: {
      organizationId: string | null;
      status: 'failed' | 'completed';
      eventType?: string | undefined;
      since?: string | undefined;
      until?: string | undefined;
      endpointId?: string | undefined;
      /** When the replay was asked for: only deliveries finished before then are requeued, so a run retried after a crash requeues nothing twice. */
      requestedAt?: string | undefined;
    };
    result: { events: number; dispatches: number };
  };
  'retention-purge': { payload: { olderThanDays: number }; result: Record<string, number> };
  'n8n-discovery': { payload: { organizationId: string }; result: Record<string, number> };
};

export type JobName = keyof JobCatalog;

export type JobContext = {
  progress(value: number | Record<string, unknown>): Promise<void>;
  /** The progress an earlier run of this same job recorded before it stopped (a retry after a crash), else null. */
  resumed: Record<string, unknown> | null;
};
export type JobHandler<N extends JobName> = (payload: JobCatalog[N]['payload'], ctx: JobContext) => Promise<JobCatalog[N]['result']>;

export type JobState = {
  id: string;
  name: JobName;
  state: 'waiting' | 'active' | 'completed' | 'failed' | 'delayed' | 'unknown';
  payload: unknown;
  progress: unknown;
  result: unknown;
  error: string | null;
};
