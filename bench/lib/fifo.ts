// Ordered (FIFO) delivery through real Carteiro processes: deliveries/s to FIFO endpoints, one alone
// and many together, and whether each endpoint's events arrived in the order they were accepted.
//
//   1. a fresh schema; `carteiro api`; `endpoints` FIFO endpoints, each with an event type of its own
//      (bench.fifo.e1, …) on its own path of the bench receiver
//   2. the backlog, endpoint by endpoint, one request at a time (so the order accepted is the order
//      of data.seq): `perEndpoint` events each
//   3. `carteiro worker`; the run lasts from the receiver's first acknowledgement to its last
//   4. order: per endpoint, the receiver's first acknowledgement of each seq must come in seq order
import { nowMs } from './envelope.ts';
import type { ReceiverHandle } from './receiver.ts';
import {
  api,
  benchSchema,
  benchSql,
  carteiroEnv,
  cleanRedis,
  dropBenchSchema,
  ingestBacklog,
  registerBenchEventType,
  startApi,
  startWorker,
  until,
  type CarteiroProc,
} from './carteiro.ts';

export type FifoOptions = {
  databaseUrl: string;
  redisUrl?: string | undefined;
  logLevel?: string;
  payloadBytes: number;
  endpoints: number;
  perEndpoint: number;
  timeoutMs: number;
  log: (line: string) => void;
};

export type FifoResult = {
  endpoints: number;
  deliveries: number;
  delivered: number;
  /** From the first acknowledgement to the last. */
  ms: number;
  perSecond: number;
  /** Per endpoint: deliveries acknowledged before one accepted earlier. */
  outOfOrder: number;
  duplicates: number;
};

export async function runFifo(rx: ReceiverHandle, o: FifoOptions): Promise<FifoResult> {
  const schema = benchSchema('fifo');
  const env = carteiroEnv({ databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, schema, logLevel: o.logLevel });
  const sql = benchSql(o.databaseUrl, schema);
  let apiProc: CarteiroProc | null = null;
  let worker: CarteiroProc | null = null;
  const deliveries = o.endpoints * o.perEndpoint;
  try {
    apiProc = await startApi(env);
    const url = apiProc.url as string;
    for (let k = 0; k < o.endpoints; k++) {
      const type = `bench.fifo.e${k + 1}`;
      await registerBenchEventType(url, type);
      const r = await api(url, 'POST', 'endpoints', { name: `fifo-${k + 1}`, url: `${rx.url}/f${k + 1}`, events: [type], fifo: true });
      if (r.status !== 201) throw new Error(`endpoint: ${r.status} ${JSON.stringify(r.body)}`);
    }
    for (let k = 0; k < o.endpoints; k++) {
      await ingestBacklog(url, {
        events: o.perEndpoint,
        payloadBytes: o.payloadBytes,
        eventType: `bench.fifo.e${k + 1}`,
        concurrency: 1,
        seqStart: k * o.perEndpoint,
        timeoutMs: o.timeoutMs,
      });
    }
    await rx.reset();
    o.log(`fifo: ${o.endpoints} FIFO endpoint(s), ${o.perEndpoint.toLocaleString('en-US')} events each accepted; starting the worker`);
    worker = await startWorker(env, sql);
    const deadline = nowMs() + o.timeoutMs;
    await until(async () => (await rx.stats()).uniqueIds >= deliveries || nowMs() > deadline, o.timeoutMs + 5_000, 200);
    const stats = await rx.stats();
    const acks = new Map(await rx.seqs());
    let outOfOrder = 0;
    for (let k = 0; k < o.endpoints; k++) {
      let last = -Infinity;
      for (let i = 0; i < o.perEndpoint; i++) {
        const at = acks.get(k * o.perEndpoint + i);
        if (at === undefined) continue;
        if (at < last) outOfOrder++;
        last = Math.max(last, at);
      }
    }
    const ms = stats.firstReceiveMs !== null && stats.lastReceiveMs !== null ? stats.lastReceiveMs - stats.firstReceiveMs : 0;
    return {
      endpoints: o.endpoints,
      deliveries,
      delivered: stats.uniqueIds,
      ms,
      perSecond: ms > 0 ? (stats.uniqueIds / ms) * 1000 : 0,
      outOfOrder,
      duplicates: stats.duplicates,
    };
  } finally {
    await worker?.kill();
    await apiProc?.stop(15_000);
    await sql.end({ timeout: 5 }).catch(() => {});
    await dropBenchSchema(o.databaseUrl, schema).catch((e: Error) => o.log(`drop schema ${schema}: ${e.message}`));
    await cleanRedis(o.redisUrl, schema);
  }
}
