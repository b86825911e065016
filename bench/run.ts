// `npm run bench`: Carteiro's performance, measured against a ceiling and a baseline taken in the
// same run, printed as a table and written to bench/results/<timestamp>.json.
//
//   npm run bench                          # everything, full size (100,000-event backlogs)
//   npm run bench -- --quick               # small sizes, for a quick look or to check the tooling
//   npm run bench -- --only ceiling,sustained --events 20000
//   npm run bench -- --only sustained --profile   # + CPU profile of the worker and EXPLAIN of the claim
//
// What it needs: DATABASE_URL (real Postgres) for every section but `ceiling` and `embedded`, and
// REDIS_URL for the seed baseline (and for a production-like Carteiro: jobs, live updates, limits).
// Without DATABASE_URL only the ceiling and the embedded default are measured.
//
// Sections (docs/performance.md says what each one measures and how):
//   ceiling    bare undici client → receiver: raw signed POST/s (same payload, signing, concurrency)
//   seed       the seed's design done plainly (BullMQ + 1 INSERT per delivery) draining the backlog
//   sustained  backlog drain, fan-out 1 and 5, every attempt recorded in Postgres
//   latency    accepted → delivered at a fixed offered rate (POST /trigger)
//   trigger    table capture: INSERT rows/s with and without the capture trigger, commit → delivered
//   ingest     accepted events/s on POST /trigger and POST /events/batch (autocannon)
//   scale      1, 2, 4 worker processes on one Postgres and Redis
//   memory     peak RSS of API and worker, small backlog vs large
//   retries    receiver failing 30% of requests: deliveries/s and correctness
//   embedded   `carteiro start` on embedded PGlite (no servers)
//   isolation  a healthy endpoint's latency beside 0/1/20/200 hanging, slow or refusing endpoints,
//              and a small organization's beside another draining a 100,000-event backlog
//   fifo       deliveries/s to one FIFO endpoint and to 100 together, and whether order held
//   batching   events/s to one endpoint taking batches of 10 and of 100, against one event per POST
//              (and the raw ceiling) measured in the same run
//   shaping    the same drain plain, with a content filter, with a transformation (Slack template) and
//              with both: events/s and the overhead per delivery in µs; a filter evaluation and a
//              transformation run measured directly
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir, totalmem, release } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon from 'autocannon';
import postgres from 'postgres';
import { measureCeiling, type CeilingResult } from './lib/ceiling.ts';
import { makeData, nowMs } from './lib/envelope.ts';
import { startReceiver, type ReceiverHandle } from './lib/receiver.ts';
import { runFifo, type FifoResult } from './lib/fifo.ts';
import { runBatching, type BatchingResult } from './lib/batching.ts';
import { filterEvaluation, transformationCall, type FilterEvaluation, type TransformationCall } from './lib/shaping.ts';
import { renderTemplate } from '../src/delivery/templates/catalog.ts';
import { runSeedBaseline, type SeedBaselineResult } from './baseline/seed-design.ts';
import { runDrain, type DrainResult } from './lib/drain.ts';
import { offerLoad } from './lib/offered.ts';
import { summarizeProfile, type ProfileSummary } from './lib/cpuprofile.ts';
import { loadConfig } from '../src/config/config.ts';
import { claimStatement } from '../src/ledger/claims.ts';
import {
  kindWord,
  runNoisyCase,
  runOrganizations,
  type IsolationMode,
  type IsolationOptions,
  type NoisyCaseResult,
  type OrganizationsResult,
  type Percentiles,
} from './lib/isolation.ts';
import type { NoisyKind } from './lib/noisy-receivers.ts';
import {
  BENCH_ADMIN_KEY,
  BENCH_EVENT_TYPE,
  api,
  benchSchema,
  benchSql,
  carteiroEnv,
  checkpointCounters,
  checkpointDelta,
  checkpointNow,
  cleanRedis,
  createEndpoints,
  dispatchCounts,
  dropBenchSchema,
  ingestBacklog,
  registerBenchEventType,
  sleep,
  startApi,
  startWorker,
  until,
  RssSampler,
  CpuMeter,
  MachineBusyMeter,
  type CarteiroProc,
  type Sql,
} from './lib/carteiro.ts';

const SECTIONS = [
  'ceiling',
  'seed',
  'sustained',
  'backlog',
  'latency',
  'trigger',
  'ingest',
  'scale',
  'memory',
  'retries',
  'embedded',
  'isolation',
  'fifo',
  'batching',
  'shaping',
] as const;
type Section = (typeof SECTIONS)[number];

const { values: args } = parseArgs({
  options: {
    only: { type: 'string' },
    skip: { type: 'string' },
    quick: { type: 'boolean', default: false },
    events: { type: 'string' },
    'seed-events': { type: 'string' },
    'retry-events': { type: 'string' },
    'embedded-events': { type: 'string' },
    'payload-bytes': { type: 'string', default: '1024' },
    rate: { type: 'string', default: '1000' },
    'sweep-rates': { type: 'string' },
    'latency-seconds': { type: 'string' },
    'ingest-seconds': { type: 'string' },
    scale: { type: 'string', default: '1,2,4' },
    'scale-slow-ms': { type: 'string', default: '200' },
    'scale-slow-events': { type: 'string' },
    fanout: { type: 'string', default: '1,5' },
    connections: { type: 'string', default: '64' },
    'ceiling-requests': { type: 'string' },
    'isolation-hanging': { type: 'string', default: '0,1,20,200' },
    'isolation-kinds': { type: 'string', default: 'hang,slow,refuse' },
    'isolation-modes': { type: 'string', default: 'spread,fanout' },
    'isolation-seconds': { type: 'string' },
    'isolation-grace': { type: 'string' },
    'isolation-backlog': { type: 'string' },
    'backlog-sizes': { type: 'string' },
    'shaping-events': { type: 'string' },
    'shaping-rounds': { type: 'string' },
    profile: { type: 'boolean', default: false },
    analyze: { type: 'boolean', default: false },
    'log-level': { type: 'string', default: 'warn' },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});

if (args.help) {
  console.log(readHeader());
  process.exit(0);
}

const quick = args.quick === true;
const num = (v: string | undefined, d: number): number => (v === undefined ? d : Number(v.replace(/_/g, '')));
const EVENTS = num(args.events, quick ? 5_000 : 100_000);
const opts = {
  quick,
  events: EVENTS,
  seedEvents: num(args['seed-events'], EVENTS),
  retryEvents: num(args['retry-events'], quick ? 2_000 : Math.min(EVENTS, 50_000)),
  embeddedEvents: num(args['embedded-events'], quick ? 2_000 : 10_000),
  payloadBytes: num(args['payload-bytes'], 1024),
  rate: num(args.rate, 1000),
  // Lower offered rates the latency section also runs, to show where the tail bends on this machine.
  sweepRates: (args['sweep-rates'] ?? (quick ? '' : '250,500'))
    .split(',')
    .map(Number)
    .filter((n) => n > 0),
  latencySeconds: num(args['latency-seconds'], quick ? 5 : 30),
  ingestSeconds: num(args['ingest-seconds'], quick ? 3 : 10),
  scale: (args.scale ?? '1,2,4')
    .split(',')
    .map(Number)
    .filter((n) => n > 0),
  // The scale section's second part: a receiver that takes this long per request (0: skip it).
  scaleSlowMs: num(args['scale-slow-ms'], 200),
  scaleSlowEvents: num(args['scale-slow-events'], quick ? 2_000 : 10_000),
  fanout: (args.fanout ?? '1,5')
    .split(',')
    .map(Number)
    .filter((n) => n > 0),
  connections: num(args.connections, 64),
  // The isolation section: noisy-endpoint counts and kinds, which runs, the spread run's window (the
  // fan-out run's is twice as long: a tenth of the events), the grace for late deliveries, the backlog.
  isolationHanging: [
    ...new Set(
      (args['isolation-hanging'] ?? '0,1,20,200')
        .split(',')
        .map(Number)
        .filter((n) => n >= 0),
    ),
  ].sort((a, b) => a - b),
  isolationKinds: (args['isolation-kinds'] ?? 'hang,slow,refuse')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean) as NoisyKind[],
  isolationModes: (args['isolation-modes'] ?? 'spread,fanout')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean) as IsolationMode[],
  isolationSeconds: num(args['isolation-seconds'], quick ? 4 : 8),
  isolationGraceSeconds: num(args['isolation-grace'], quick ? 4 : 10),
  isolationBacklog: num(args['isolation-backlog'], quick ? 10_000 : 100_000),
  // The backlog section: drains of these sizes (fan-out 1, one worker), the largest against the smallest.
  backlogSizes: (args['backlog-sizes'] ?? (quick ? '2000,20000,100000' : '10000,100000,1000000'))
    .split(',')
    .map((v) => num(v, 0))
    .filter((n) => n > 0),
  // The shaping section: events per drain, and rounds of the four drains (the best of each is kept).
  shapingEvents: num(args['shaping-events'], quick ? 2_000 : 30_000),
  shapingRounds: num(args['shaping-rounds'], quick ? 1 : 2),
  profile: args.profile === true,
  analyze: args.analyze === true,
  logLevel: args['log-level'] ?? 'warn',
};
const DATABASE_URL = process.env.DATABASE_URL || undefined;
const REDIS_URL = process.env.REDIS_URL || undefined;

const only = args.only ? new Set(args.only.split(',').map((s) => s.trim())) : null;
const skip = new Set(
  (args.skip ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean),
);
for (const s of [...(only ?? []), ...skip]) if (!(SECTIONS as readonly string[]).includes(s)) fail(`unknown section "${s}" (sections: ${SECTIONS.join(', ')})`);
for (const k of opts.isolationKinds) if (!['hang', 'slow', 'refuse'].includes(k)) fail(`unknown --isolation-kinds "${k}" (hang, slow, refuse)`);
for (const m of opts.isolationModes) if (!['spread', 'fanout'].includes(m)) fail(`unknown --isolation-modes "${m}" (spread, fanout)`);
const wanted = (s: Section): boolean => (only ? only.has(s) : true) && !skip.has(s);

function fail(msg: string): never {
  console.error(`bench: ${msg}`);
  process.exit(2);
}

function readHeader(): string {
  return (
    'usage: npm run bench -- [--quick] [--only a,b] [--skip a,b] [--events N] [--seed-events N] [--retry-events N]\n' +
    '                         [--embedded-events N] [--rate N] [--sweep-rates 250,500] [--latency-seconds S] [--ingest-seconds S] [--scale 1,2,4] [--fanout 1,5]\n' +
    '                         [--scale-slow-ms 200] [--scale-slow-events N]\n' +
    '                         [--connections N] [--ceiling-requests N] [--payload-bytes N] [--profile] [--analyze] [--log-level warn] [--out file.json]\n' +
    '                         [--isolation-hanging 0,1,20,200] [--isolation-kinds hang,slow,refuse] [--isolation-modes spread,fanout]\n' +
    '                         [--isolation-seconds S] [--isolation-grace S] [--isolation-backlog N] [--backlog-sizes 10000,100000,1000000]\n' +
    '                         [--shaping-events N] [--shaping-rounds N]\n' +
    `sections: ${SECTIONS.join(', ')}\nsee docs/performance.md`
  );
}

// --- results ---------------------------------------------------------------------------------------

type Figure = {
  section: Section;
  name: string;
  value: number | null;
  unit: string;
  /** value / raw ceiling (throughput figures only). */
  vsCeiling?: number | null;
  /** value / seed baseline (throughput figures only). */
  vsSeed?: number | null;
  target?: string;
  pass?: boolean | null;
  note?: string;
};

const figures: Figure[] = [];
const details: Record<string, unknown> = {};
const errors: Record<string, string> = {};
let ceiling: CeilingResult | null = null;
let seed: SeedBaselineResult | null = null;

function fig(f: Figure): void {
  if (f.value !== null && ceiling && f.vsCeiling === undefined && f.unit.endsWith('/s') && f.unit.startsWith('deliv'))
    f.vsCeiling = f.value / ceiling.requestsPerSecond;
  figures.push(f);
}
const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => (a && b ? a / b : null);
const log = (line: string): void => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);
const f0 = (n: number | null | undefined, d = 0): string =>
  n === null || n === undefined || !Number.isFinite(n) ? '—' : n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });

// --- sections --------------------------------------------------------------------------------------

async function sectionCeiling(rx: ReceiverHandle): Promise<void> {
  const count = num(args['ceiling-requests'], quick ? 20_000 : 100_000);
  log(`ceiling: ${count.toLocaleString('en-US')} signed ${opts.payloadBytes}-byte POSTs, ${opts.connections} connections`);
  await rx.reset();
  ceiling = await measureCeiling({ url: rx.url, count, connections: opts.connections, payloadBytes: opts.payloadBytes, durationLimitMs: 60_000 });
  const s = await rx.stats();
  details.ceiling = { ...ceiling, receiver: { acknowledged: s.acknowledged, duplicates: s.duplicates } };
  fig({
    section: 'ceiling',
    name: `raw undici POST/s (${opts.connections} conns, signed, ${ceiling.bodyBytes} B)`,
    value: ceiling.requestsPerSecond,
    unit: 'req/s',
    note: `p50 ${f0(ceiling.p50, 2)} ms, p99 ${f0(ceiling.p99, 2)} ms, client CPU ${f0(ceiling.clientCpuUsPerRequest)} µs/request${ceiling.timedOut ? ', TIME LIMIT' : ''}${ceiling.errors + ceiling.non2xx ? `, ${ceiling.errors + ceiling.non2xx} errors` : ''}`,
  });
}

async function sectionSeed(rx: ReceiverHandle): Promise<void> {
  if (!DATABASE_URL || !REDIS_URL) {
    errors.seed = 'needs DATABASE_URL and REDIS_URL';
    return;
  }
  log(`seed baseline: BullMQ (concurrency 100) + one INSERT per delivery, ${opts.seedEvents.toLocaleString('en-US')} jobs`);
  await rx.reset();
  seed = await runSeedBaseline({
    databaseUrl: DATABASE_URL,
    redisUrl: REDIS_URL,
    receiverUrl: rx.url,
    events: opts.seedEvents,
    concurrency: 100,
    payloadBytes: opts.payloadBytes,
    durationLimitMs: quick ? 60_000 : 600_000,
  });
  const s = await rx.stats();
  details.seed = { ...seed, receiver: { unique: s.uniqueIds, duplicates: s.duplicates } };
  fig({
    section: 'seed',
    name: 'seed design, backlog drain (fan-out 1)',
    value: seed.deliveriesPerSecond,
    unit: 'deliv/s',
    vsCeiling: ratio(seed.deliveriesPerSecond, ceiling?.requestsPerSecond),
    vsSeed: 1,
    note: `${seed.delivered}/${seed.events} in ${f0(seed.elapsedMs / 1000, 1)} s, ${seed.attemptRows} attempt rows${seed.timedOut ? ', TIME LIMIT' : ''}`,
  });
}

function drainFigure(section: Section, name: string, r: DrainResult, target?: { ceiling?: number; seed?: number }): void {
  const ok = !r.drain.timedOut && r.ledger.unfinished === 0 && r.receiver.uniqueIds >= r.expected;
  const vsC = ratio(r.drain.perSecond, ceiling?.requestsPerSecond);
  const vsS = ratio(r.drain.perSecond, seed?.deliveriesPerSecond);
  let pass: boolean | null = null;
  const targets: string[] = [];
  if (target?.ceiling !== undefined) {
    targets.push(`≥ ${target.ceiling * 100}% ceiling`);
    pass = vsC === null ? null : vsC >= target.ceiling;
  }
  if (target?.seed !== undefined) {
    targets.push(`≥ ${target.seed}× seed`);
    pass = vsS === null ? pass : (pass ?? true) && vsS >= target.seed;
  }
  fig({
    section,
    name,
    value: r.drain.perSecond,
    unit: 'deliv/s',
    vsCeiling: vsC,
    vsSeed: vsS,
    ...(targets.length ? { target: targets.join(', ') } : {}),
    pass: ok ? pass : false,
    note:
      `${r.receiver.uniqueIds}/${r.expected} delivered in ${f0(r.drain.ms / 1000, 1)} s (first after ${f0(r.drain.firstDeliveryMs)} ms)` +
      `${r.drain.steadyPerSecond ? `, steady ${f0(r.drain.steadyPerSecond)}/s` : ''}, record lag ${f0(r.drain.recordLagMs)} ms, ` +
      `${r.ledger.attemptRows} attempt rows, dup ${r.receiver.duplicates}; CPU/delivery worker ${r.cpu.perDeliveryUs.worker} µs, ` +
      `Postgres ${r.cpu.perDeliveryUs.postgres} µs${cpuVsClient(r)}${r.drain.timedOut ? ', TIME LIMIT' : ''}${ok ? '' : ', INCOMPLETE'}`,
  });
}

/** Worker + Postgres CPU per delivery against the ceiling client's CPU per request, measured in this run. */
function cpuVsClient(r: DrainResult): string {
  const client = ceiling?.clientCpuUsPerRequest;
  if (!client) return '';
  const ours = r.cpu.perDeliveryUs.worker + r.cpu.perDeliveryUs.postgres;
  return ` (= ${f0(ours / client, 2)}× the ceiling client's ${f0(client)} µs/request)`;
}

/** Drains of growing backlogs: does the cost per delivery grow with the backlog? */
async function sectionBacklog(rx: ReceiverHandle): Promise<void> {
  const results: DrainResult[] = [];
  for (const size of opts.backlogSizes) {
    const r = await drain(rx, `backlog ${f0(size)}`, size, 1, 1);
    results.push(r);
    drainFigure('backlog', `drain of a ${f0(size)}-delivery backlog, fan-out 1, 1 worker`, r);
  }
  const [first, last] = [results[0], results[results.length - 1]];
  if (first && last && results.length > 1) {
    const rel = ratio(last.drain.perSecond, first.drain.perSecond);
    fig({
      section: 'backlog',
      name: `deliveries/s draining ${f0(last.expected)} vs ${f0(first.expected)}`,
      value: rel,
      unit: '×',
      target: '≥ 0.9×',
      pass: rel === null ? null : rel >= 0.9,
      note: `Postgres CPU per delivery ${f0(first.cpu.perDeliveryUs.postgres)} → ${f0(last.cpu.perDeliveryUs.postgres)} µs, worker ${f0(first.cpu.perDeliveryUs.worker)} → ${f0(last.cpu.perDeliveryUs.worker)} µs`,
    });
  }
}

async function drain(
  rx: ReceiverHandle,
  label: string,
  events: number,
  fanout: number,
  workers: number,
  extra: Partial<Parameters<typeof runDrain>[0]> = {},
): Promise<DrainResult> {
  // --analyze: fresh statistics on the backlog before the drain (see docs/operations.md, "Autovacuum").
  const before = extra.beforeWorkers;
  const beforeWorkers = opts.analyze
    ? async (sql: Sql) => {
        await before?.(sql);
        await sql`ANALYZE webhook_dispatches`;
        await sql`ANALYZE webhook_events`;
      }
    : before;
  const r = await runDrain({
    label,
    databaseUrl: DATABASE_URL as string,
    redisUrl: REDIS_URL,
    receiver: rx,
    events,
    fanout,
    workers,
    payloadBytes: opts.payloadBytes,
    logLevel: opts.logLevel,
    timeoutMs: quick ? 120_000 : 900_000,
    log,
    ...extra,
    ...(beforeWorkers ? { beforeWorkers } : {}),
  });
  (details.drains ??= [] as DrainResult[]) && (details.drains as DrainResult[]).push(r);
  log(
    `${label}: ${f0(r.drain.perSecond)} deliveries/s (${r.receiver.uniqueIds}/${r.expected}), worker peak RSS ${r.rssMb.worker} MB, ` +
      `CPU per delivery: worker ${r.cpu.perDeliveryUs.worker} µs, Postgres ${r.cpu.perDeliveryUs.postgres} µs, receiver ${r.cpu.perDeliveryUs.receiver} µs`,
  );
  return r;
}

let sustainedFo1: DrainResult | null = null;
/** The longest sustained drain (the largest fan-out): the memory section's plateau point. */
let sustainedLongest: DrainResult | null = null;

async function sectionSustained(rx: ReceiverHandle): Promise<void> {
  let profileDir: string | null = null;
  const extra: Partial<Parameters<typeof runDrain>[0]> = {
    beforeWorkers: async (sql) => {
      details.claimPlan = await explainClaim(sql);
    },
  };
  if (opts.profile) {
    profileDir = join(RESULTS_DIR, `profile-${STAMP}`);
    mkdirSync(profileDir, { recursive: true });
    extra.workerNodeArgs = ['--cpu-prof', `--cpu-prof-dir=${profileDir}`];
  }
  // The first fan-out listed carries the EXPLAIN and the profile.
  let first = true;
  for (const fanout of opts.fanout) {
    const r = await drain(rx, `sustained fan-out ${fanout}`, opts.events, fanout, 1, first ? extra : {});
    if (fanout === 1) sustainedFo1 = r;
    if (!sustainedLongest || r.expected > sustainedLongest.expected) sustainedLongest = r;
    drainFigure(
      'sustained',
      `Carteiro, ${f0(opts.events)} events, fan-out ${fanout}, 1 worker`,
      r,
      fanout === 1 ? { ceiling: 0.4, seed: 3 } : { ceiling: 0.4 },
    );
    first = false;
  }
  if (profileDir) {
    const files = readdirSync(profileDir).filter((f) => f.endsWith('.cpuprofile'));
    if (files.length) {
      const summary: ProfileSummary = summarizeProfile(join(profileDir, files[0] as string), 25);
      details.workerProfile = { file: join(profileDir, files[0] as string), ...summary };
    } else {
      errors.profile = 'the worker wrote no .cpuprofile (did it exit gracefully?)';
    }
  }
}

/** EXPLAIN (ANALYZE, BUFFERS) of the worker's claim statement on the backlog, rolled back. */
async function explainClaim(sql: Sql): Promise<string[]> {
  const rows: { 'QUERY PLAN': string }[] = [];
  await sql
    .begin(async (tx) => {
      // The worker's own statement, as it runs with the bench's defaults (a fresh worker: no view yet).
      const config = loadConfig({ ...process.env, DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://unused' });
      const bounds = {
        defaultMaxInFlight: config.isolation.maxInFlight,
        startInFlight: config.isolation.startInFlight,
        slowLaneAfterFailures: config.isolation.slowLaneAfterFailures,
      };
      const plan = await tx<{ 'QUERY PLAN': string }[]>`EXPLAIN (ANALYZE, BUFFERS) ${claimStatement(tx, 'explain', 500, 60_000, bounds)}`;
      rows.push(...plan);
      throw new RollbackExplain();
    })
    .catch((e) => {
      if (!(e instanceof RollbackExplain)) throw e;
    });
  return rows.map((r) => r['QUERY PLAN']);
}
class RollbackExplain extends Error {}

async function sectionLatency(rx: ReceiverHandle): Promise<void> {
  const schema = benchSchema('bench');
  const env = carteiroEnv({ databaseUrl: DATABASE_URL, redisUrl: REDIS_URL, schema, logLevel: opts.logLevel });
  const sql = benchSql(DATABASE_URL as string, schema);
  let apiProc: CarteiroProc | null = null;
  let worker: CarteiroProc | null = null;
  try {
    apiProc = await startApi(env);
    await registerBenchEventType(apiProc.url as string);
    await createEndpoints(apiProc.url as string, rx.url, 1);
    worker = await startWorker(env, sql);
    for (const rate of opts.sweepRates.filter((r) => r < opts.rate)) {
      const r = await latencyRun(rx, apiProc.url as string, rate, opts.latencySeconds * 1000, `latency sweep`, sql, latencyMeter(apiProc, worker, rx, sql));
      ((details.latencySweep ??= []) as unknown[]).push({ rate, ...r });
      fig({
        section: 'latency',
        name: `accepted → delivered p99 at ${f0(rate)}/s offered`,
        value: r.receiver.p99,
        unit: 'ms',
        note: `p50 ${f0(r.receiver.p50, 1)}, p95 ${f0(r.receiver.p95, 1)}, max ${f0(r.receiver.max, 1)} ms; ${r.delivered}/${r.accepted} delivered${checkpointNote(r.checkpoints)}${cpuNote(r.cpu)}`,
      });
    }
    const result = await latencyRun(rx, apiProc.url as string, opts.rate, opts.latencySeconds * 1000, 'latency', sql, latencyMeter(apiProc, worker, rx, sql));
    details.latency = result;
    // Open loop: if the API cannot take the rate, requests queue and the figure measures the queue.
    const saturated = result.load.achievedPerSecond < opts.rate * 0.95 || result.load.responseMs.p50 > 100;
    fig({
      section: 'latency',
      name: `accepted → delivered p99 at ${f0(opts.rate)}/s offered (POST /trigger)`,
      value: result.receiver.p99,
      unit: 'ms',
      target: '≤ 25 ms',
      pass: result.complete ? result.receiver.p99 <= 25 : false,
      note:
        `p50 ${f0(result.receiver.p50, 1)}, p95 ${f0(result.receiver.p95, 1)}, max ${f0(result.receiver.max, 1)} ms; ` +
        `202 p50 ${f0(result.load.responseMs.p50, 1)} / p99 ${f0(result.load.responseMs.p99, 1)} ms; ${result.delivered}/${result.accepted} delivered` +
        checkpointNote(result.checkpoints) +
        cpuNote(result.cpu) +
        `${saturated ? `; SATURATED: the API accepted ${f0(result.load.achievedPerSecond)}/s of ${f0(opts.rate)}/s offered` : ''}`,
    });
  } finally {
    await worker?.stop();
    await apiProc?.stop();
    await sql.end({ timeout: 5 });
    await dropBenchSchema(DATABASE_URL as string, schema);
    await cleanRedis(REDIS_URL, schema);
  }
}

/** Offers POST /trigger at `rate` for `durationMs` (after a short warm-up) and reads the receiver's latency. */
async function latencyRun(rx: ReceiverHandle, baseUrl: string, rate: number, durationMs: number, label: string, sql: Sql | null, meter?: LatencyMeter) {
  const headers = { authorization: `Bearer ${BENCH_ADMIN_KEY}`, 'content-type': 'application/json' };
  const body = (n: number, sentAt: number) => JSON.stringify({ event_type: BENCH_EVENT_TYPE, data: { ...makeData(opts.payloadBytes, sentAt), seq: n } });
  // null: the embedded default (its Postgres is inside the process under test).
  const forced = sql ? await checkpointNow(sql) : false;
  log(`${label}: ${forced ? 'CHECKPOINT, then ' : ''}warm-up 2 s at ${f0(rate)}/s`);
  await offerLoad({ baseUrl, path: '/api/webhooks/trigger', headers, ratePerSecond: rate, durationMs: 2_000, body, connections: opts.connections });
  await sleep(1_000);
  await rx.reset();
  log(`${label}: ${f0(rate)} events/s offered for ${durationMs / 1000} s`);
  const cpBefore = sql ? await checkpointCounters(sql) : null;
  await meter?.start();
  const load = await offerLoad({ baseUrl, path: '/api/webhooks/trigger', headers, ratePerSecond: rate, durationMs, body, connections: opts.connections });
  const accepted = load.byStatus['202'] ?? 0;
  await until(async () => (await rx.stats()).uniqueIds >= accepted, 30_000, 100);
  const cpu = (await meter?.stop(accepted)) ?? null;
  const checkpoints = { forcedBefore: forced, ...checkpointDelta(cpBefore, sql ? await checkpointCounters(sql) : null) };
  const s = await rx.stats();
  return {
    load,
    accepted,
    delivered: s.uniqueIds,
    duplicates: s.duplicates,
    complete: s.uniqueIds >= accepted && load.offered === load.sent,
    receiver: s.latencyMs,
    cpu,
    checkpoints,
  };
}

type LatencyCpu = { perEventUs: Record<string, number>; machineBusy: number | null };

function checkpointNote(c: { forcedBefore: boolean; started?: number; syncMs?: number }): string {
  const during = c.started === undefined ? 'not readable' : `${c.started} started, ${f0(c.syncMs ?? 0)} ms of checkpoint fsync`;
  return `; checkpoints during the window: ${during}${c.forcedBefore ? ' (CHECKPOINT before the warm-up)' : ''}`;
}

function cpuNote(cpu: LatencyCpu | null): string {
  if (!cpu) return '';
  const parts = Object.entries(cpu.perEventUs)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  return `; CPU per event (µs): ${parts}${cpu.machineBusy === null ? '' : `; machine ${f0(cpu.machineBusy * 100)}% busy`}`;
}
type LatencyMeter = { start(): Promise<void>; stop(events: number): Promise<LatencyCpu> };

/**
 * CPU per accepted event while a latency run is offered, for the API, the worker and the Postgres
 * backends serving each, and how busy the machine was: at a rate below saturation the per-event costs
 * are far above those of a drain (thin batches), and the tail follows how close the cores are to full.
 */
function latencyMeter(apiProc: CarteiroProc, worker: CarteiroProc, rx: ReceiverHandle, sql: Sql): LatencyMeter {
  const apiSide = new CpuMeter();
  const workerSide = new CpuMeter();
  const machine = new MachineBusyMeter();
  return {
    async start() {
      await apiSide.start({ api: [apiProc.pid], receiver: [rx.pid], bench: [process.pid] }, sql, 'carteiro-api');
      await workerSide.start({ worker: [worker.pid] }, sql, 'carteiro-worker');
      machine.start();
    },
    async stop(accepted) {
      const busy = machine.stop();
      const a = await apiSide.stop();
      const w = await workerSide.stop();
      const events = Math.max(1, accepted);
      const us = (ms: number | undefined) => Math.round(((ms ?? 0) * 1000) / events);
      return {
        perEventUs: {
          api: us(a.api),
          apiPostgres: us(a.postgres),
          worker: us(w.worker),
          workerPostgres: us(w.postgres),
          receiver: us(a.receiver),
          loadGenerator: us(a.bench),
        },
        machineBusy: busy,
      };
    },
  };
}

async function sectionTrigger(rx: ReceiverHandle): Promise<void> {
  const schema = benchSchema('bench');
  const app = `benchapp_${schema.slice(6)}`;
  const eventType = 'bench.row';
  const env = carteiroEnv({ databaseUrl: DATABASE_URL, redisUrl: REDIS_URL, schema, logLevel: opts.logLevel });
  const sql = benchSql(DATABASE_URL as string, schema, 20);
  let apiProc: CarteiroProc | null = null;
  let worker: CarteiroProc | null = null;
  const out: Record<string, unknown> = {};
  try {
    apiProc = await startApi(env);
    await registerBenchEventType(apiProc.url as string, eventType);
    await createEndpoints(apiProc.url as string, rx.url, 1, eventType);
    const { captureTable } = await import('../src/ledger/table-capture.ts');
    await sql.unsafe(`
      CREATE SCHEMA "${app}";
      CREATE TABLE "${app}".plain (id bigserial PRIMARY KEY, sent_at_ms double precision NOT NULL, seq integer NOT NULL, pad text NOT NULL);
      CREATE TABLE "${app}".captured (id bigserial PRIMARY KEY, sent_at_ms double precision NOT NULL, seq integer NOT NULL, pad text NOT NULL);`);
    await captureTable(sql, { schema: app, table: 'captured', eventType });
    const pad = makeData(opts.payloadBytes).pad;

    // 1. INSERT rows/s, one row per transaction (16 connections), then set-based (1,000 rows a statement).
    const singleRows = quick ? 2_000 : 20_000;
    const setRows = quick ? 10_000 : 100_000;
    const single = async (table: string): Promise<number> => {
      let next = 0;
      const t0 = performance.now();
      const deadline = t0 + 120_000;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < singleRows && performance.now() < deadline) {
            const seq = next++;
            await sql.unsafe(`INSERT INTO "${app}".${table} (sent_at_ms, seq, pad) VALUES ($1, $2, $3)`, [nowMs(), seq, pad]);
          }
        }),
      );
      return (next / (performance.now() - t0)) * 1000;
    };
    const setBased = async (table: string, seqBase: number): Promise<number> => {
      const t0 = performance.now();
      for (let i = 0; i < setRows; i += 1000) {
        await sql.unsafe(`INSERT INTO "${app}".${table} (sent_at_ms, seq, pad) SELECT $1, $2 + g, $3 FROM generate_series(0, 999) g`, [
          nowMs(),
          seqBase + i,
          pad,
        ]);
      }
      return (setRows / (performance.now() - t0)) * 1000;
    };
    log(`trigger: INSERT throughput, ${f0(singleRows)} single-row transactions and ${f0(setRows)} rows set-based, with and without capture`);
    const plainSingle = await single('plain');
    const capturedSingle = await single('captured');
    const plainSet = await setBased('plain', 1_000_000);
    const capturedSet = await setBased('captured', 1_000_000);
    out.insert = { singleRows, setRows, plainSingle, capturedSingle, plainSet, capturedSet };
    fig({ section: 'trigger', name: 'INSERT rows/s, 1 row/transaction, no capture', value: plainSingle, unit: 'rows/s' });
    fig({
      section: 'trigger',
      name: 'INSERT rows/s, 1 row/transaction, with capture',
      value: capturedSingle,
      unit: 'rows/s',
      note: `${f0((capturedSingle / plainSingle) * 100)}% of plain`,
    });
    fig({ section: 'trigger', name: 'INSERT rows/s, 1,000 rows/statement, no capture', value: plainSet, unit: 'rows/s' });
    fig({
      section: 'trigger',
      name: 'INSERT rows/s, 1,000 rows/statement, with capture',
      value: capturedSet,
      unit: 'rows/s',
      note: `${f0((capturedSet / plainSet) * 100)}% of plain`,
    });

    // 2. The captured rows are a backlog: drain it.
    const expected = singleRows + setRows;
    await rx.reset();
    worker = await startWorker(env, sql);
    const delivered = await until(async () => (await rx.stats()).uniqueIds >= expected, quick ? 120_000 : 600_000, 50);
    await until(
      async () => {
        const c = await dispatchCounts(sql);
        return c.succeeded + c.failed >= expected;
      },
      60_000,
      50,
    );
    const doneAt = nowMs();
    const s = await rx.stats();
    const drainPerSecond = (s.uniqueIds / (doneAt - (s.firstReceiveMs ?? doneAt))) * 1000;
    out.drain = { expected, delivered: s.uniqueIds, perSecond: drainPerSecond, complete: !!delivered };
    fig({
      section: 'trigger',
      name: 'captured rows drained (backlog), 1 worker',
      value: drainPerSecond,
      unit: 'deliv/s',
      note: `${s.uniqueIds}/${expected} delivered`,
    });

    // 3. Commit → delivered at a fixed rate of single-row INSERTs (sent_at_ms = when the INSERT is issued).
    const forced = await checkpointNow(sql);
    await rx.reset();
    const cpBefore = await checkpointCounters(sql);
    const rate = opts.rate;
    const durationMs = opts.latencySeconds * 1000;
    log(`trigger: commit → delivered, ${f0(rate)} single-row INSERTs/s for ${opts.latencySeconds} s`);
    const total = Math.floor((rate * durationMs) / 1000);
    let offered = 0;
    let failed = 0;
    const inflight = new Set<Promise<unknown>>();
    const start = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000));
        while (offered < due) {
          const seq = 2_000_000 + offered++;
          if (inflight.size > 2_000) {
            failed++;
            continue;
          }
          const p = sql
            .unsafe(`INSERT INTO "${app}".captured (sent_at_ms, seq, pad) VALUES ($1, $2, $3)`, [nowMs(), seq, pad])
            .catch(() => failed++)
            .finally(() => inflight.delete(p));
          inflight.add(p);
        }
        if (offered >= total || performance.now() - start > durationMs + 5_000) {
          clearInterval(timer);
          resolve();
        }
      }, 1);
    });
    await Promise.all(inflight);
    const committed = offered - failed;
    await until(async () => (await rx.stats()).uniqueIds >= committed, 30_000, 100);
    const l = await rx.stats();
    const checkpoints = { forcedBefore: forced, ...checkpointDelta(cpBefore, await checkpointCounters(sql)) };
    out.latency = { rate, offered, failed, delivered: l.uniqueIds, latencyMs: l.latencyMs, checkpoints };
    fig({
      section: 'trigger',
      name: `INSERT issued → delivered p99 at ${f0(rate)} rows/s (capture trigger)`,
      value: l.latencyMs.p99,
      unit: 'ms',
      note: `p50 ${f0(l.latencyMs.p50, 1)}, p95 ${f0(l.latencyMs.p95, 1)}, max ${f0(l.latencyMs.max, 1)} ms; ${l.uniqueIds}/${committed} delivered; includes the INSERT's own commit${checkpointNote(checkpoints)}`,
    });
    details.trigger = out;
  } finally {
    await worker?.stop();
    await apiProc?.stop();
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${app}" CASCADE`).catch(() => {});
    await sql.end({ timeout: 5 });
    await dropBenchSchema(DATABASE_URL as string, schema);
    await cleanRedis(REDIS_URL, schema);
  }
}

async function sectionIngest(rx: ReceiverHandle): Promise<void> {
  const schema = benchSchema('bench');
  const env = carteiroEnv({ databaseUrl: DATABASE_URL, redisUrl: REDIS_URL, schema, logLevel: opts.logLevel });
  const sql = benchSql(DATABASE_URL as string, schema);
  let apiProc: CarteiroProc | null = null;
  try {
    apiProc = await startApi(env);
    await registerBenchEventType(apiProc.url as string);
    await createEndpoints(apiProc.url as string, rx.url, 1);
    const url = apiProc.url as string;
    const headers = { authorization: `Bearer ${BENCH_ADMIN_KEY}`, 'content-type': 'application/json' };
    const single = JSON.stringify({ event_type: BENCH_EVENT_TYPE, data: makeData(opts.payloadBytes) });
    const batchSize = 100;
    const batch = JSON.stringify({ events: Array.from({ length: batchSize }, () => ({ event_type: BENCH_EVENT_TYPE, data: makeData(opts.payloadBytes) })) });
    const cap = async (path: string, body: string, connections: number, seconds: number) =>
      autocannon({ url: `${url}${path}`, method: 'POST', headers, body, connections, duration: seconds, maxOverallRequests: 2_000_000, timeout: 10 });

    // Requests still in flight when autocannon stops commit a moment later: count once the ledger is still.
    const settledCount = async (): Promise<number> => {
      let last = -1;
      for (let i = 0; i < 100; i++) {
        const [row] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_events`;
        if (row?.n === last) return last;
        last = row?.n ?? 0;
        await sleep(300);
      }
      return last;
    };
    const rss = new RssSampler();
    rss.watch('api', apiProc.pid);
    rss.start();
    log('ingest: warm-up 1 s');
    await cap('/api/webhooks/trigger', single, 32, 1);
    let before = await settledCount();

    log(`ingest: POST /trigger, 64 connections, ${opts.ingestSeconds} s`);
    const r1 = await cap('/api/webhooks/trigger', single, 64, opts.ingestSeconds);
    let after = await settledCount();
    const ok1 = r1['2xx'];
    const single202 = ok1 / r1.duration;
    const singleCommitted = after - before;
    before = after;

    log(`ingest: POST /events/batch (${batchSize} events), 16 connections, ${opts.ingestSeconds} s`);
    const r2 = await cap('/api/webhooks/events/batch', batch, 16, opts.ingestSeconds);
    after = await settledCount();
    const batched = (r2['2xx'] * batchSize) / r2.duration;
    const batchCommitted = after - before;
    const d = await dispatchCounts(sql);
    const apiPeak = rss.stop().api ?? 0;
    details.ingest = {
      single: { ...pick(r1), committed: singleCommitted },
      batch: { ...pick(r2), batchSize, committed: batchCommitted },
      dispatches: d.total,
      events: after,
      apiPeakRssMb: apiPeak,
    };
    const singleOk = singleCommitted >= ok1;
    const batchOk = batchCommitted >= r2['2xx'] * batchSize;
    fig({
      section: 'ingest',
      name: 'POST /trigger, accepted events/s (1 API process, 64 conns)',
      value: single202,
      unit: 'events/s',
      target: '≥ 5,000/s',
      pass: singleOk ? single202 >= 5_000 : false,
      note: `p50 ${f0(r1.latency.p50, 1)} ms, p99 ${f0(r1.latency.p99, 1)} ms, non-2xx ${r1.non2xx}, errors ${r1.errors}; ${singleCommitted} rows for ${ok1} 202s`,
    });
    fig({
      section: 'ingest',
      name: `POST /events/batch ×${batchSize}, accepted events/s (16 conns)`,
      value: batched,
      unit: 'events/s',
      target: '≥ 5,000/s',
      pass: batchOk ? batched >= 5_000 : false,
      note: `p99 ${f0(r2.latency.p99, 1)} ms per batch, non-2xx ${r2.non2xx}; ${batchCommitted} rows for ${r2['2xx'] * batchSize} accepted; ${d.total} dispatches for ${after} events`,
    });
  } finally {
    await apiProc?.stop();
    await sql.end({ timeout: 5 });
    await dropBenchSchema(DATABASE_URL as string, schema);
    await cleanRedis(REDIS_URL, schema);
  }
}

function pick(r: Awaited<ReturnType<typeof autocannon>>) {
  return {
    durationS: r.duration,
    ok: r['2xx'],
    non2xx: r.non2xx,
    errors: r.errors,
    timeouts: r.timeouts,
    statusCodes: Object.fromEntries(Object.entries(r.statusCodeStats).map(([k, v]) => [k, v.count])),
    latencyMs: { p50: r.latency.p50, p90: r.latency.p90, p99: r.latency.p99, max: r.latency.max, mean: r.latency.average },
  };
}

async function sectionScale(rx: ReceiverHandle): Promise<void> {
  const results: DrainResult[] = [];
  for (const k of opts.scale) {
    const r = await drain(rx, `scale ${k} worker(s)`, opts.events, 1, k);
    results.push(r);
  }
  const one = results.find((r) => r.workers === 1);
  for (const r of results) {
    const x = one && r !== one ? r.drain.perSecond / one.drain.perSecond : null;
    fig({
      section: 'scale',
      name: `${r.workers} worker process${r.workers > 1 ? 'es' : ''}, fan-out 1`,
      value: r.drain.perSecond,
      unit: 'deliv/s',
      vsSeed: ratio(r.drain.perSecond, seed?.deliveriesPerSecond),
      ...(r.workers === 2 ? { target: '≥ 1.6× one worker (CPU allowing)', pass: x === null ? null : x >= 1.6 } : {}),
      note: `${x ? `${f0(x, 2)}× one worker; ` : ''}steady ${f0(r.drain.steadyPerSecond)}/s, ${r.receiver.uniqueIds}/${r.expected} in ${f0(r.drain.ms / 1000, 1)} s, worker RSS ${r.rssMb.worker} MB${r.drain.timedOut ? ', TIME LIMIT' : ''}`,
    });
  }
  if (opts.scaleSlowMs > 0) await scaleWithSlowReceiver(rx);
}

/**
 * Scale-out where the CPU allows it: a receiver that takes --scale-slow-ms to answer each request (an
 * n8n workflow or a remote API is often that slow). One worker is then bound by how many requests it
 * keeps open to the origin (CARTEIRO_WORKER_CONNECTIONS_PER_ORIGIN), not by the two cores, so this
 * shows whether more workers claiming from the same ledger add up, or get in each other's way.
 */
async function scaleWithSlowReceiver(rx: ReceiverHandle): Promise<void> {
  await rx.setFlap({ slowRate: 1, slowMs: opts.scaleSlowMs });
  const results: DrainResult[] = [];
  try {
    for (const k of opts.scale) results.push(await drain(rx, `scale ${k} worker(s), receiver answering in ${opts.scaleSlowMs} ms`, opts.scaleSlowEvents, 1, k));
  } finally {
    await rx.setFlap({});
  }
  details.scaleSlowReceiver = {
    slowMs: opts.scaleSlowMs,
    events: opts.scaleSlowEvents,
    runs: results.map((r) => ({ workers: r.workers, perSecond: r.drain.perSecond })),
  };
  // Carteiro's default unless the bench's environment sets it (carteiroEnv passes CARTEIRO_* on).
  const perOrigin = process.env.CARTEIRO_WORKER_CONNECTIONS_PER_ORIGIN ?? '64';
  const one = results.find((r) => r.workers === 1);
  for (const r of results) {
    const x = one && r !== one ? r.drain.perSecond / one.drain.perSecond : null;
    fig({
      section: 'scale',
      name: `${r.workers} worker process${r.workers > 1 ? 'es' : ''}, receiver answering in ${f0(opts.scaleSlowMs)} ms`,
      value: r.drain.perSecond,
      unit: 'deliv/s',
      ...(r.workers === 2 ? { target: '≥ 1.6× one worker (CPU allowing)', pass: x === null ? null : x >= 1.6 } : {}),
      note: `${x ? `${f0(x, 2)}× one worker; ` : ''}${r.receiver.uniqueIds}/${r.expected} in ${f0(r.drain.ms / 1000, 1)} s; each worker keeps at most ${perOrigin} requests open to the receiver${r.drain.timedOut ? ', TIME LIMIT' : ''}`,
    });
  }
}

async function sectionMemory(rx: ReceiverHandle): Promise<void> {
  const small = Math.max(1_000, Math.round(opts.events / 10));
  const large = sustainedFo1 && sustainedFo1.events === opts.events ? sustainedFo1 : await drain(rx, `memory ${f0(opts.events)}`, opts.events, 1, 1);
  const smallRun = await drain(rx, `memory ${f0(small)}`, small, 1, 1);
  details.memory = { small: smallRun.rssMb, large: large.rssMb, smallEvents: small, largeEvents: opts.events };
  const growth = large.rssMb.worker / Math.max(1, smallRun.rssMb.worker);
  fig({ section: 'memory', name: `worker peak RSS, ${f0(small)}-event backlog`, value: smallRun.rssMb.worker, unit: 'MB' });
  fig({
    section: 'memory',
    name: `worker peak RSS, ${f0(opts.events)}-event backlog`,
    value: large.rssMb.worker,
    unit: 'MB',
    target: 'flat (≤ 1.25× the small backlog)',
    pass: growth <= 1.25,
    note: `${f0(growth, 2)}× the small backlog`,
  });
  const apiGrowth = large.rssMb.apiIngest / Math.max(1, smallRun.rssMb.apiIngest);
  fig({ section: 'memory', name: `API peak RSS while ingesting, ${f0(small)} events`, value: smallRun.rssMb.apiIngest, unit: 'MB' });
  fig({
    section: 'memory',
    name: `API peak RSS while ingesting, ${f0(opts.events)} events`,
    value: large.rssMb.apiIngest,
    unit: 'MB',
    target: 'flat (≤ 1.25× the small backlog)',
    pass: apiGrowth <= 1.25,
    note: `${f0(apiGrowth, 2)}×; during the drain ${large.rssMb.apiDrain} MB`,
  });
  // Past warm-up: does the worker's peak keep growing with the work, or level off? The longest
  // sustained drain (fan-out 5: five times the deliveries) answers without another run.
  const longest = sustainedLongest as DrainResult | null;
  if (longest && longest.expected > large.expected) {
    const plateau = longest.rssMb.worker / Math.max(1, large.rssMb.worker);
    details.memory = { ...(details.memory as object), longest: { deliveries: longest.expected, rssMb: longest.rssMb } };
    fig({
      section: 'memory',
      name: `worker peak RSS, ${f0(longest.expected)} deliveries (fan-out ${longest.fanout} drain)`,
      value: longest.rssMb.worker,
      unit: 'MB',
      note: `${f0(plateau, 2)}× the ${f0(large.expected)}-delivery drain`,
    });
  }
}

async function sectionRetries(rx: ReceiverHandle): Promise<void> {
  await rx.setFailureRate(0.3);
  try {
    const r = await drain(rx, 'retries (30% failing)', opts.retryEvents, 1, 1, {
      extraEnv: {
        WEBHOOK_MAX_RETRIES: '12',
        WEBHOOK_RETRY_BASE_DELAY_MS: '100',
        WEBHOOK_RETRY_BACKOFF_FACTOR: '2',
        WEBHOOK_RETRY_MAX_DELAY_MS: '2000',
      },
    });
    const correct =
      r.receiver.uniqueIds === r.expected &&
      r.ledger.failed === 0 &&
      r.ledger.unfinished === 0 &&
      r.ledger.attemptRows === r.receiver.requests &&
      r.receiver.seqConflicts === 0;
    details.retries = r;
    fig({
      section: 'retries',
      name: `receiver failing 30%: ${f0(r.events)} events delivered/s`,
      value: r.drain.perSecond,
      unit: 'deliv/s',
      vsSeed: ratio(r.drain.perSecond, seed?.deliveriesPerSecond),
      target: 'all delivered, every attempt recorded',
      pass: correct,
      note:
        `${r.receiver.uniqueIds}/${r.expected} delivered, ${r.receiver.requests} attempts (${r.receiver.failuresInjected} failed) = ${r.ledger.attemptRows} attempt rows, ` +
        `${r.ledger.failed} gave up, dup ${r.receiver.duplicates}, attempts/s ${f0((r.receiver.requests / r.drain.ms) * 1000)}`,
    });
  } finally {
    await rx.setFailureRate(0);
  }
}

async function sectionEmbedded(rx: ReceiverHandle): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'carteiro-bench-embedded-'));
  const env = carteiroEnv({ schema: 'webhooks', dataDir, logLevel: opts.logLevel });
  let proc: CarteiroProc | null = null;
  try {
    proc = await startApi(env, { role: 'start' });
    const url = proc.url as string;
    await registerBenchEventType(url);
    await createEndpoints(url, rx.url, 1);
    await rx.reset();
    const rss = new RssSampler();
    rss.watch('start', proc.pid);
    rss.start();
    const n = opts.embeddedEvents;
    log(`embedded: ${f0(n)} events through POST /events/batch, delivered by the same process`);
    const t0 = nowMs();
    const ing = await ingestBacklog(url, { events: n, payloadBytes: opts.payloadBytes, concurrency: 2, timeoutMs: 300_000 });
    const delivered = await until(async () => (await rx.stats()).uniqueIds >= n, quick ? 120_000 : 600_000, 100);
    const recorded = await until(
      async () => {
        const r = await api(url, 'GET', 'stats');
        const q = r.body?.queues;
        return r.status === 200 && q && q.high_priority + q.normal_priority + q.retry === 0 && r.body.processing_tasks === 0 && r.body.last_hour.delivered >= n;
      },
      120_000,
      200,
    );
    const doneAt = nowMs();
    const s = await rx.stats();
    const perSecond = (s.uniqueIds / (doneAt - t0)) * 1000;
    fig({
      section: 'embedded',
      name: `embedded PGlite: ${f0(n)} events ingested + delivered, events/s`,
      value: perSecond,
      unit: 'deliv/s',
      note: `batch ingest alone ${f0(ing.perSecond)}/s (while delivering); ${s.uniqueIds}/${n} delivered${delivered && recorded ? '' : ', INCOMPLETE'}`,
    });
    const rate = Math.min(opts.rate, 200);
    const lat = await latencyRun(rx, url, rate, Math.min(opts.latencySeconds, 10) * 1000, 'embedded latency', null);
    const peak = rss.stop().start ?? 0;
    details.embedded = { events: n, ingest: ing, perSecond, latency: lat, peakRssMb: peak };
    fig({
      section: 'embedded',
      name: `embedded: accepted → delivered p99 at ${f0(rate)}/s`,
      value: lat.receiver.p99,
      unit: 'ms',
      note: `p50 ${f0(lat.receiver.p50, 1)} ms, ${lat.delivered}/${lat.accepted} delivered; 202 p99 ${f0(lat.load.responseMs.p99, 1)} ms; peak RSS ${peak} MB`,
    });
  } finally {
    await proc?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Isolation (bench/lib/isolation.ts): the healthy endpoint's accepted → delivered p50/p95/p99 beside
 * 0, 1, 20 and 200 hanging, slow (5 s) and refusing endpoints, at the default 30 s timeout, in two
 * runs (100 events/s spread over the noisy endpoints; 10 events/s to all of them), each as a ratio
 * to the same run with no noisy endpoint; then a small organization's latency while another drains
 * a backlog, against its latency alone. Each case is a fresh schema and fresh Carteiro processes.
 */
/**
 * Ordered delivery (bench/lib/fifo.ts): deliveries/s to one FIFO endpoint, bounded by one round trip
 * at a time (claim, send, record), and to 100 FIFO endpoints together, where claims and records are
 * shared; each against the ceiling of the same run, with the order checked at the receiver.
 */
async function sectionFifo(rx: ReceiverHandle): Promise<void> {
  const runs: FifoResult[] = [];
  details.fifo = runs;
  for (const [endpoints, perEndpoint] of [
    [1, quick ? 500 : 2_000],
    [100, quick ? 20 : 100],
  ] as const) {
    let r: FifoResult;
    try {
      r = await runFifo(rx, {
        databaseUrl: DATABASE_URL as string,
        redisUrl: REDIS_URL,
        logLevel: opts.logLevel,
        payloadBytes: opts.payloadBytes,
        endpoints,
        perEndpoint,
        timeoutMs: 300_000,
        log,
      });
    } catch (err) {
      errors[`fifo ${endpoints}`] = (err as Error).stack ?? String(err);
      log(`fifo ${endpoints} FAILED: ${(err as Error).message}`);
      continue;
    }
    runs.push(r);
    fig({
      section: 'fifo',
      name: `${endpoints} FIFO endpoint${endpoints > 1 ? 's' : ''} together, ${f0(perEndpoint)} events each: deliveries/s`,
      value: r.perSecond,
      unit: 'deliv/s',
      target: 'every event, each endpoint in the order accepted',
      pass: r.delivered === r.deliveries && r.outOfOrder === 0,
      note:
        `${r.delivered}/${r.deliveries} delivered in ${f0(r.ms / 1000, 1)} s; out of order ${r.outOfOrder}; duplicates ${r.duplicates}` +
        (endpoints === 1 ? `; ${f0(r.ms / Math.max(1, r.delivered), 2)} ms per delivery (claim, send, record in turn)` : ''),
    });
  }
}

/**
 * Batching (bench/lib/batching.ts): events/s delivered to one endpoint draining a backlog, one event
 * per POST and then in batches of 10 and of 100, each run a fresh schema and fresh processes. The
 * raw ceiling (one signed POST per request, no ledger) is measured first when this run has none.
 */
async function sectionBatching(rx: ReceiverHandle): Promise<void> {
  if (!ceiling) await sectionCeiling(rx);
  const runs: BatchingResult[] = [];
  details.batching = runs;
  const events = quick ? 5_000 : 20_000;
  for (const batchMaxEvents of [null, 10, 100]) {
    let r: BatchingResult;
    try {
      r = await runBatching(rx, {
        databaseUrl: DATABASE_URL as string,
        redisUrl: REDIS_URL,
        logLevel: opts.logLevel,
        payloadBytes: opts.payloadBytes,
        events,
        batchMaxEvents,
        timeoutMs: 300_000,
        log,
      });
    } catch (err) {
      errors[`batching ${batchMaxEvents ?? 1}`] = (err as Error).stack ?? String(err);
      log(`batching ${batchMaxEvents ?? 1} FAILED: ${(err as Error).message}`);
      continue;
    }
    runs.push(r);
    const single = runs.find((x) => x.batchMaxEvents === null);
    fig({
      section: 'batching',
      name: batchMaxEvents
        ? `batches of ${batchMaxEvents}, one endpoint, ${f0(events)} events: events/s`
        : `one event per POST, one endpoint, ${f0(events)} events: events/s`,
      value: r.perSecond,
      unit: 'deliv/s',
      target: 'every event delivered',
      pass: r.delivered === r.events,
      note:
        `${r.delivered}/${r.events} delivered in ${f0(r.ms / 1000, 2)} s; ${f0(r.requests)} requests (${f0(r.requestsPerSecond)}/s)` +
        (batchMaxEvents && single ? `; ×${f0(r.perSecond / single.perSecond, 1)} one event per POST` : ''),
    });
  }
}

/** A content filter every bench event passes (data.seq counts from 0; data.sent_at_ms is always there). */
const SHAPING_FILTER = { seq: { gte: 0 }, sent_at_ms: { exists: true } };

/**
 * Shaping (bench/lib/shaping.ts): what a content filter and a transformation cost per delivery. The
 * same drain (events through POST /events/batch while the worker is paused, then drained to one
 * endpoint) four times: plain, with a content filter that passes every event, with a transformation
 * (the Slack template), and with both; the best of `--shaping-rounds` rounds of each. A filter runs in
 * Postgres when the event is fanned out (at ingest), a transformation in the worker's sandbox thread
 * at delivery, so each is timed end to end (ingest + drain) and per stage; the overhead per delivery
 * is (1/rate_with − 1/rate_plain) × 1e6 µs. Then one filter evaluation and one transformation run,
 * measured directly.
 */
async function sectionShaping(rx: ReceiverHandle): Promise<void> {
  const n = opts.shapingEvents;
  const variants = [
    { key: 'plain', label: 'plain', fields: {} },
    { key: 'filter', label: 'content filter (passes every event)', fields: { filter: SHAPING_FILTER } },
    { key: 'transformation', label: 'transformation (Slack template)', fields: { template: 'slack' } },
    { key: 'both', label: 'content filter + transformation', fields: { filter: SHAPING_FILTER, template: 'slack' } },
  ] as const;
  type Key = (typeof variants)[number]['key'];
  /** µs per delivery, end to end and per stage, and whether every delivery was made and recorded. */
  const costOf = (r: DrainResult) => ({
    totalUs: ((r.ingest.ms + r.drain.ms) * 1000) / r.expected,
    ingestUs: (r.ingest.ms * 1000) / r.events,
    drainUs: (r.drain.ms * 1000) / r.expected,
    complete: !r.drain.timedOut && r.ledger.unfinished === 0 && r.ledger.failed === 0 && r.receiver.uniqueIds >= r.expected,
  });
  const best = new Map<Key, DrainResult>();
  const rounds: { round: number; variant: Key; eventsPerSecond: number; ingestPerSecond: number; drainPerSecond: number; complete: boolean }[] = [];
  const out: {
    events: number;
    filter: typeof SHAPING_FILTER;
    rounds: typeof rounds;
    filterEvaluation?: FilterEvaluation;
    transformationCall?: TransformationCall;
  } = { events: n, filter: SHAPING_FILTER, rounds };
  details.shaping = out;
  for (let round = 1; round <= opts.shapingRounds; round++) {
    for (const v of variants) {
      let r: DrainResult;
      try {
        r = await drain(rx, `shaping ${v.key} (round ${round})`, n, 1, 1, { endpointFields: v.fields });
      } catch (err) {
        errors[`shaping ${v.key} ${round}`] = (err as Error).stack ?? String(err);
        log(`shaping ${v.key} round ${round} FAILED: ${(err as Error).message}`);
        continue;
      }
      const c = costOf(r);
      rounds.push({
        round,
        variant: v.key,
        eventsPerSecond: 1e6 / c.totalUs,
        ingestPerSecond: r.ingest.perSecond,
        drainPerSecond: r.drain.perSecond,
        complete: c.complete,
      });
      const kept = best.get(v.key);
      // An incomplete drain is never kept over a complete one; among complete ones, the fastest.
      if (!kept || (c.complete && (!costOf(kept).complete || c.totalUs < costOf(kept).totalUs))) best.set(v.key, r);
    }
  }
  const plain = best.get('plain');
  const plainCost = plain ? costOf(plain) : null;
  const signed = (v: number, d = 1) => `${v >= 0 ? '+' : '−'}${f0(Math.abs(v), d)}`;
  for (const v of variants) {
    const r = best.get(v.key);
    if (!r) continue;
    const c = costOf(r);
    fig({
      section: 'shaping',
      name: `${v.label}: ${f0(n)} events ingested + drained, fan-out 1, events/s`,
      value: 1e6 / c.totalUs,
      unit: 'events/s',
      note:
        `ingest ${f0(r.ingest.perSecond)}/s, drain ${f0(r.drain.perSecond)} deliveries/s${r.drain.steadyPerSecond ? ` (steady ${f0(r.drain.steadyPerSecond)}/s)` : ''}; ` +
        `CPU per delivery while draining: worker ${r.cpu.perDeliveryUs.worker} µs, Postgres ${r.cpu.perDeliveryUs.postgres} µs; ` +
        `${r.receiver.uniqueIds}/${r.expected} delivered, best of ${opts.shapingRounds}${c.complete ? '' : ', INCOMPLETE'}`,
    });
    if (v.key === 'plain' || !plain || !plainCost) continue;
    fig({
      section: 'shaping',
      name: `${v.label}: overhead per delivery, end to end`,
      value: c.totalUs - plainCost.totalUs,
      unit: 'µs',
      note:
        `(1/rate − 1/plain rate) × 1e6: ${f0(c.totalUs, 1)} against ${f0(plainCost.totalUs, 1)} µs per delivery; at ingest (fan-out, where a filter runs) ` +
        `${signed(c.ingestUs - plainCost.ingestUs)} µs/event, at drain (where a transformation runs) ${signed(c.drainUs - plainCost.drainUs)} µs/delivery, ` +
        `worker CPU ${signed(r.cpu.perDeliveryUs.worker - plain.cpu.perDeliveryUs.worker, 0)} µs/delivery`,
    });
  }
  try {
    const fe = await filterEvaluation(DATABASE_URL as string, SHAPING_FILTER, { rows: quick ? 20_000 : 100_000, payloadBytes: opts.payloadBytes, repeats: 5 });
    out.filterEvaluation = fe;
    fig({
      section: 'shaping',
      name: 'content filter evaluated in Postgres (jsonb_path_match), per event',
      value: fe.usPerEvaluation,
      unit: 'µs',
      note: `${f0(fe.rows)} rows of ${opts.payloadBytes}-byte bench data: ${f0(fe.withMs, 1)} ms with the filter, ${f0(fe.withoutMs, 1)} ms without (best of 5); ${f0(fe.matched)} matched`,
    });
  } catch (err) {
    errors['shaping filter evaluation'] = (err as Error).stack ?? String(err);
  }
  try {
    const tc = await transformationCall(renderTemplate('slack', {}), { runs: quick ? 400 : 2_000, payloadBytes: opts.payloadBytes });
    out.transformationCall = tc;
    fig({
      section: 'shaping',
      name: 'transformation run (Slack template), one awaited alone, per run',
      value: tc.aloneUs,
      unit: 'µs',
      note: `${f0(tc.runs)} in flight at once: ${f0(tc.inFlightWallUs)} µs wall, ${f0(tc.inFlightCpuUs)} µs CPU per run (both threads), ${f0(1e6 / tc.inFlightWallUs)} runs/s; one sandbox thread, the default limits`,
    });
  } catch (err) {
    errors['shaping transformation call'] = (err as Error).stack ?? String(err);
  }
}

async function sectionIsolation(rx: ReceiverHandle): Promise<void> {
  const io: IsolationOptions = {
    databaseUrl: DATABASE_URL as string,
    redisUrl: REDIS_URL,
    logLevel: opts.logLevel,
    payloadBytes: opts.payloadBytes,
    spreadRate: 100,
    fanoutRate: 10,
    warmupMs: (quick ? 2 : 3) * 1000,
    spreadMs: opts.isolationSeconds * 1000,
    fanoutMs: opts.isolationSeconds * 2 * 1000,
    graceMs: opts.isolationGraceSeconds * 1000,
    slowMs: 5_000,
    orgBacklog: opts.isolationBacklog,
    orgRate: 10,
    orgMs: opts.isolationSeconds * 2 * 1000,
    log,
  };
  const started = performance.now();
  const cases: NoisyCaseResult[] = [];
  const out: { cases: NoisyCaseResult[]; organizations?: OrganizationsResult; ms?: number } = { cases };
  details.isolation = out;
  const ms = (v: number, lower: boolean) => `${lower ? '≥ ' : ''}${f0(v, 1)}`;
  const pct = (p: Percentiles) => `p50 ${ms(p.p50, p.lowerBound.p50)}, p95 ${ms(p.p95, p.lowerBound.p95)}, p99 ${ms(p.p99, p.lowerBound.p99)} ms`;
  const caseTime = (c: NoisyCaseResult) => `window ${f0(c.windowMs / 1000)} s, case ${f0(c.ms.total / 1000, 1)} s`;
  const undelivered = (p: Percentiles) =>
    p.delivered < p.accepted ? `, ${p.accepted - p.delivered} NOT DELIVERED within ${f0(opts.isolationGraceSeconds)} s (counted at their wait so far)` : '';
  for (const mode of opts.isolationModes) {
    const rate = mode === 'spread' ? io.spreadRate : io.fanoutRate;
    const runName = mode === 'spread' ? `${rate} ev/s, each also to 1 noisy endpoint in turn` : `${rate} ev/s, fan-out to every noisy endpoint`;
    // The 0-noisy run is the same whatever the kind: measured once per mode.
    let base: NoisyCaseResult | null = null;
    if (opts.isolationHanging.includes(0)) {
      try {
        base = await runNoisyCase(rx, io, mode, 'hang', 0);
        cases.push(base);
        fig({
          section: 'isolation',
          name: `${runName}: healthy p99, 0 noisy endpoints`,
          value: base.latency.p99,
          unit: 'ms',
          note: `${pct(base.latency)}; ${base.latency.delivered}/${base.latency.accepted} delivered${undelivered(base.latency)}; ${caseTime(base)}`,
        });
      } catch (err) {
        errors[`isolation ${mode} 0`] = (err as Error).stack ?? String(err);
        log(`isolation ${mode} 0 FAILED: ${(err as Error).message}`);
      }
    }
    for (const kind of opts.isolationKinds) {
      for (const n of opts.isolationHanging.filter((x) => x > 0)) {
        let c: NoisyCaseResult;
        try {
          c = await runNoisyCase(rx, io, mode, kind, n);
        } catch (err) {
          errors[`isolation ${mode} ${kind} ${n}`] = (err as Error).stack ?? String(err);
          log(`isolation ${mode} ${kind} ${n} FAILED: ${(err as Error).message}`);
          continue;
        }
        cases.push(c);
        const b = base?.latency;
        const r = (k: 'p50' | 'p95' | 'p99') => (b ? `${f0(c.latency[k] / Math.max(b[k], 0.001), 2)}×` : '—');
        const complete = c.latency.delivered === c.latency.accepted && c.latency.accepted > 0;
        const pass = !b ? null : complete && c.latency.p99 <= 2 * b.p99 && c.latency.p99 <= 250;
        const s = c.noisyStats;
        fig({
          section: 'isolation',
          name: `${runName}: healthy p99, ${n} ${kindWord(kind)}`,
          value: c.latency.p99,
          unit: 'ms',
          target: `≤ 2× 0-noisy${b ? ` (${f0(2 * b.p99, 1)} ms)` : ''} and ≤ 250 ms`,
          pass,
          note:
            `${pct(c.latency)}; vs 0 noisy: p50 ${r('p50')}, p95 ${r('p95')}, p99 ${r('p99')}; ${c.latency.delivered}/${c.latency.accepted} delivered${undelivered(c.latency)}` +
            `${s ? `; noisy receivers got ${s.requests} requests on ${s.serversHit}/${n} ports, ${s.openSockets} sockets open at the end (peak ${s.peakOpenSockets})` : ''}` +
            `${c.offered.errors || c.offered.dropped ? `; POST errors ${c.offered.errors}, dropped ${c.offered.dropped}` : ''}; ${caseTime(c)}`,
        });
      }
    }
  }
  try {
    const org = await runOrganizations(rx, io);
    out.organizations = org;
    const u = org.unloaded;
    const l = org.loaded;
    const complete = l.delivered === l.accepted && l.accepted > 0;
    const ratio3 = (k: 'p50' | 'p95' | 'p99') => `${f0(l[k] / Math.max(u[k], 0.001), 2)}×`;
    fig({
      section: 'isolation',
      name: `small organization, ${org.rate} ev/s alone: p99`,
      value: u.p99,
      unit: 'ms',
      note: `${pct(u)}; ${u.delivered}/${u.accepted} delivered${undelivered(u)}`,
    });
    fig({
      section: 'isolation',
      name: `small organization, ${org.rate} ev/s while another drains ${f0(org.backlog)}: p99`,
      value: l.p99,
      unit: 'ms',
      target: `≤ 2× alone (${f0(2 * u.p99, 1)} ms)`,
      pass: complete && l.p99 <= 2 * u.p99,
      note:
        `${pct(l)}; vs alone: p50 ${ratio3('p50')}, p95 ${ratio3('p95')}, p99 ${ratio3('p99')}; ${l.delivered}/${l.accepted} delivered${undelivered(l)} (events sent while the backlog drained); ` +
        `backlog ${org.backlogDrainedMs === null ? `NOT drained within the window (${f0(org.backlogDeliveredAtEnd)} delivered)` : `drained in ${f0(org.backlogDrainedMs / 1000, 1)} s`}, ` +
        `ingested at ${f0(org.ingest.perSecond)}/s; split at the event's commit: sent → committed ${pct(org.loadedSplit.accept)}, committed → received ${pct(org.loadedSplit.deliver)}; case ${f0(org.ms.total / 1000, 1)} s`,
    });
  } catch (err) {
    errors['isolation organizations'] = (err as Error).stack ?? String(err);
    log(`isolation organizations FAILED: ${(err as Error).message}`);
  }
  out.ms = performance.now() - started;
  log(`isolation: ${f0(out.ms / 1000)} s in all`);
}

// --- run ---------------------------------------------------------------------------------------------

const RESULTS_DIR = fileURLToPath(new URL('./results/', import.meta.url));
const STAMP = new Date().toISOString().replace(/[:.]/g, '-');

async function machine() {
  const info: Record<string, unknown> = {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGb: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    node: process.version,
    loadavgAtStart: loadavg(),
  };
  if (DATABASE_URL) {
    const sql = postgres(DATABASE_URL, { max: 1, onnotice: () => {} });
    try {
      const [v] = await sql<
        { version: string; sc: string; fsync: string }[]
      >`SELECT version(), current_setting('synchronous_commit') AS sc, current_setting('fsync') AS fsync`;
      info.postgres = v?.version;
      info.synchronousCommit = v?.sc;
      info.fsync = v?.fsync;
    } finally {
      await sql.end({ timeout: 5 });
    }
  }
  return info;
}

function printTable(): void {
  const rows = figures.map((f) => [
    f.section,
    f.name,
    `${f0(f.value, f.unit === 'ms' || f.unit === 'µs' ? 1 : 0)} ${f.unit}`,
    f.vsCeiling === undefined || f.vsCeiling === null ? '' : `${f0(f.vsCeiling * 100, 1)}%`,
    f.vsSeed === undefined || f.vsSeed === null ? '' : `${f0(f.vsSeed, 2)}×`,
    f.target ? `${f.target} ${f.pass === true ? 'PASS' : f.pass === false ? 'FAIL' : '(n/a)'}` : '',
    f.note ?? '',
  ]);
  const head = ['section', 'figure', 'value', 'vs ceiling', 'vs seed', 'target', 'detail'];
  const widths = head.map((h, i) => Math.min(i === 6 ? 200 : 70, Math.max(h.length, ...rows.map((r) => (r[i] as string).length))));
  const line = (r: string[]) => r.map((c, i) => (i === 2 || i === 3 || i === 4 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number))).join('  ');
  console.log('\n' + line(head));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
  for (const [s, e] of Object.entries(errors)) console.log(`${s}: NOT MEASURED — ${e}`);
}

async function main(): Promise<void> {
  const planned = SECTIONS.filter(wanted);
  // Only the ceiling and the embedded default run without Postgres.
  const needsPostgres = (s: Section) => s !== 'ceiling' && s !== 'embedded';
  if (!DATABASE_URL) {
    for (const s of planned.filter(needsPostgres)) errors[s] = 'needs DATABASE_URL (real Postgres); only ceiling and embedded run without it';
    console.log(
      'bench: DATABASE_URL is not set: measuring only the ceiling and the embedded default.\n' +
        '       For the full bench: DATABASE_URL=postgres://… REDIS_URL=redis://… npm run bench',
    );
  }
  const runnable = planned.filter((s) => DATABASE_URL || !needsPostgres(s));
  log(
    `sections: ${runnable.join(', ')}; events ${f0(opts.events)}${quick ? ' (quick)' : ''}; Postgres ${DATABASE_URL ? 'on' : 'off'}, Redis ${REDIS_URL ? 'on' : 'off'}`,
  );
  const info = await machine();
  mkdirSync(RESULTS_DIR, { recursive: true });

  const rx = await startReceiver();
  const started = performance.now();
  try {
    // The ceiling and the seed baseline come first: every later figure is a ratio to them.
    const order: [Section, (rx: ReceiverHandle) => Promise<void>][] = [
      ['ceiling', sectionCeiling],
      ['seed', sectionSeed],
      ['sustained', sectionSustained],
      ['backlog', sectionBacklog],
      ['latency', sectionLatency],
      ['trigger', sectionTrigger],
      ['ingest', sectionIngest],
      ['scale', sectionScale],
      ['memory', sectionMemory],
      ['retries', sectionRetries],
      ['embedded', sectionEmbedded],
      ['isolation', sectionIsolation],
      ['fifo', sectionFifo],
      ['batching', sectionBatching],
      ['shaping', sectionShaping],
    ];
    for (const [name, run] of order) {
      if (!runnable.includes(name)) continue;
      try {
        await run(rx);
      } catch (err) {
        errors[name] = (err as Error).stack ?? String(err);
        log(`${name} FAILED: ${(err as Error).message}`);
      }
    }
  } finally {
    await rx.stop();
  }
  info.loadavgAtEnd = loadavg();
  printTable();
  const out = args.out ?? join(RESULTS_DIR, `${STAMP}.json`);
  writeFileSync(
    out,
    JSON.stringify(
      { startedAt: new Date(Date.now() - (performance.now() - started)).toISOString(), machine: info, options: opts, figures, errors, details },
      null,
      2,
    ),
  );
  const prof = details.workerProfile as (ProfileSummary & { file: string }) | undefined;
  if (prof) {
    console.log(`\nworker CPU profile (${prof.file}): ${prof.busyMs} ms busy of ${prof.totalMs} ms`);
    for (const a of prof.areas.slice(0, 10)) console.log(`  ${a.area.padEnd(28)} ${String(a.share).padStart(5)} %`);
    console.log('  top self time:');
    for (const r of prof.top.slice(0, 15)) console.log(`  ${String(r.share).padStart(5)} %  ${r.name}  ${r.where}`);
  }
  if (details.claimPlan) console.log(`\nclaim statement on the backlog (EXPLAIN ANALYZE, rolled back):\n  ${(details.claimPlan as string[]).join('\n  ')}`);
  console.log(
    `\nresults: ${out}  (${f0((performance.now() - started) / 1000)} s; load average ${loadavg()
      .map((n) => n.toFixed(2))
      .join(' ')} on ${cpus().length} CPUs)`,
  );
}

await main();
