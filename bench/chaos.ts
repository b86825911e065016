// `npm run chaos`: a bounded fault scenario against real Postgres and Redis, and the ledger of what
// came through it.
//
//   DATABASE_URL=postgres://… npm run chaos                      # worker kills, Redis, flapping receiver
//   DATABASE_URL=postgres://… npm run chaos -- --postgres-restart # + a restart of THAT Postgres mid-run
//   npm run chaos -- --private-postgres                           # own throw-away cluster, restarted mid-run
//   npm run chaos -- --events 5000 --rate 250                     # smaller
//   npm run chaos -- --noisy-only                                 # only the noisy-neighbour phase
//
// Carteiro runs as real processes (1 API, 2 workers) in a fresh schema on the given Postgres, with
// REDIS_URL pointed at a redis-server this script starts on a spare loopback port (it is flushed
// and restarted mid-run; the machine's shared Redis is never touched). A client POSTs `--events`
// events to /trigger at `--rate`, each with an Idempotency-Key, retrying 503s (after Retry-After)
// and timeouts with the same key, as a well-behaved producer would. Meanwhile:
//
//   * a worker is SIGKILLed every `--kill-every` seconds and a new one started in its place;
//   * Redis gets FLUSHALL and is restarted;
//   * the receiver flaps the whole run (500s, resets, hangs past the timeout, slow bodies) and
//     answers nothing but 500 for a few seconds once;
//   * with --postgres-restart only: Postgres is restarted `--postgres-restarts` times (default 3) at
//     random moments of the run, so at random points of the workers' cycle (claiming, sending,
//     recording, idle), each down for a random 1..2 × `--postgres-down-seconds` (pg_ctlcluster). It is the machine's
//     shared server: every other client of it sees the restart too. --private-postgres instead runs
//     the whole scenario on a cluster of its own (initdb in a temporary folder, a spare port), which
//     it restarts freely and removes at the end.
//
// The ledger: events accepted (202), delivered (unique), duplicates (always the same webhook-id:
// a second event for the same payload would be a conflict), lost (accepted, never delivered: must
// be 0), time to recover after each fault, and the API's answers while Postgres was down (503 with
// Retry-After, never a 500, never a hang).
//
// Then a noisy-neighbour phase (skipped with --noisy-events 0): healthy endpoints beside endpoints
// that hang, answer slowly (under the timeout) or refuse connections, each on its own loopback port,
// all subscribed to every event of the phase; `--noisy-events` more events at `--noisy-rate`, a
// worker SIGKILLed halfway. Its ledger: every accepted event has a dispatch for every endpoint; every
// healthy dispatch delivered (the receiver saw each event at each healthy path) and succeeded; every
// slow one succeeded or still owed; hanging and refusing ones still owed (pending, in flight, held)
// or given up after the retry budget with their attempts recorded — none missing.
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { Redis } from 'ioredis';
import { nowMs } from './lib/envelope.ts';
import { startReceiver, type FlapConfig, type ReceiverHandle } from './lib/receiver.ts';
import { startNoisyReceivers, type NoisyKind, type NoisyReceivers, type NoisyStats } from './lib/noisy-receivers.ts';
import { redisServerVersion, startRedisServer, type OwnRedis } from './lib/redis-server.ts';
import { privatePostgresAvailable, startPrivatePostgres, type PrivatePostgres } from './lib/private-postgres.ts';
import {
  BENCH_ADMIN_KEY,
  BENCH_EVENT_TYPE,
  api,
  attemptCounts,
  benchSchema,
  benchSql,
  carteiroEnv,
  createEndpoints,
  dispatchCounts,
  dropBenchSchema,
  freePort,
  registerBenchEventType,
  sleep,
  spawnCarteiro,
  startApi,
  until,
  waitWorkerReady,
  type CarteiroProc,
  type Sql,
} from './lib/carteiro.ts';

const { values: args } = parseArgs({
  options: {
    events: { type: 'string', default: '20000' },
    rate: { type: 'string', default: '400' },
    'kill-every': { type: 'string', default: '4' },
    workers: { type: 'string', default: '2' },
    'postgres-restart': { type: 'boolean', default: false },
    'private-postgres': { type: 'boolean', default: false },
    'postgres-down-seconds': { type: 'string', default: '4' },
    'postgres-restarts': { type: 'string', default: '3' },
    'redis-port': { type: 'string' },
    'drain-timeout': { type: 'string', default: '240' },
    'payload-bytes': { type: 'string', default: '512' },
    'client-connections': { type: 'string', default: '2048' },
    'log-level': { type: 'string', default: 'warn' },
    'noisy-events': { type: 'string', default: '1000' },
    'noisy-rate': { type: 'string', default: '100' },
    'noisy-per-kind': { type: 'string', default: '3' },
    'noisy-only': { type: 'boolean', default: false },
    out: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
  strict: true,
});
if (args.help) {
  console.log(
    'usage: npm run chaos -- [--events 20000] [--rate 400] [--kill-every 4] [--workers 2] [--postgres-restart | --private-postgres]\n' +
      '                         [--postgres-down-seconds 4] [--postgres-restarts 3] [--redis-port P] [--drain-timeout 240] [--client-connections 2048] [--out file.json]\n' +
      '                         [--noisy-events 1000] [--noisy-rate 100] [--noisy-per-kind 3] [--noisy-only]\nsee docs/performance.md',
  );
  process.exit(0);
}

const NOISY_ONLY = args['noisy-only'] === true;
// --noisy-only: the fault phase offers nothing and injects nothing; the noisy-neighbour phase runs alone.
const EVENTS = NOISY_ONLY ? 0 : Number(args.events);
const NOISY_EVENTS = Math.max(0, Number(args['noisy-events']));
const NOISY_RATE = Math.max(1, Number(args['noisy-rate']));
const NOISY_PER_KIND = Math.max(1, Number(args['noisy-per-kind']));
const NOISY_HEALTHY = 2;
const NOISY_EVENT_TYPE = 'chaos.noisy';
// Slow receivers answer under the chaos timeout (WEBHOOK_TIMEOUT_MS 2000): slow, not failing.
const NOISY_SLOW_MS = 1_500;
const RATE = Number(args.rate);
const KILL_EVERY_MS = Number(args['kill-every']) * 1000;
const WORKERS = Math.max(1, Number(args.workers));
const DRAIN_TIMEOUT_MS = Number(args['drain-timeout']) * 1000;
const PAYLOAD_PAD = 'x'.repeat(Math.max(0, Number(args['payload-bytes']) - 150));
const CLIENT_TIMEOUT_MS = 10_000;
// Enough that no request waits in the client for a connection while the API holds requests up to its
// 5 s answer deadline (at the default rate, ~2,000 outstanding): an answer's time is then the API's.
// With 64, requests queued in the client behind two rounds of held ones and "the slowest answer" read
// 10 s where the API had taken 5 (each answer now records how many requests were outstanding).
const CLIENT_CONNECTIONS = Math.max(1, Number(args['client-connections']));
const MAX_SUBMITS_PER_EVENT = 30;
const PRIVATE_PG = args['private-postgres'] === true;
const RESTART_PG = PRIVATE_PG || args['postgres-restart'] === true;
let DATABASE_URL = process.env.DATABASE_URL || undefined;
let privatePg: PrivatePostgres | null = null;

// Retries fast enough for a bounded run, a timeout short enough that "hangs past the timeout" happen.
const CHAOS_ENV = {
  WEBHOOK_TIMEOUT_MS: '2000',
  CARTEIRO_LEASE_MS: '6000',
  CARTEIRO_POLL_INTERVAL_MS: '500',
  WEBHOOK_MAX_RETRIES: '10',
  WEBHOOK_RETRY_BASE_DELAY_MS: '200',
  WEBHOOK_RETRY_BACKOFF_FACTOR: '2',
  WEBHOOK_RETRY_MAX_DELAY_MS: '3000',
  WEBHOOK_RETRY_JITTER: '0.2',
  // The breaker must not disable the one endpoint on purpose-made failures.
  CARTEIRO_CIRCUIT_BREAKER_FAILURES: '0',
  CARTEIRO_CIRCUIT_BREAKER_HOURS: '0',
};
const FLAP: FlapConfig = { resetRate: 0.03, hangRate: 0.02, hangMs: 5_000, slowRate: 0.05, slowMs: 1_200 };
const FLAP_500_RATE = 0.1;

const log = (line: string): void => console.log(`[chaos ${new Date().toISOString().slice(11, 19)}] ${line}`);

function fail(msg: string): never {
  console.error(`chaos: ${msg}`);
  process.exit(2);
}

if (PRIVATE_PG && !privatePostgresAvailable()) fail('--private-postgres needs the Postgres server binaries (initdb, pg_ctl)');
if (!DATABASE_URL && !PRIVATE_PG) fail('needs real Postgres: set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/postgres), or pass --private-postgres');
const redisVersion = redisServerVersion();
if (!redisVersion) fail('needs redis-server on PATH (it starts its own on a spare loopback port)');

// --- faults --------------------------------------------------------------------------------------------

type Fault = {
  kind: 'worker-kill' | 'redis-flush-restart' | 'receiver-outage' | 'postgres-restart';
  startedAt: number;
  endedAt: number;
  detail: Record<string, unknown>;
  /** Fault over → every event accepted before that moment delivered. */
  recoverMs?: number | null;
  /** Kind-specific: orphaned leases re-delivered, Redis healthy again, API accepting again. */
  specificRecoverMs?: number | null;
  specificWhat?: string;
};

const faults: Fault[] = [];

function pgCluster(): { version: string; name: string } | null {
  const r = spawnSync('pg_lsclusters', ['-h'], { encoding: 'utf8' });
  const line = r.status === 0 ? r.stdout.trim().split('\n')[0] : undefined;
  const parts = line?.split(/\s+/);
  return parts && parts.length >= 2 ? { version: parts[0] as string, name: parts[1] as string } : null;
}

function pgCtl(action: 'stop' | 'start'): string {
  if (privatePg) {
    if (action === 'stop') privatePg.stop();
    else privatePg.start();
    return `private cluster on port ${privatePg.port}`;
  }
  const c = pgCluster();
  if (!c) throw new Error('pg_lsclusters found no cluster; cannot restart Postgres');
  const extra = action === 'stop' ? ['-m', 'fast'] : [];
  const r = spawnSync('pg_ctlcluster', ['--skip-systemctl-redirect', c.version, c.name, action, ...extra], { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`pg_ctlcluster ${action}: ${r.stderr || r.stdout}`);
  return `${c.version}/${c.name}`;
}

// --- the producer ----------------------------------------------------------------------------------------

/** `outstanding`: requests already in flight when this one was issued; past the pool's connections it queued in the client first. */
type Submission = { status: number | 'timeout' | 'error'; at: number; ms: number; retryAfter: string | null; code?: string; outstanding?: number };

class Producer {
  readonly accepted = new Map<number, { eventId: string; at: number }>();
  readonly gaveUp = new Set<number>();
  readonly log: Submission[] = [];
  #pool: Pool;
  #inflight = new Set<Promise<void>>();
  #retryTimers = new Set<NodeJS.Timeout>();
  #offered = 0;
  #runId: string;
  #eventType: string;
  constructor(baseUrl: string, runId: string, eventType = BENCH_EVENT_TYPE) {
    this.#runId = runId;
    this.#eventType = eventType;
    this.#pool = new Pool(baseUrl, { connections: CLIENT_CONNECTIONS, keepAliveTimeout: 60_000 });
  }

  get offered(): number {
    return this.#offered;
  }

  /** Offers seq 0..events-1 at `rate`, open loop; resolves when every one is accepted or given up. */
  async run(events: number, rate: number, hardStopMs: number): Promise<void> {
    const start = performance.now();
    await new Promise<void>((resolve) => {
      const timer = setInterval(() => {
        const due = Math.min(events, Math.floor(((performance.now() - start) * rate) / 1000));
        while (this.#offered < due) this.#submit(this.#offered++, 1);
        if (this.#offered >= events || performance.now() - start > hardStopMs) {
          clearInterval(timer);
          resolve();
        }
      }, 2);
    });
    const deadline = performance.now() + hardStopMs;
    while ((this.#inflight.size || this.#retryTimers.size) && performance.now() < deadline) await sleep(50);
  }

  #submit(seq: number, attempt: number): void {
    const p = this.#post(seq, attempt, this.#inflight.size).finally(() => this.#inflight.delete(p));
    this.#inflight.add(p);
  }

  async #post(seq: number, attempt: number, outstanding: number): Promise<void> {
    const t0 = performance.now();
    const at = nowMs();
    let sub: Submission;
    let retryAfterMs = 1_000;
    try {
      const res = await this.#pool.request({
        method: 'POST',
        path: '/api/webhooks/trigger',
        headers: { authorization: `Bearer ${BENCH_ADMIN_KEY}`, 'content-type': 'application/json', 'idempotency-key': `${this.#runId}-${seq}` },
        body: JSON.stringify({ event_type: this.#eventType, data: { seq, sent_at_ms: at, pad: PAYLOAD_PAD } }),
        headersTimeout: CLIENT_TIMEOUT_MS,
        bodyTimeout: CLIENT_TIMEOUT_MS,
      });
      const text = await res.body.text();
      const ra = res.headers['retry-after'];
      sub = { status: res.statusCode, at, ms: performance.now() - t0, retryAfter: typeof ra === 'string' ? ra : null, outstanding };
      if (res.statusCode === 202) {
        const body = JSON.parse(text) as { event_id: string };
        const prev = this.accepted.get(seq);
        if (prev && prev.eventId !== body.event_id) throw new Error(`seq ${seq}: two event ids for one idempotency key (${prev.eventId}, ${body.event_id})`);
        if (!prev) this.accepted.set(seq, { eventId: body.event_id, at: nowMs() });
        this.log.push(sub);
        return;
      }
      if (res.statusCode >= 500) {
        try {
          sub.code = (JSON.parse(text) as { code?: string }).code ?? '';
        } catch {
          /* not JSON */
        }
      }
      if (sub.retryAfter) retryAfterMs = Math.max(200, Number(sub.retryAfter) * 1000);
    } catch (err) {
      if ((err as Error).message.startsWith(`seq ${seq}`)) throw err;
      const timeout = /timeout/i.test((err as Error).name + (err as Error).message);
      sub = {
        status: timeout ? 'timeout' : 'error',
        at,
        ms: performance.now() - t0,
        retryAfter: null,
        code: (err as { code?: string }).code ?? (err as Error).name,
        outstanding,
      };
    }
    this.log.push(sub);
    // 503, timeout or connection error: the same request again later, same Idempotency-Key.
    if (attempt >= MAX_SUBMITS_PER_EVENT) {
      this.gaveUp.add(seq);
      return;
    }
    const t = setTimeout(() => {
      this.#retryTimers.delete(t);
      this.#submit(seq, attempt + 1);
    }, retryAfterMs);
    this.#retryTimers.add(t);
  }

  async close(): Promise<void> {
    for (const t of this.#retryTimers) clearTimeout(t);
    await this.#pool.close();
  }
}

// --- the run ----------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const runId = `chaos${Date.now().toString(36)}`;
  const schema = benchSchema('chaos');
  if (PRIVATE_PG) {
    privatePg = startPrivatePostgres(await freePort());
    DATABASE_URL = privatePg.url;
    log(`private Postgres cluster on 127.0.0.1:${privatePg.port} (${privatePg.dataDir})`);
  }
  const redisPort = args['redis-port'] ? Number(args['redis-port']) : await freePort();
  log(
    `${EVENTS.toLocaleString('en-US')} events at ${RATE}/s; ${WORKERS} workers, one SIGKILLed every ${KILL_EVERY_MS / 1000} s; ` +
      `own Redis on 127.0.0.1:${redisPort} (${redisVersion}); Postgres restart ${RESTART_PG ? `ON (${PRIVATE_PG ? 'private cluster' : 'the server at DATABASE_URL'})` : 'off (pass --postgres-restart or --private-postgres)'}`,
  );

  let redis: OwnRedis | null = await startRedisServer(redisPort);
  const rx = await startReceiver({ failureRate: FLAP_500_RATE, flap: FLAP });
  const env = carteiroEnv({ databaseUrl: DATABASE_URL, redisUrl: redis.url, schema, logLevel: args['log-level'] ?? 'warn', extra: CHAOS_ENV });
  const sql = benchSql(DATABASE_URL as string, schema);
  const workers: CarteiroProc[] = [];
  const retired: CarteiroProc[] = [];
  let apiProc: CarteiroProc | null = null;
  let producer: Producer | null = null;
  const pgOutage = { windows: [] as { from: number; to: number }[], responses: [] as Submission[], healthDuring: [] as number[] };
  const report: Record<string, unknown> = {
    runId,
    schema,
    options: { ...args, events: EVENTS, rate: RATE },
    chaosEnv: CHAOS_ENV,
    flap: { ...FLAP, errorRate: FLAP_500_RATE },
  };
  let ok = false;

  // Workers are supervised as systemd or Kubernetes would: one that exits on its own (e.g. started
  // while Postgres is down, or crashed) is logged and started again after a second.
  const ready = new Set<CarteiroProc>();
  const unexpectedExits: { pid: number; at: number; how: string; output: string }[] = [];
  let supervising = true;
  const spawnWorker = async (): Promise<CarteiroProc> => {
    const w = spawnCarteiro('worker', env);
    workers.push(w);
    w.child.once('exit', (code, signal) => {
      if (!supervising || retired.includes(w)) return;
      const tail = w.output().trim().split('\n').slice(-3).join(' | ').slice(0, 400);
      unexpectedExits.push({ pid: w.pid, at: nowMs(), how: signal ?? `code ${code}`, output: tail });
      log(`worker ${w.pid} exited on its own (${signal ?? `code ${code}`}): ${tail}; restarting in 1 s`);
      workers.splice(workers.indexOf(w), 1);
      retired.push(w);
      setTimeout(() => void (supervising ? spawnWorker() : null), 1_000);
    });
    await waitWorkerReady(w, sql, 60_000).then(
      () => ready.add(w),
      () => {},
    );
    return w;
  };

  try {
    apiProc = await startApi(env);
    const apiUrl = apiProc.url as string;
    await registerBenchEventType(apiUrl);
    await createEndpoints(apiUrl, rx.url, 1);
    for (let i = 0; i < WORKERS; i++) await spawnWorker();
    producer = new Producer(apiUrl, runId);
    const offerMs = (EVENTS / RATE) * 1000;
    const t0 = performance.now();
    const at = (fraction: number) => t0 + offerMs * fraction;
    let stopFaults = NOISY_ONLY;

    // Worker kills, every KILL_EVERY_MS while events are offered.
    const killer = (async () => {
      await sleep(Math.min(3_000, KILL_EVERY_MS));
      while (!stopFaults && performance.now() < t0 + offerMs) {
        // The longest-running worker that is up (a replacement still starting is left alone).
        const victim = workers.find((w) => ready.has(w) && !w.exited());
        if (victim) {
          const startedAt = nowMs();
          workers.splice(workers.indexOf(victim), 1);
          retired.push(victim);
          await victim.kill();
          const orphans = await sql<{ id: string }[]>`
            SELECT id FROM webhook_dispatches WHERE status = 'in_flight' AND leased_by LIKE ${'%-' + victim.pid}`.catch(() => []);
          faults.push({
            kind: 'worker-kill',
            startedAt,
            endedAt: nowMs(),
            detail: { pid: victim.pid, orphanedLeases: orphans.length, orphanIds: orphans.map((o) => o.id) },
          });
          log(`SIGKILL worker ${victim.pid} (${orphans.length} deliveries in flight under its lease); starting a new one`);
          await sleep(300);
          void spawnWorker();
        }
        await sleep(KILL_EVERY_MS);
      }
    })();

    // Redis: FLUSHALL, then restart (our own server, same port).
    const redisFault = (async () => {
      await sleep(Math.max(0, at(0.25) - performance.now()));
      if (stopFaults || !redis) return;
      const startedAt = nowMs();
      const c = new Redis(redis.url, { maxRetriesPerRequest: 1, lazyConnect: true });
      await c.connect();
      await c.flushall();
      c.disconnect();
      await redis.stop();
      redis = null;
      await sleep(2_000);
      redis = await startRedisServer(redisPort);
      const endedAt = nowMs();
      log('Redis: FLUSHALL, stopped, restarted after 2 s');
      const healthy = await until(
        async () => {
          const h = await api(apiUrl, 'GET', 'health', undefined, 3_000);
          return h.body?.services?.redis === 'healthy' ? nowMs() : null;
        },
        60_000,
        100,
      );
      faults.push({
        kind: 'redis-flush-restart',
        startedAt,
        endedAt,
        detail: { downMs: endedAt - startedAt },
        specificRecoverMs: healthy ? healthy - endedAt : null,
        specificWhat: 'API /health sees Redis healthy',
      });
    })();

    // The receiver answers only 500 for 4 s (on top of its usual flapping).
    const receiverFault = (async () => {
      await sleep(Math.max(0, at(0.45) - performance.now()));
      if (stopFaults) return;
      const startedAt = nowMs();
      await rx.setFailureRate(1);
      log('receiver: 100% 500s for 4 s');
      await sleep(4_000);
      await rx.setFailureRate(FLAP_500_RATE);
      faults.push({ kind: 'receiver-outage', startedAt, endedAt: nowMs(), detail: { durationMs: 4_000 } });
    })();

    // Postgres restarts (only when asked: it may be the shared server), at random moments, so at
    // random points of the workers' cycle; one at a time, each down for a random while.
    const pgFault = (async () => {
      if (!RESTART_PG) return;
      const restarts = Math.max(1, Number(args['postgres-restarts']));
      const moments = Array.from({ length: restarts }, () => 0.15 + Math.random() * 0.75).sort((a, b) => a - b);
      for (const moment of moments) {
        await sleep(Math.max(0, at(moment) - performance.now()));
        if (stopFaults) return;
        const downMs = Math.round(Number(args['postgres-down-seconds']) * 1000 * (1 + Math.random()));
        const startedAt = nowMs();
        const probe = setInterval(() => {
          void api(apiUrl, 'GET', 'health', undefined, 5_000).then(
            (h) => pgOutage.healthDuring.push(h.status),
            () => pgOutage.healthDuring.push(0),
          );
        }, 250);
        const cluster = pgCtl('stop');
        log(`Postgres ${cluster}: stopped (fast); starting again in ${(downMs / 1000).toFixed(1)} s`);
        await sleep(downMs);
        pgCtl('start');
        const endedAt = nowMs();
        log('Postgres: started');
        pgOutage.windows.push({ from: startedAt, to: endedAt });
        const accepting = await until(
          async () => {
            const hit = producer?.log.find((s) => s.at >= endedAt && s.status === 202);
            if (hit) return hit.at + hit.ms;
            // The offer is over (every event answered): no 202 will come to time this recovery by.
            return stopFaults ? -1 : null;
          },
          60_000,
          100,
        );
        clearInterval(probe);
        faults.push({
          kind: 'postgres-restart',
          startedAt,
          endedAt,
          detail: { cluster, downMs },
          specificRecoverMs: accepting !== null && accepting > 0 ? accepting - endedAt : null,
          specificWhat: 'first 202 after Postgres is back',
        });
      }
    })();

    log(`offering ${EVENTS.toLocaleString('en-US')} events`);
    await producer.run(EVENTS, RATE, offerMs + 180_000);
    stopFaults = true;
    await Promise.all([killer, redisFault, receiverFault, pgFault]);
    // Every replacement up before the drain is judged.
    await until(async () => workers.every((w) => ready.has(w) || w.exited()), 60_000, 100);
    log(`offered ${producer.offered}, accepted ${producer.accepted.size}, gave up ${producer.gaveUp.size}; draining (≤ ${DRAIN_TIMEOUT_MS / 1000} s)`);

    const expected = producer.accepted.size;
    const drained = await until(async () => ((await rx.stats()).uniqueIds >= expected ? true : null), DRAIN_TIMEOUT_MS, 250);
    await until(
      async () => {
        const c = await dispatchCounts(sql);
        return c.succeeded + c.failed >= c.total ? true : null;
      },
      30_000,
      250,
    );

    // --- the ledger ---
    const s = await rx.stats();
    const seqs = new Map(await rx.seqs());
    const lost = [...producer.accepted.keys()].filter((q) => !seqs.has(q));
    const counts = await dispatchCounts(sql);
    const attempts = await attemptCounts(sql);
    const [dbEvents] = await sql<{ n: number; keyed: number }[]>`
      SELECT count(*)::int AS n, count(*) FILTER (WHERE idempotency_key LIKE ${runId + '-%'})::int AS keyed FROM webhook_events WHERE event_type = ${BENCH_EVENT_TYPE}`;
    const acceptedIds = new Set([...producer.accepted.values()].map((a) => a.eventId));
    const dbIds = new Set((await sql<{ id: string }[]>`SELECT id FROM webhook_events WHERE event_type = ${BENCH_EVENT_TYPE}`).map((r) => r.id));
    const acceptedNotStored = [...acceptedIds].filter((id) => !dbIds.has(id)).length;

    // Recovery: fault over → every event accepted before then delivered (receiver's first ack).
    for (const f of faults) {
      let latest = f.endedAt;
      let missing = 0;
      for (const [seq, a] of producer.accepted) {
        if (a.at > f.endedAt) continue;
        const d = seqs.get(seq);
        if (d === undefined) missing++;
        else if (d > latest) latest = d;
      }
      f.recoverMs = missing ? null : latest - f.endedAt;
      if (f.kind === 'worker-kill') {
        const ids = (f.detail.orphanIds as string[]) ?? [];
        if (ids.length) {
          const [r] = await sql<{ done: number; last: Date | null }[]>`
            SELECT count(*) FILTER (WHERE status = 'succeeded')::int AS done, max(completed_at) AS last
            FROM webhook_dispatches WHERE id = ANY(${ids}::uuid[])`;
          f.specificRecoverMs = r && r.done === ids.length && r.last ? r.last.getTime() - f.startedAt : null;
        } else {
          f.specificRecoverMs = 0;
        }
        f.specificWhat = 'its leased deliveries re-delivered';
        delete f.detail.orphanIds;
      }
    }

    const inOutage = (x: Submission) => pgOutage.windows.some((w) => x.at >= w.from && x.at <= w.to);
    const outage = producer.log.filter(inOutage);
    const byStatus = (list: Submission[]) => list.reduce<Record<string, number>>((a, x) => ((a[String(x.status)] = (a[String(x.status)] ?? 0) + 1), a), {});
    const all = byStatus(producer.log);
    const outageStatus = byStatus(outage);
    const outage503WithoutRetryAfter = outage.filter((x) => x.status === 503 && !x.retryAfter).length;
    const maxOutageMs = outage.reduce((m, x) => Math.max(m, x.ms), 0);
    // Answers to requests that had a connection of their own at once: the API's own answer time.
    const unqueued = outage.filter((x) => (x.outstanding ?? 0) < CLIENT_CONNECTIONS);
    const maxOutageMsUnqueued = unqueued.reduce((m, x) => Math.max(m, x.ms), 0);
    const stopOf = (x: Submission) => pgOutage.windows.find((w) => x.at >= w.from && x.at <= w.to)?.from ?? 0;
    const slowest = [...outage]
      .sort((a, b) => b.ms - a.ms)
      .slice(0, 10)
      .map((x) => ({
        status: x.status,
        code: x.code,
        ms: Math.round(x.ms),
        sentAfterStopMs: Math.round(x.at - stopOf(x)),
        outstandingWhenIssued: x.outstanding,
      }));
    const codes = outage.filter((x) => x.code).reduce<Record<string, number>>((a, x) => ((a[x.code as string] = (a[x.code as string] ?? 0) + 1), a), {});

    const ledger = {
      offered: producer.offered,
      accepted: producer.accepted.size,
      producerGaveUp: producer.gaveUp.size,
      acceptedButNotInLedger: acceptedNotStored,
      ledgerEvents: dbEvents?.n ?? 0,
      deliveredUnique: [...producer.accepted.keys()].filter((q) => seqs.has(q)).length,
      duplicates: s.duplicates,
      duplicatesWithOtherWebhookId: s.seqConflicts,
      lost: lost.length,
      lostSample: lost.slice(0, 20),
      dispatches: counts,
      attemptRows: attempts.attempts,
      receiver: {
        requests: s.requests,
        acknowledged: s.acknowledged,
        injected500: s.failuresInjected,
        resets: s.resets,
        hangs: s.hangs,
        slowBodies: s.slowBodies,
      },
      drainedInTime: !!drained,
      apiAnswers: all,
    };
    report.ledger = ledger;
    report.faults = faults;
    report.unexpectedWorkerExits = unexpectedExits;
    report.postgresOutage = pgOutage.windows.length
      ? {
          windows: pgOutage.windows,
          answersByStatus: outageStatus,
          errorCodes: codes,
          served503WithoutRetryAfter: outage503WithoutRetryAfter,
          maxResponseMs: maxOutageMs,
          clientConnections: CLIENT_CONNECTIONS,
          queuedInClient: outage.length - unqueued.length,
          maxResponseMsWithOwnConnection: maxOutageMsUnqueued,
          slowest,
          healthStatuses: byStatus(pgOutage.healthDuring.map((h) => ({ status: h, at: 0, ms: 0, retryAfter: null }))),
        }
      : 'not exercised (pass --postgres-restart or --private-postgres)';

    ok =
      ledger.lost === 0 &&
      ledger.acceptedButNotInLedger === 0 &&
      ledger.duplicatesWithOtherWebhookId === 0 &&
      ledger.producerGaveUp === 0 &&
      counts.failed === 0 &&
      !!drained &&
      (!pgOutage.windows.length || (!outageStatus['500'] && !outageStatus.timeout && outage503WithoutRetryAfter === 0));
    if (NOISY_ONLY) console.log('\nfault phase skipped (--noisy-only)');
    else printLedger(ledger, faults, report.postgresOutage);
    if (unexpectedExits.length)
      console.log(`\nworkers that exited on their own (restarted by the harness): ${unexpectedExits.map((e) => `${e.pid} (${e.how})`).join(', ')}`);

    if (NOISY_EVENTS > 0) {
      const noisy = await noisyNeighbourPhase({
        apiUrl,
        sql,
        runId,
        killOne: async () => {
          const victim = workers.find((w) => ready.has(w) && !w.exited());
          if (!victim) return null;
          workers.splice(workers.indexOf(victim), 1);
          retired.push(victim);
          await victim.kill();
          await sleep(300);
          void spawnWorker();
          return victim.pid;
        },
        workersReady: () => until(async () => workers.every((w) => ready.has(w) || w.exited()), 60_000, 100).then(() => {}),
      });
      report.noisyNeighbour = noisy;
      ok = ok && noisy.ok;
    }
  } finally {
    supervising = false;
    await producer?.close();
    await Promise.all(workers.map((w) => w.stop(20_000)));
    await Promise.all(retired.map((w) => w.kill()));
    await apiProc?.stop(15_000);
    await rx.stop();
    await sql.end({ timeout: 5 }).catch(() => {});
    await dropBenchSchema(DATABASE_URL as string, schema).catch((e: Error) => log(`drop schema: ${e.message}`));
    await (redis as OwnRedis | null)?.stop();
    privatePg?.destroy();
  }
  const dir = fileURLToPath(new URL('./results/', import.meta.url));
  mkdirSync(dir, { recursive: true });
  const out = args.out ?? join(dir, `chaos-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, JSON.stringify({ ok, ...report }, null, 2));
  console.log(`\n${ok ? 'PASS' : 'FAIL'}: results in ${out}`);
  process.exitCode = ok ? 0 : 1;
}

// --- the noisy-neighbour phase ------------------------------------------------------------------------------

type NoisyPhaseContext = {
  apiUrl: string;
  sql: Sql;
  runId: string;
  /** SIGKILLs one running worker and starts another in its place; its pid, or null when none was up. */
  killOne(): Promise<number | null>;
  workersReady(): Promise<void>;
};

type NoisyEndpointKind = NoisyKind | 'healthy';

async function noisyNeighbourPhase(c: NoisyPhaseContext) {
  const kinds: NoisyKind[] = ['hang', 'slow', 'refuse'];
  const endpointCount = NOISY_HEALTHY + kinds.length * NOISY_PER_KIND;
  log(
    `noisy neighbours: ${NOISY_HEALTHY} healthy endpoints beside ${NOISY_PER_KIND} hanging, ${NOISY_PER_KIND} slow (${NOISY_SLOW_MS} ms) and ` +
      `${NOISY_PER_KIND} refusing, each on its own port; ${NOISY_EVENTS.toLocaleString('en-US')} events at ${NOISY_RATE}/s to all ${endpointCount}`,
  );
  let healthyRx: ReceiverHandle | null = null;
  const noisy = new Map<NoisyKind, NoisyReceivers>();
  let producer: Producer | null = null;
  try {
    healthyRx = await startReceiver();
    for (const k of kinds) noisy.set(k, await startNoisyReceivers(k, NOISY_PER_KIND, { slowMs: NOISY_SLOW_MS }));
    await registerBenchEventType(c.apiUrl, NOISY_EVENT_TYPE);
    const healthyPaths: string[] = [];
    const endpoints: { name: string; url: string; kind: NoisyEndpointKind }[] = [];
    for (let i = 1; i <= NOISY_HEALTHY; i++) {
      endpoints.push({ name: `noisy-healthy-${i}`, url: `${healthyRx.url}/n${i}`, kind: 'healthy' });
      healthyPaths.push(`${new URL(healthyRx.url).pathname}/n${i}`);
    }
    for (const k of kinds) (noisy.get(k) as NoisyReceivers).urls.forEach((url, i) => endpoints.push({ name: `noisy-${k}-${i + 1}`, url, kind: k }));
    const kindById = new Map<string, NoisyEndpointKind>();
    for (const e of endpoints) {
      const r = await api(c.apiUrl, 'POST', 'endpoints', { name: e.name, url: e.url, events: [NOISY_EVENT_TYPE] });
      if (r.status !== 201) throw new Error(`endpoint ${e.name}: ${r.status} ${JSON.stringify(r.body)}`);
      kindById.set(r.body.id as string, e.kind);
    }
    await c.workersReady();

    producer = new Producer(c.apiUrl, `${c.runId}-noisy`, NOISY_EVENT_TYPE);
    const offerMs = (NOISY_EVENTS / NOISY_RATE) * 1000;
    const killer = (async () => {
      await sleep(offerMs / 2);
      const pid = await c.killOne();
      if (pid !== null) log(`noisy neighbours: SIGKILL worker ${pid} halfway; starting a new one`);
      return pid;
    })();
    await producer.run(NOISY_EVENTS, NOISY_RATE, offerMs + 120_000);
    const killed = await killer;
    await c.workersReady();
    const accepted = producer.accepted.size;
    log(
      `noisy neighbours: offered ${producer.offered}, accepted ${accepted}; waiting for the healthy endpoints (≤ ${DRAIN_TIMEOUT_MS / 1000} s), then the slow ones (≤ 60 s)`,
    );
    const t0 = nowMs();
    const rx = healthyRx;
    const healthyDone = await until(async () => ((await rx.stats()).uniqueIds >= accepted * NOISY_HEALTHY ? true : null), DRAIN_TIMEOUT_MS, 250);
    const healthyMs = nowMs() - t0;
    // The slow endpoints' deliveries finished, and the healthy ones recorded (the ledger is written a
    // moment after the receiver answers).
    const slowIds = [...kindById].filter(([, k]) => k === 'slow').map(([id]) => id);
    const healthyIds = [...kindById].filter(([, k]) => k === 'healthy').map(([id]) => id);
    await until(
      async () => {
        const [r] = await c.sql<{ owed: number; healthy: number }[]>`
        SELECT count(*) FILTER (WHERE webhook_endpoint_id = ANY(${slowIds}::uuid[]) AND status NOT IN ('succeeded', 'failed'))::int AS owed,
               count(*) FILTER (WHERE webhook_endpoint_id = ANY(${healthyIds}::uuid[]) AND status = 'succeeded')::int AS healthy
        FROM webhook_dispatches`;
        return r && r.owed === 0 && r.healthy >= accepted * NOISY_HEALTHY ? true : null;
      },
      60_000,
      500,
    );

    // --- the ledger of the phase ---
    const rxStats = await rx.stats();
    const seen = new Set(await rx.ids());
    const eventIds = [...producer.accepted.values()].map((a) => a.eventId);
    let healthyMissing = 0;
    for (const id of eventIds) for (const p of healthyPaths) if (!seen.has(`${p} ${id}`)) healthyMissing++;
    const rows = await c.sql<{ endpoint: string; status: string; n: number; attempted: number }[]>`
      SELECT d.webhook_endpoint_id::text AS endpoint, d.status::text AS status, count(*)::int AS n, count(*) FILTER (WHERE d.attempts > 0)::int AS attempted
      FROM webhook_dispatches d JOIN webhook_events e ON e.id = d.webhook_event_id
      WHERE e.event_type = ${NOISY_EVENT_TYPE}
      GROUP BY 1, 2`;
    const byKind: Record<string, Record<string, number>> = {};
    const failedUnattempted: Record<string, number> = {};
    for (const r of rows) {
      const k = kindById.get(r.endpoint) ?? 'unknown';
      (byKind[k] ??= {})[r.status] = (byKind[k]?.[r.status] ?? 0) + r.n;
      if (r.status === 'failed' && r.attempted < r.n) failedUnattempted[k] = (failedUnattempted[k] ?? 0) + (r.n - r.attempted);
    }
    const [missing] = await c.sql<{ events: number; without: number }[]>`
      SELECT count(*)::int AS events, count(*) FILTER (WHERE (SELECT count(*) FROM webhook_dispatches d WHERE d.webhook_event_id = e.id) <> ${endpointCount})::int AS without
      FROM webhook_events e WHERE e.event_type = ${NOISY_EVENT_TYPE}`;
    const dbIds = new Set((await c.sql<{ id: string }[]>`SELECT id FROM webhook_events WHERE event_type = ${NOISY_EVENT_TYPE}`).map((r) => r.id));
    const acceptedNotStored = eventIds.filter((id) => !dbIds.has(id)).length;
    const noisyStats: Record<string, NoisyStats> = {};
    for (const [k, h] of noisy) noisyStats[k] = await h.stats();
    const total = (k: string) => Object.values(byKind[k] ?? {}).reduce((a, b) => a + b, 0);
    const owed = (k: string) => total(k) - (byKind[k]?.succeeded ?? 0) - (byKind[k]?.failed ?? 0);
    const ledger = {
      offered: producer.offered,
      accepted,
      producerGaveUp: producer.gaveUp.size,
      acceptedButNotInLedger: acceptedNotStored,
      eventsWithoutEveryDispatch: missing?.without ?? 0,
      healthy: {
        expected: accepted * NOISY_HEALTHY,
        delivered: rxStats.uniqueIds,
        missing: healthyMissing,
        duplicates: rxStats.duplicates,
        duplicatesWithOtherWebhookId: rxStats.seqConflicts,
        allDeliveredAfterOfferMs: healthyDone ? healthyMs : null,
        latencyMs: rxStats.latencyMs,
      },
      dispatches: byKind,
      owed: Object.fromEntries(['healthy', ...kinds].map((k) => [k, owed(k)])),
      failedWithoutAttempt: failedUnattempted,
      noisyReceivers: noisyStats,
      workerKilled: killed,
    };
    const healthyRows = total('healthy');
    const healthyOk = healthyMissing === 0 && (byKind.healthy?.succeeded ?? 0) === accepted * NOISY_HEALTHY && healthyRows === accepted * NOISY_HEALTHY;
    const slowOk = (byKind.slow?.failed ?? 0) === 0 && (byKind.slow?.succeeded ?? 0) <= noisyStats.slow!.answered;
    const noneLost =
      acceptedNotStored === 0 &&
      (missing?.without ?? 0) === 0 &&
      (missing?.events ?? 0) === accepted &&
      Object.keys(failedUnattempted).length === 0 &&
      ['healthy', ...kinds].every((k) => total(k) === accepted * (k === 'healthy' ? NOISY_HEALTHY : NOISY_PER_KIND));
    const phaseOk = healthyOk && slowOk && noneLost && producer.gaveUp.size === 0 && rxStats.seqConflicts === 0;
    printNoisyLedger(ledger, phaseOk);
    return { ok: phaseOk, ...ledger };
  } finally {
    await producer?.close();
    for (const h of noisy.values()) await h.stop();
    await healthyRx?.stop();
  }
}

function printNoisyLedger(l: Record<string, any>, ok: boolean): void {
  const row = (k: string, v: unknown, note = '') => console.log(`  ${k.padEnd(34)} ${String(v).padStart(10)}  ${note}`);
  const lat = l.healthy.latencyMs;
  console.log('\nnoisy neighbours');
  row('events offered', l.offered);
  row('accepted (202)', l.accepted, l.producerGaveUp ? `${l.producerGaveUp} never accepted` : '');
  row('accepted but not in the ledger', l.acceptedButNotInLedger, 'must be 0');
  row('events missing a dispatch', l.eventsWithoutEveryDispatch, 'must be 0');
  row(
    'healthy deliveries',
    `${l.healthy.delivered}/${l.healthy.expected}`,
    `missing ${l.healthy.missing} (must be 0), dup ${l.healthy.duplicates}, under another id ${l.healthy.duplicatesWithOtherWebhookId}; ` +
      `all in ${l.healthy.allDeliveredAfterOfferMs === null ? 'NOT within the drain timeout' : `${(l.healthy.allDeliveredAfterOfferMs / 1000).toFixed(1)} s after the last 202`}; p50 ${lat.p50.toFixed(1)} ms, p99 ${lat.p99.toFixed(1)} ms, max ${lat.max.toFixed(1)} ms`,
  );
  for (const k of ['healthy', 'slow', 'hang', 'refuse']) row(`dispatches: ${k}`, JSON.stringify(l.dispatches[k] ?? {}), `still owed ${l.owed[k]}`);
  if (Object.keys(l.failedWithoutAttempt).length) row('given up without an attempt', JSON.stringify(l.failedWithoutAttempt), 'must be none');
  for (const [k, s] of Object.entries(l.noisyReceivers as Record<string, NoisyStats>)) {
    if (k !== 'refuse') row(`${k} receivers`, `${s.requests} req`, `${s.answered} answered, ${s.openSockets} sockets open (peak ${s.peakOpenSockets})`);
  }
  console.log(`  ${ok ? 'PASS' : 'FAIL'}: healthy all delivered, slow succeeded or owed, hanging/refusing owed or given up with attempts, none missing`);
}

function printLedger(l: Record<string, any>, fs: Fault[], pg: unknown): void {
  const row = (k: string, v: unknown, note = '') => console.log(`  ${k.padEnd(34)} ${String(v).padStart(10)}  ${note}`);
  console.log('\nledger');
  row('events offered', l.offered);
  row(
    'accepted (202)',
    l.accepted,
    l.producerGaveUp
      ? `${l.producerGaveUp} never accepted after ${MAX_SUBMITS_PER_EVENT} tries`
      : 'every offered event, retrying 503/timeouts with its Idempotency-Key',
  );
  row('accepted but not in the ledger', l.acceptedButNotInLedger, 'must be 0');
  row('delivered (unique)', l.deliveredUnique);
  row('duplicates (same webhook-id)', l.duplicates, 'at-least-once: allowed');
  row('duplicates under another id', l.duplicatesWithOtherWebhookId, 'must be 0');
  row('LOST', l.lost, l.lost ? `seq ${l.lostSample.join(', ')}` : 'must be 0');
  row('deliveries given up (failed)', l.dispatches.failed, 'must be 0 (retry budget)');
  row(
    'attempt rows',
    l.attemptRows,
    `receiver saw ${l.receiver.requests} requests: ${l.receiver.injected500} × 500, ${l.receiver.resets} resets, ${l.receiver.hangs} hangs, ${l.receiver.slowBodies} slow bodies`,
  );
  row('API answers', JSON.stringify(l.apiAnswers));
  console.log('\nfaults (recover = fault over → every event accepted before it delivered)');
  for (const f of fs) {
    const t = new Date(f.startedAt).toISOString().slice(11, 23);
    console.log(
      `  ${t}  ${f.kind.padEnd(20)} recover ${f.recoverMs === null || f.recoverMs === undefined ? 'NOT RECOVERED' : `${(f.recoverMs / 1000).toFixed(1)} s`}` +
        `${f.specificWhat ? `; ${f.specificWhat}: ${f.specificRecoverMs === null || f.specificRecoverMs === undefined ? '—' : `${(f.specificRecoverMs / 1000).toFixed(1)} s`}` : ''}  ${JSON.stringify(f.detail)}`,
    );
  }
  const byKind = new Map<string, number>();
  for (const f of fs) if (typeof f.recoverMs === 'number') byKind.set(f.kind, Math.max(byKind.get(f.kind) ?? 0, f.recoverMs));
  console.log(`  max recover per fault kind: ${[...byKind].map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ') || '—'}`);
  console.log(`\nPostgres outage: ${typeof pg === 'string' ? pg : JSON.stringify(pg)}`);
}

// The harness's own checks go through postgres.js, which rejects promises of its own when the
// server it is restarting on purpose goes away (seen: CONNECTION_CLOSED with nobody awaiting it).
// Those are the fault under test, not a failure of the run; anything else still ends it.
const CONNECTION_LOST = new Set(['CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'ECONNREFUSED', 'ECONNRESET', '57P01', '57P03']);
process.on('unhandledRejection', (err) => {
  const code = (err as { code?: string })?.code;
  if (code && CONNECTION_LOST.has(code)) {
    log(`harness: a Postgres connection of the harness was lost (${code}); carrying on`);
    return;
  }
  throw err;
});

await main();
