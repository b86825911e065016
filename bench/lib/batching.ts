// Batching (docs/batching.md) through real Carteiro processes: events/s delivered to one endpoint
// that takes batches of `batchMaxEvents`, or one event per POST (batchMaxEvents null), draining the
// same backlog.
//
//   1. a fresh schema; `carteiro api`; one endpoint on its own path of the bench receiver
//   2. the backlog: `events` events, accepted before any worker runs
//   3. `carteiro worker`; the run lasts from the receiver's first request to its last, once the ledger
//      counts every dispatch succeeded (the receiver sees requests; a batch is one for many events)
import { nowMs } from './envelope.ts';
import type { ReceiverHandle } from './receiver.ts';
import {
  api,
  benchSchema,
  benchSql,
  carteiroEnv,
  cleanRedis,
  dispatchCounts,
  dropBenchSchema,
  ingestBacklog,
  registerBenchEventType,
  startApi,
  startWorker,
  until,
  type CarteiroProc,
} from './carteiro.ts';

export type BatchingOptions = {
  databaseUrl: string;
  redisUrl?: string | undefined;
  logLevel?: string;
  payloadBytes: number;
  events: number;
  /** Events per POST at most; null: batching off, one event per POST. */
  batchMaxEvents: number | null;
  timeoutMs: number;
  log: (line: string) => void;
};

export type BatchingResult = {
  batchMaxEvents: number | null;
  events: number;
  /** Dispatches succeeded in the ledger. */
  delivered: number;
  /** Requests the receiver acknowledged (batches, or events when one per POST). */
  requests: number;
  /** From the receiver's first request to its last. */
  ms: number;
  perSecond: number;
  requestsPerSecond: number;
};

export async function runBatching(rx: ReceiverHandle, o: BatchingOptions): Promise<BatchingResult> {
  const schema = benchSchema('batch');
  const env = carteiroEnv({ databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, schema, logLevel: o.logLevel });
  const sql = benchSql(o.databaseUrl, schema);
  let apiProc: CarteiroProc | null = null;
  let worker: CarteiroProc | null = null;
  try {
    apiProc = await startApi(env);
    const url = apiProc.url as string;
    await registerBenchEventType(url);
    const path = `/batch${o.batchMaxEvents ?? 1}`;
    const r = await api(url, 'POST', 'endpoints', {
      name: `batching-${o.batchMaxEvents ?? 'off'}`,
      url: `${rx.url}${path}`,
      events: ['bench.event'],
      ...(o.batchMaxEvents ? { batch_max_events: o.batchMaxEvents, batch_max_wait_ms: 50 } : {}),
    });
    if (r.status !== 201) throw new Error(`endpoint: ${r.status} ${JSON.stringify(r.body)}`);
    await ingestBacklog(url, { events: o.events, payloadBytes: o.payloadBytes, timeoutMs: o.timeoutMs });
    await rx.reset();
    o.log(
      `batching: ${o.events.toLocaleString('en-US')} events accepted for one endpoint, ${o.batchMaxEvents ? `batches of up to ${o.batchMaxEvents}` : 'one event per POST'}; starting the worker`,
    );
    worker = await startWorker(env, sql);
    const deadline = nowMs() + o.timeoutMs;
    const done = await until(
      async () => {
        const c = await dispatchCounts(sql);
        return c.succeeded >= o.events || nowMs() > deadline ? c : null;
      },
      o.timeoutMs + 5_000,
      50,
    );
    const stats = await rx.stats();
    const ms = stats.firstReceiveMs !== null && stats.lastReceiveMs !== null ? stats.lastReceiveMs - stats.firstReceiveMs : 0;
    const delivered = done?.succeeded ?? 0;
    return {
      batchMaxEvents: o.batchMaxEvents,
      events: o.events,
      delivered,
      requests: stats.acknowledged,
      ms,
      perSecond: ms > 0 ? (delivered / ms) * 1000 : 0,
      requestsPerSecond: ms > 0 ? (stats.acknowledged / ms) * 1000 : 0,
    };
  } finally {
    await worker?.kill();
    await apiProc?.stop(15_000);
    await sql.end({ timeout: 5 }).catch(() => {});
    await dropBenchSchema(o.databaseUrl, schema).catch((e: Error) => o.log(`drop schema ${schema}: ${e.message}`));
    await cleanRedis(o.redisUrl, schema);
  }
}
