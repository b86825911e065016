// The isolation section of `npm run bench`: how much a healthy endpoint's latency suffers from the
// endpoints beside it that hang, answer slowly or refuse connections, and how much a small
// organization's suffers from another draining a large backlog. Everything goes through Carteiro's
// public HTTP API and its processes, as in the other sections.
//
// A case (runNoisyCase): one healthy endpoint on the bench receiver (…/webhook/healthy, subscribed to
// `iso.*`) and N noisy ones, each on its own loopback port (bench/lib/noisy-receivers.ts).
//
//   spread  100 events/s; event n is `iso.h<n mod N>`: it goes to the healthy endpoint and to noisy
//           endpoint n mod N, which is subscribed to that type alone, so the noisy endpoints
//           together get 100 events/s
//   fanout  10 events/s of `iso.all`, to which every noisy endpoint is subscribed (fan-out N + 1)
//
// Every case starts from a clean slate: a fresh schema, `carteiro api` and one `carteiro worker`
// started for it, fresh noisy ports. At the end the worker is SIGKILLed (by its pid): the requests
// it still holds open to hanging receivers (up to the 30 s timeout, longer than a case) die with it
// instead of lingering into the next case, and its schema, with whatever it still owed, is dropped.
// The noisy receivers' sockets are then closed.
//
// Latency is accepted → delivered as in the latency section: the healthy receiver's clock at the
// first acknowledgement of an event minus data.sent_at_ms, stamped when its POST /trigger was sent.
// It is computed per event (data.seq) over the events whose POST was accepted (202) in the measured
// window, after a warm-up. An accepted event not delivered by the end of the grace period counts
// with the time it had waited so far: a lower bound, shown as "≥".
//
// Organizations (runOrganizations): two organizations in one schema, each with one endpoint. The
// small one (B) sends 10 events/s to the bench receiver; its latency is measured with no backlog,
// then while the other (A) drains a backlog put in through POST /events/batch while the worker was
// paused (SIGSTOP, as the drain section's start gate), to a receiver of its own. Only B's events
// sent before A's backlog was fully delivered count in the loaded figure.
import { makeData, nowMs } from './envelope.ts';
import { offerLoad } from './offered.ts';
import { startReceiver, type ReceiverHandle } from './receiver.ts';
import { startNoisyReceivers, type NoisyKind, type NoisyReceivers, type NoisyStats } from './noisy-receivers.ts';
import {
  BENCH_ADMIN_KEY,
  BENCH_EVENT_TYPE,
  api,
  benchSchema,
  benchSql,
  carteiroEnv,
  cleanRedis,
  dropBenchSchema,
  ingestBacklog,
  registerBenchEventType,
  sleep,
  startApi,
  startWorker,
  type CarteiroProc,
} from './carteiro.ts';

export type IsolationMode = 'spread' | 'fanout';

export type IsolationOptions = {
  databaseUrl: string;
  redisUrl?: string | undefined;
  logLevel: string;
  payloadBytes: number;
  /** Events/s of the spread and fan-out runs (100 and 10). */
  spreadRate: number;
  fanoutRate: number;
  warmupMs: number;
  spreadMs: number;
  fanoutMs: number;
  /** How long after the window an accepted event may still arrive before it counts as a lower bound. */
  graceMs: number;
  /** How long a slow receiver takes to answer. */
  slowMs: number;
  /** Organizations: backlog size, the small organization's rate and window. */
  orgBacklog: number;
  orgRate: number;
  orgMs: number;
  log: (line: string) => void;
};

export type Percentiles = {
  count: number;
  accepted: number;
  delivered: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
  /** Percentiles that fell on an event not delivered by the end of the grace period (a lower bound). */
  lowerBound: { p50: boolean; p95: boolean; p99: boolean; max: boolean };
};

export type NoisyCaseResult = {
  mode: IsolationMode;
  kind: NoisyKind | 'none';
  noisy: number;
  rate: number;
  windowMs: number;
  latency: Percentiles;
  offered: { offered: number; sent: number; dropped: number; byStatus: Record<string, number>; errors: number; response: { p50: number; p99: number } };
  noisyStats: NoisyStats | null;
  /** Wall clock of the whole case (set-up, warm-up, window, grace, tear-down), and of its parts. */
  ms: { total: number; setup: number; warmup: number; window: number; grace: number; teardown: number };
};

export type OrganizationsResult = {
  backlog: number;
  rate: number;
  windowMs: number;
  unloaded: Percentiles;
  loaded: Percentiles;
  /**
   * The loaded figure split at the commit of each delivered event: POST sent → event committed (the
   * API and its transaction), and committed → first acknowledged (claim, send, receive).
   */
  loadedSplit: { accept: Percentiles; deliver: Percentiles };
  /** B's events in the loaded window, and how many of them were sent before A's backlog was delivered. */
  loadedSentWhileDraining: number;
  ingest: { ms: number; perSecond: number };
  /** Worker released → A's whole backlog delivered (null: not within the window and grace). */
  backlogDrainedMs: number | null;
  backlogDeliveredAtEnd: number;
  ms: { total: number };
};

const HEADERS = { authorization: `Bearer ${BENCH_ADMIN_KEY}`, 'content-type': 'application/json' };
/** Warm-up events carry seq from here, so they never count in a window. */
const WARMUP_SEQ = 1_000_000_000;

/**
 * Percentiles over the accepted events of a window: delivered ones at (first ack − sent), the others
 * at (endMs − sent), flagged as lower bounds.
 */
export function windowPercentiles(
  sentAt: Float64Array,
  accepted: Uint8Array,
  acks: Map<number, number>,
  endMs: number,
  include?: (seq: number) => boolean,
): Percentiles {
  const values: { v: number; censored: boolean }[] = [];
  let delivered = 0;
  for (let i = 0; i < sentAt.length; i++) {
    if (!accepted[i] || (include && !include(i))) continue;
    const ack = acks.get(i);
    if (ack !== undefined) {
      delivered++;
      values.push({ v: ack - (sentAt[i] as number), censored: false });
    } else values.push({ v: endMs - (sentAt[i] as number), censored: true });
  }
  values.sort((a, b) => a.v - b.v);
  const n = values.length;
  const at = (p: number) => values[Math.min(n - 1, Math.max(0, Math.ceil(p * n) - 1))];
  const pick = (p: number) => (n ? (at(p) as { v: number }).v : 0);
  const lb = (p: number) => (n ? (at(p) as { censored: boolean }).censored : false);
  return {
    count: n,
    accepted: n,
    delivered,
    p50: pick(0.5),
    p95: pick(0.95),
    p99: pick(0.99),
    max: pick(1),
    lowerBound: { p50: lb(0.5), p95: lb(0.95), p99: lb(0.99), max: lb(1) },
  };
}

/**
 * Offers POST /trigger at `rate` for `ms` and returns when each event was sent and whether it was
 * accepted, by its seq (0…). `seqBase` shifts the seq carried in the data (warm-ups).
 */
async function offerWindow(
  baseUrl: string,
  o: { rate: number; ms: number; payloadBytes: number; eventType: (n: number) => string; headers?: Record<string, string>; seqBase?: number },
) {
  const total = Math.floor((o.rate * o.ms) / 1000);
  const sentAt = new Float64Array(total);
  const accepted = new Uint8Array(total);
  const base = o.seqBase ?? 0;
  const load = await offerLoad({
    baseUrl,
    path: '/api/webhooks/trigger',
    headers: { ...HEADERS, ...o.headers },
    ratePerSecond: o.rate,
    durationMs: o.ms,
    connections: 16,
    body: (n, at) => {
      if (n < total) sentAt[n] = at;
      return JSON.stringify({ event_type: o.eventType(n), data: { ...makeData(o.payloadBytes, at), seq: base + n } });
    },
    onAnswer: (n, status) => {
      if (n < total && status === 202) accepted[n] = 1;
    },
  });
  return { total, sentAt, accepted, load };
}

/** Waits (polling the receiver) until every accepted seq of the window has arrived, or `graceMs` is over. */
async function awaitWindow(
  rx: ReceiverHandle,
  w: { total: number; accepted: Uint8Array },
  graceMs: number,
): Promise<{ acks: Map<number, number>; endMs: number }> {
  const deadline = performance.now() + graceMs;
  let want = 0;
  for (let i = 0; i < w.total; i++) want += w.accepted[i] as number;
  for (;;) {
    const acks = new Map((await rx.seqs()).filter(([s]) => s < w.total));
    let got = 0;
    for (const s of acks.keys()) got += w.accepted[s] as number;
    if (got >= want || performance.now() >= deadline) return { acks, endMs: nowMs() };
    await sleep(200);
  }
}

async function registerTypes(url: string, names: string[], headers: Record<string, string> = {}): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < names.length) await registerBenchEventType(url, names[next++] as string, headers);
    }),
  );
}

async function createEndpoint(url: string, name: string, target: string, events: string[], headers: Record<string, string> = {}): Promise<string> {
  const r = await api(url, 'POST', 'endpoints', { name, url: target, events }, 30_000, headers);
  if (r.status !== 201) throw new Error(`endpoint ${name}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.id as string;
}

async function createEndpoints(url: string, specs: { name: string; target: string; events: string[] }[]): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < specs.length) {
        const s = specs[next++] as { name: string; target: string; events: string[] };
        await createEndpoint(url, s.name, s.target, s.events);
      }
    }),
  );
}

/** One healthy endpoint beside `count` noisy ones of `kind` (count 0: the baseline), measured. */
export async function runNoisyCase(rx: ReceiverHandle, o: IsolationOptions, mode: IsolationMode, kind: NoisyKind, count: number): Promise<NoisyCaseResult> {
  const t0 = performance.now();
  const label = `isolation ${mode}, ${count ? `${count} ${kindWord(kind)}` : 'no noisy endpoint'}`;
  const schema = benchSchema('iso');
  const env = carteiroEnv({ databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, schema, logLevel: o.logLevel });
  const sql = benchSql(o.databaseUrl, schema);
  const rate = mode === 'spread' ? o.spreadRate : o.fanoutRate;
  const windowMs = mode === 'spread' ? o.spreadMs : o.fanoutMs;
  let apiProc: CarteiroProc | null = null;
  let worker: CarteiroProc | null = null;
  let noisy: NoisyReceivers | null = null;
  const ms = { total: 0, setup: 0, warmup: 0, window: 0, grace: 0, teardown: 0 };
  try {
    noisy = await startNoisyReceivers(kind, count, { slowMs: o.slowMs });
    apiProc = await startApi(env);
    const url = apiProc.url as string;
    const spreadTypes = Array.from({ length: Math.max(1, count) }, (_, i) => `iso.h${i}`);
    await registerTypes(url, mode === 'spread' ? spreadTypes : ['iso.all']);
    await createEndpoint(url, 'healthy', `${rx.url}/healthy`, ['iso.*']);
    await createEndpoints(
      url,
      noisy.urls.map((target, i) => ({ name: `${kind}-${i}`, target, events: [mode === 'spread' ? `iso.h${i}` : 'iso.all'] })),
    );
    worker = await startWorker(env, sql);
    const eventType = mode === 'spread' ? (n: number) => `iso.h${n % Math.max(1, count)}` : () => 'iso.all';
    let t = performance.now();
    ms.setup = t - t0;

    o.log(`${label}: warm-up ${o.warmupMs / 1000} s, then ${rate} events/s for ${windowMs / 1000} s`);
    await offerWindow(url, { rate, ms: o.warmupMs, payloadBytes: o.payloadBytes, eventType, seqBase: WARMUP_SEQ });
    await rx.reset();
    ms.warmup = performance.now() - t;
    t = performance.now();
    const w = await offerWindow(url, { rate, ms: windowMs, payloadBytes: o.payloadBytes, eventType });
    ms.window = performance.now() - t;
    t = performance.now();
    const { acks, endMs } = await awaitWindow(rx, w, o.graceMs);
    ms.grace = performance.now() - t;
    const noisyStats = count ? await noisy.stats().catch(() => null) : null;
    const latency = windowPercentiles(w.sentAt, w.accepted, acks, endMs);
    // ms.teardown and ms.total are filled in by the finally block before the caller sees them.
    return {
      mode,
      kind: count ? kind : 'none',
      noisy: count,
      rate,
      windowMs,
      latency,
      offered: {
        offered: w.load.offered,
        sent: w.load.sent,
        dropped: w.load.dropped,
        byStatus: w.load.byStatus,
        errors: w.load.errors,
        response: { p50: w.load.responseMs.p50, p99: w.load.responseMs.p99 },
      },
      noisyStats,
      ms,
    };
  } finally {
    const t = performance.now();
    // SIGKILL: what the worker still holds open to hanging receivers ends here, not at its timeout.
    await worker?.kill();
    await apiProc?.stop(15_000);
    await noisy?.stop();
    await sql.end({ timeout: 5 }).catch(() => {});
    await dropBenchSchema(o.databaseUrl, schema).catch((e: Error) => o.log(`drop schema ${schema}: ${e.message}`));
    await cleanRedis(o.redisUrl, schema);
    ms.teardown = performance.now() - t;
    ms.total = performance.now() - t0;
    o.log(
      `${label}: case took ${(ms.total / 1000).toFixed(1)} s (set-up ${(ms.setup / 1000).toFixed(1)}, grace ${(ms.grace / 1000).toFixed(1)}, tear-down ${(ms.teardown / 1000).toFixed(1)})`,
    );
  }
}

/**
 * Where a window's latency went, per delivered event: sent → committed (the event row's created_at,
 * the transaction's start on the server's clock, which is this machine's) and committed → acknowledged.
 */
async function splitAtCommit(
  sql: ReturnType<typeof benchSql>,
  organizationId: string,
  w: { sentAt: Float64Array; accepted: Uint8Array },
  acks: Map<number, number>,
  include: (seq: number) => boolean,
): Promise<{ accept: Percentiles; deliver: Percentiles }> {
  const rows = await sql<{ seq: number; committed_ms: number }[]>`
    SELECT (data->>'seq')::bigint::int AS seq, (extract(epoch FROM created_at) * 1000)::float8 AS committed_ms
    FROM webhook_events WHERE organization_id = ${organizationId} AND (data->>'seq')::bigint < ${w.sentAt.length}`;
  const committed = new Map(rows.map((r) => [r.seq, r.committed_ms]));
  const accept = new Map<number, number>();
  const deliver = new Map<number, number>();
  for (const [seq, ack] of acks) {
    const at = committed.get(seq);
    if (at === undefined || !w.accepted[seq] || !include(seq)) continue;
    accept.set(seq, at);
    deliver.set(seq, ack);
  }
  // Percentiles of (committed − sent) and (ack − committed), over the same events.
  const sentToCommit = windowPercentiles(w.sentAt, w.accepted, accept, 0, (s) => accept.has(s));
  const commitAt = Float64Array.from(w.sentAt, (_, i) => committed.get(i) ?? 0);
  const commitToAck = windowPercentiles(commitAt, w.accepted, deliver, 0, (s) => deliver.has(s));
  return { accept: sentToCommit, deliver: commitToAck };
}

export function kindWord(kind: NoisyKind | 'none'): string {
  return kind === 'hang' ? 'hanging' : kind === 'slow' ? 'slow' : kind === 'refuse' ? 'refusing' : 'none';
}

/** The small organization's latency with and without another organization's backlog draining. */
export async function runOrganizations(rx: ReceiverHandle, o: IsolationOptions): Promise<OrganizationsResult> {
  const t0 = performance.now();
  const schema = benchSchema('iso');
  const env = carteiroEnv({ databaseUrl: o.databaseUrl, redisUrl: o.redisUrl, schema, logLevel: o.logLevel });
  const sql = benchSql(o.databaseUrl, schema);
  let apiProc: CarteiroProc | null = null;
  let worker: CarteiroProc | null = null;
  let paused = false;
  const ms = { total: 0 };
  const rxA = await startReceiver({ countOnly: true });
  try {
    apiProc = await startApi(env);
    const url = apiProc.url as string;
    const org = async (name: string): Promise<Record<string, string>> => {
      const r = await api(url, 'POST', 'organizations', { name });
      if (r.status !== 201) throw new Error(`organization ${name}: ${r.status} ${JSON.stringify(r.body)}`);
      return { 'x-organization-id': r.body.id as string };
    };
    const a = await org('bench-backlog');
    const b = await org('bench-small');
    await registerBenchEventType(url, BENCH_EVENT_TYPE, a);
    await registerBenchEventType(url, BENCH_EVENT_TYPE, b);
    await createEndpoint(url, 'backlog', `${rxA.url}/backlog`, [BENCH_EVENT_TYPE], a);
    await createEndpoint(url, 'small', `${rx.url}/small`, [BENCH_EVENT_TYPE], b);
    worker = await startWorker(env, sql);
    const eventType = () => BENCH_EVENT_TYPE;

    // 1. No backlog.
    o.log(`isolation organizations: small organization alone, warm-up ${o.warmupMs / 1000} s, then ${o.orgRate} events/s for ${o.orgMs / 1000} s`);
    await offerWindow(url, { rate: o.orgRate, ms: o.warmupMs, payloadBytes: o.payloadBytes, eventType, headers: b, seqBase: WARMUP_SEQ });
    await rx.reset();
    const w1 = await offerWindow(url, { rate: o.orgRate, ms: o.orgMs, payloadBytes: o.payloadBytes, eventType, headers: b });
    const r1 = await awaitWindow(rx, w1, o.graceMs);
    const unloaded = windowPercentiles(w1.sentAt, w1.accepted, r1.acks, r1.endMs);

    // 2. The other organization's backlog, put in while the worker is paused, then released.
    worker.child.kill('SIGSTOP');
    paused = true;
    o.log(`isolation organizations: ingesting a ${o.orgBacklog.toLocaleString('en-US')}-event backlog for the other organization (worker paused)`);
    const ingest = await ingestBacklog(url, { events: o.orgBacklog, payloadBytes: o.payloadBytes, headers: a, timeoutMs: 300_000 });
    await rxA.reset();
    await rx.reset();
    worker.child.kill('SIGCONT');
    paused = false;
    const releasedAt = nowMs();
    let drainedAt: number | null = null;
    let polling = true;
    const poller = (async () => {
      while (polling && drainedAt === null) {
        const s = await rxA.stats().catch(() => null);
        if (s && s.uniqueIds >= o.orgBacklog) drainedAt = nowMs();
        else await sleep(100);
      }
    })();
    o.log(`isolation organizations: backlog draining; small organization at ${o.orgRate} events/s for ${o.orgMs / 1000} s`);
    const w2 = await offerWindow(url, { rate: o.orgRate, ms: o.orgMs, payloadBytes: o.payloadBytes, eventType, headers: b });
    const r2 = await awaitWindow(rx, w2, o.graceMs);
    polling = false;
    await poller;
    const end = drainedAt as number | null;
    const whileDraining = (seq: number) => end === null || (w2.sentAt[seq] as number) <= end;
    const loaded = windowPercentiles(w2.sentAt, w2.accepted, r2.acks, r2.endMs, whileDraining);
    const atEnd = (await rxA.stats()).uniqueIds;
    const loadedSplit = await splitAtCommit(sql, b['x-organization-id'] as string, w2, r2.acks, whileDraining);
    o.log(
      `isolation organizations: backlog ${end === null ? `not drained (${atEnd.toLocaleString('en-US')} delivered)` : `drained in ${((end - releasedAt) / 1000).toFixed(1)} s`}`,
    );
    return {
      backlog: o.orgBacklog,
      rate: o.orgRate,
      windowMs: o.orgMs,
      unloaded,
      loaded,
      loadedSplit,
      loadedSentWhileDraining: loaded.count,
      ingest: { ms: ingest.ms, perSecond: ingest.perSecond },
      backlogDrainedMs: end === null ? null : end - releasedAt,
      backlogDeliveredAtEnd: atEnd,
      ms,
    };
  } finally {
    if (paused) worker?.child.kill('SIGCONT');
    await worker?.kill();
    await apiProc?.stop(15_000);
    await rxA.stop();
    await sql.end({ timeout: 5 }).catch(() => {});
    await dropBenchSchema(o.databaseUrl, schema).catch((e: Error) => o.log(`drop schema ${schema}: ${e.message}`));
    await cleanRedis(o.redisUrl, schema);
    ms.total = performance.now() - t0;
    o.log(`isolation organizations: took ${(ms.total / 1000).toFixed(1)} s`);
  }
}
