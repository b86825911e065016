// One backlog drain through real Carteiro processes, the measurement behind the sustained,
// scale-out, memory and retries sections:
//
//   1. a fresh schema; `carteiro api` on a free port; the bench event type; `fanout` endpoints,
//      each on its own path of the (already running) receiver
//   2. `workers` × `carteiro worker` spawned and, once each has its heartbeat in the ledger, paused
//      with SIGSTOP: the start gate, so that every worker is up when the drain begins and process
//      start-up (≈1 s each, several at once on two cores) is not charged to the drain
//   3. the backlog: `events` events through POST /events/batch while the workers are paused
//   4. SIGCONT to every worker at once; the clock runs from then until Postgres holds every
//      dispatch as finished with its attempt row (synchronous_commit stays at the server's
//      setting, `on` by default)
//   5. stop (SIGTERM: graceful), drop the schema, remove the run's Redis keys
//
// RSS of the API (while ingesting) and of each worker (while draining) is sampled from /proc.
import { nowMs } from './envelope.ts';
import type { ReceiverHandle, ReceiverStats } from './receiver.ts';
import {
  CpuMeter,
  RssSampler,
  attemptCounts,
  benchSchema,
  benchSql,
  carteiroEnv,
  cleanRedis,
  createEndpoints,
  dispatchCounts,
  dropBenchSchema,
  ingestBacklog,
  registerBenchEventType,
  spawnCarteiro,
  startApi,
  until,
  waitWorkerReady,
  type CarteiroProc,
  type Sql,
} from './carteiro.ts';

export type DrainOptions = {
  label: string;
  databaseUrl: string;
  redisUrl?: string | undefined;
  receiver: ReceiverHandle;
  events: number;
  fanout: number;
  workers: number;
  payloadBytes: number;
  logLevel?: string;
  /** More fields for every endpoint (e.g. a content filter or a transformation, for the shaping section). */
  endpointFields?: Record<string, unknown>;
  /** Extra Carteiro environment (e.g. a fast retry policy for the retries section). */
  extraEnv?: Record<string, string>;
  /** Node flags for the worker processes (e.g. --cpu-prof). */
  workerNodeArgs?: string[];
  /** Bound on the whole drain. */
  timeoutMs: number;
  /** Runs with the backlog in place and no worker yet (e.g. EXPLAIN ANALYZE of the claim). */
  beforeWorkers?: (sql: Sql) => Promise<void>;
  log?: (line: string) => void;
};

export type DrainResult = {
  label: string;
  events: number;
  fanout: number;
  workers: number;
  /** Deliveries the backlog makes (events × fan-out). */
  expected: number;
  ingest: { ms: number; perSecond: number };
  /** Spawn → every worker's first heartbeat. */
  workerBootMs: number;
  drain: {
    /** Workers released (SIGCONT) → every dispatch finished and recorded in Postgres. */
    ms: number;
    perSecond: number;
    /** Deliveries/s between 1 s after the release and the last delivery (no start or tail effects). */
    steadyPerSecond: number | null;
    /** Release → first delivery at the receiver. */
    firstDeliveryMs: number;
    /** First → last delivery, as the receiver saw them. */
    receiverMs: number;
    /** Last delivery at the receiver → all recorded. */
    recordLagMs: number;
    timedOut: boolean;
  };
  receiver: Pick<ReceiverStats, 'requests' | 'acknowledged' | 'uniqueIds' | 'duplicates' | 'failuresInjected' | 'seqConflicts'>;
  ledger: {
    attemptRows: number;
    successRows: number;
    succeeded: number;
    failed: number;
    unfinished: number;
    /** Transactions that recorded outcomes (distinct commit timestamps of attempt rows), and outcomes per one. */
    recordTransactions: number;
    attemptsPerRecordTransaction: number;
  };
  rssMb: { apiIngest: number; apiDrain: number; worker: number };
  /**
   * CPU ms spent during the drain by the worker processes (Node), the Postgres backends serving
   * them (same host only), and the receiver; and the same per delivery, in µs.
   */
  cpu: { workerMs: number; postgresMs: number; receiverMs: number; perDeliveryUs: { worker: number; postgres: number; receiver: number } };
};

export async function runDrain(o: DrainOptions): Promise<DrainResult> {
  const log = o.log ?? (() => {});
  const schema = benchSchema('bench');
  const env = carteiroEnv({ databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, schema, logLevel: o.logLevel, ...(o.extraEnv ? { extra: o.extraEnv } : {}) });
  const sql = benchSql(o.databaseUrl, schema);
  const expected = o.events * o.fanout;
  let apiProc: CarteiroProc | null = null;
  const workers: CarteiroProc[] = [];
  let paused = false;
  try {
    apiProc = await startApi(env);
    await registerBenchEventType(apiProc.url as string);
    await createEndpoints(apiProc.url as string, o.receiver.url, o.fanout, undefined, o.endpointFields);
    await o.receiver.reset();

    const spawnedAt = nowMs();
    for (let i = 0; i < o.workers; i++) workers.push(spawnCarteiro('worker', env, o.workerNodeArgs ? { nodeArgs: o.workerNodeArgs } : {}));
    await Promise.all(workers.map((w) => waitWorkerReady(w, sql, 90_000)));
    const workerBootMs = nowMs() - spawnedAt;
    for (const w of workers) w.child.kill('SIGSTOP');
    paused = true;

    const ingestRss = new RssSampler();
    ingestRss.watch('api', apiProc.pid);
    ingestRss.start();
    log(`${o.label}: ingesting ${o.events.toLocaleString('en-US')} events (fan-out ${o.fanout}), ${o.workers} worker(s) paused`);
    const ingest = await ingestBacklog(apiProc.url as string, { events: o.events, payloadBytes: o.payloadBytes, timeoutMs: o.timeoutMs });
    const apiIngest = ingestRss.stop().api ?? 0;
    const before = await dispatchCounts(sql);
    if (before.total !== expected) throw new Error(`${o.label}: backlog has ${before.total} dispatches, expected ${expected}`);
    if (o.beforeWorkers) await o.beforeWorkers(sql);
    await o.receiver.reset();

    const drainRss = new RssSampler();
    drainRss.watch('api', apiProc.pid);
    for (const w of workers) drainRss.watch('worker', w.pid);
    drainRss.start();
    log(`${o.label}: draining ${expected.toLocaleString('en-US')} deliveries with ${o.workers} worker process(es)`);
    const cpu = new CpuMeter();
    await cpu.start({ worker: workers.map((w) => w.pid), receiver: [o.receiver.pid] }, sql, 'carteiro-worker');
    const releasedAt = nowMs();
    for (const w of workers) w.child.kill('SIGCONT');
    paused = false;

    const deadline = performance.now() + o.timeoutMs;
    // Count deliveries 1 s in, for the steady rate.
    let atOneSecond: { at: number; unique: number } | null = null;
    const steadyProbe = setTimeout(() => {
      void o.receiver.stats().then(
        (s) => (atOneSecond = { at: nowMs(), unique: s.uniqueIds }),
        () => {},
      );
    }, 1_000);
    const delivered = await until(async () => (await o.receiver.stats()).uniqueIds >= expected, o.timeoutMs, 50);
    clearTimeout(steadyProbe);
    const recorded = await until(
      async () => {
        const c = await dispatchCounts(sql);
        return c.succeeded + c.failed >= expected ? c : null;
      },
      Math.max(1_000, deadline - performance.now()),
      50,
    );
    const recordedAt = nowMs();
    const used = await cpu.stop();
    const rx = await o.receiver.stats();
    const rss = drainRss.stop();
    const counts = await dispatchCounts(sql);
    const attempts = await attemptCounts(sql);
    const [tx] = await sql<{ n: number }[]>`SELECT count(DISTINCT created_at)::int AS n FROM webhook_deliveries`;

    const first = rx.firstReceiveMs ?? releasedAt;
    const last = rx.lastReceiveMs ?? recordedAt;
    const ms = recordedAt - releasedAt;
    const probe = atOneSecond as { at: number; unique: number } | null;
    const steadyWindow = probe ? last - probe.at : 0;
    return {
      label: o.label,
      events: o.events,
      fanout: o.fanout,
      workers: o.workers,
      expected,
      ingest: { ms: ingest.ms, perSecond: ingest.perSecond },
      workerBootMs,
      drain: {
        ms,
        perSecond: (Math.min(rx.uniqueIds, expected) / ms) * 1000,
        steadyPerSecond: probe && steadyWindow > 500 ? ((rx.uniqueIds - probe.unique) / steadyWindow) * 1000 : null,
        firstDeliveryMs: first - releasedAt,
        receiverMs: last - first,
        recordLagMs: recordedAt - last,
        timedOut: !delivered || !recorded,
      },
      receiver: {
        requests: rx.requests,
        acknowledged: rx.acknowledged,
        uniqueIds: rx.uniqueIds,
        duplicates: rx.duplicates,
        failuresInjected: rx.failuresInjected,
        seqConflicts: rx.seqConflicts,
      },
      ledger: {
        attemptRows: attempts.attempts,
        successRows: attempts.successes,
        succeeded: counts.succeeded,
        failed: counts.failed,
        unfinished: counts.total - counts.succeeded - counts.failed,
        recordTransactions: tx?.n ?? 0,
        attemptsPerRecordTransaction: Math.round((attempts.attempts / Math.max(1, tx?.n ?? 0)) * 10) / 10,
      },
      rssMb: { apiIngest, apiDrain: rss.api ?? 0, worker: rss.worker ?? 0 },
      cpu: {
        workerMs: used.worker ?? 0,
        postgresMs: used.postgres ?? 0,
        receiverMs: used.receiver ?? 0,
        perDeliveryUs: {
          worker: Math.round(((used.worker ?? 0) * 1000) / expected),
          postgres: Math.round(((used.postgres ?? 0) * 1000) / expected),
          receiver: Math.round(((used.receiver ?? 0) * 1000) / expected),
        },
      },
    };
  } finally {
    if (paused) for (const w of workers) w.child.kill('SIGCONT');
    await Promise.all(workers.map((w) => w.stop(30_000)));
    await apiProc?.stop(15_000);
    await sql.end({ timeout: 5 }).catch(() => {});
    await dropBenchSchema(o.databaseUrl, schema).catch((e: Error) => log(`drop schema ${schema}: ${e.message}`));
    await cleanRedis(o.redisUrl, schema);
  }
}
