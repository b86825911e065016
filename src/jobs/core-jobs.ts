/** Handlers for the core's background jobs. */
import type { Ledger } from '../ledger/connection.ts';
import type { JobRunner } from './job-runner.ts';
import { findEventsToReplay, requeueEventDispatches } from '../ledger/replays.ts';

const REPLAY_PAGE_SIZE = 500;

export function registerCoreJobs(services: { ledger: Pick<Ledger, 'sql'>; jobs: JobRunner }): void {
  const { ledger, jobs } = services;

  // Pages through matching events oldest first, requeueing each one's finished dispatches; progress
  // is the count so far, so a dashboard can show it while a large replay runs. Progress also keeps
  // the page cursor: a run retried after a crash resumes there with its counts, and requeues only
  // deliveries finished before the replay was asked for, so nothing is sent twice by the retry.
  jobs.register('bulk-replay', async (p, ctx) => {
    const resumed = ctx.resumed;
    let after = typeof resumed?.after === 'string' ? resumed.after : undefined;
    let events = typeof resumed?.events === 'number' ? resumed.events : 0;
    let dispatches = typeof resumed?.dispatches === 'number' ? resumed.dispatches : 0;
    const finishedBefore = p.requestedAt ? new Date(p.requestedAt) : undefined;
    for (;;) {
      const ids = await findEventsToReplay(ledger.sql, {
        organizationId: p.organizationId,
        status: p.status,
        eventType: p.eventType,
        since: p.since ? new Date(p.since) : undefined,
        until: p.until ? new Date(p.until) : undefined,
        after,
        limit: REPLAY_PAGE_SIZE,
      });
      if (ids.length === 0) break;
      for (const id of ids) {
        const n = await requeueEventDispatches(ledger.sql, id, { endpointId: p.endpointId, onlyFailed: p.status === 'failed', finishedBefore });
        if (n > 0) events++;
        dispatches += n;
      }
      after = ids[ids.length - 1];
      await ctx.progress({ events, dispatches, after });
    }
    return { events, dispatches };
  });
}
