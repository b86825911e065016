// Carteiro as real processes for the benchmarks and the chaos run: `carteiro api|worker|start`
// spawned with the environment a production run would have, each in a fresh schema, plus the few
// HTTP and SQL helpers every section needs (event type, endpoints, backlog, drain checks).
//
// Every wait here is bounded in time; every process is stopped by its own pid.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { Pool, request } from 'undici';
import { makeData } from './envelope.ts';

/** The `carteiro` command as installed (bin/carteiro.js: the compile cache, then src/cli/main.ts). */
const MAIN = fileURLToPath(new URL('../../bin/carteiro.js', import.meta.url));
/**
 * The V8 flags `npm run carteiro` gives a Carteiro process, read from package.json so the bench
 * measures what production runs. What each is for, measured, is in docs/performance.md: a larger
 * young generation (worker CPU per delivery 72-80 → 68 µs, deliveries/s +5-13%), at that size from
 * the start (the API's peak while ingesting: 1.31-1.50× → 1.12-1.22× from 10k to 100k events), and an
 * old generation allowed to grow by half its live size between full collections instead of up to 4×
 * (worker 1.31-1.61× → 1.08-1.13×), at no measured cost in deliveries/s or latency.
 */
export const CARTEIRO_NODE_FLAGS: string[] = (() => {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
  const script = pkg.scripts['carteiro'] ?? '';
  // `node <flags> src/cli/main.ts`: its V8 flags, not what loads the .env file (`--import <file>`,
  // `--env-file…`): the bench builds each process's environment itself.
  const words = script.split(/\s+/).slice(1);
  const flags = words.filter((a, i) => a.startsWith('--') && !a.startsWith('--env-file') && a !== '--import' && words[i - 1] !== '--import');
  if (!flags.length) throw new Error(`package.json scripts.carteiro gives no node flags: ${script}`);
  return flags;
})();

export const BENCH_ADMIN_KEY = 'ck_admin_bench_key_0123456789abcdef';
export const BENCH_ENCRYPTION_KEYS = `b1:${Buffer.alloc(32, 9).toString('base64')}`;
export const BENCH_EVENT_TYPE = 'bench.event';
export const BENCH_REDIS_PREFIX = 'carteiro-bench';

export type Sql = postgres.Sql<{}>;

export function benchSchema(prefix = 'bench'): string {
  return `${prefix}_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
}

export type EnvOptions = {
  databaseUrl?: string | undefined;
  redisUrl?: string | undefined;
  schema: string;
  /** Embedded mode: the PGlite data folder. */
  dataDir?: string;
  logLevel?: string;
  extra?: Record<string, string>;
};

/**
 * The environment of a production-like run: real Postgres (and Redis when given), the seed's retry
 * policy and worker defaults. Only what a benchmark cannot do without is set: keys, the schema,
 * loopback allowed as a destination, and no start-up banner.
 */
export function carteiroEnv(o: EnvOptions): Record<string, string> {
  // Tuning knobs from the bench's own environment (CARTEIRO_FLUSH_INTERVAL_MS=20 npm run bench …) reach
  // every process it starts, so a setting can be measured without editing code; what follows wins.
  const tuning = Object.fromEntries(Object.entries(process.env).filter(([k, v]) => k.startsWith('CARTEIRO_') && v !== undefined)) as Record<string, string>;
  const env: Record<string, string> = {
    ...tuning,
    CARTEIRO_SCHEMA: o.schema,
    CARTEIRO_ADMIN_KEY: BENCH_ADMIN_KEY,
    CARTEIRO_ENCRYPTION_KEYS: BENCH_ENCRYPTION_KEYS,
    CARTEIRO_REDIS_PREFIX: BENCH_REDIS_PREFIX,
    CARTEIRO_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8',
    CARTEIRO_QUIET: 'true',
    LOG_LEVEL: o.logLevel ?? 'warn',
    // The bench's runs are short; the hourly retention purge must not start in the middle of one.
    CARTEIRO_RETENTION_INTERVAL_MINUTES: '0',
  };
  if (o.databaseUrl) env.DATABASE_URL = o.databaseUrl;
  if (o.dataDir) env.CARTEIRO_DATA_DIR = o.dataDir;
  if (o.redisUrl) env.REDIS_URL = o.redisUrl;
  return { ...env, ...o.extra };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export type CarteiroProc = {
  role: 'api' | 'worker' | 'start';
  pid: number;
  child: ChildProcess;
  /** API roles: http://127.0.0.1:PORT */
  url: string | null;
  output(): string;
  exited(): boolean;
  /** SIGTERM (graceful), then SIGKILL by pid after graceMs. Resolves with the exit code/signal. */
  stop(graceMs?: number): Promise<string>;
  /** SIGKILL, at once. */
  kill(): Promise<string>;
};

export type SpawnOptions = { nodeArgs?: string[]; port?: number };

export function spawnCarteiro(role: CarteiroProc['role'], env: Record<string, string>, opts: SpawnOptions = {}): CarteiroProc {
  const fullEnv: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env };
  if (opts.port !== undefined) {
    fullEnv.HOST = '127.0.0.1';
    fullEnv.PORT = String(opts.port);
  }
  const child = spawn(process.execPath, [...CARTEIRO_NODE_FLAGS, ...(opts.nodeArgs ?? []), MAIN, role], { env: fullEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => (out = (out + d).slice(-50_000)));
  child.stderr?.on('data', (d) => (out = (out + d).slice(-50_000)));
  const exit = new Promise<string>((r) => child.once('exit', (code, signal) => r(signal ?? `code ${code}`)));
  const exited = () => child.exitCode !== null || child.signalCode !== null;
  if (child.pid === undefined) throw new Error(`could not spawn carteiro ${role}`);
  return {
    role,
    pid: child.pid,
    child,
    url: opts.port !== undefined ? `http://127.0.0.1:${opts.port}` : null,
    output: () => out,
    exited,
    async stop(graceMs = 30_000) {
      if (exited()) return exit;
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!exited()) child.kill('SIGKILL');
      }, graceMs);
      const r = await exit;
      clearTimeout(timer);
      return r;
    },
    async kill() {
      if (!exited()) child.kill('SIGKILL');
      return exit;
    },
  };
}

/** Starts `carteiro api` (or `start`) on a free loopback port; resolves once /health answers. */
export async function startApi(env: Record<string, string>, opts: SpawnOptions & { role?: 'api' | 'start'; timeoutMs?: number } = {}): Promise<CarteiroProc> {
  const port = opts.port ?? (await freePort());
  const proc = spawnCarteiro(opts.role ?? 'api', env, { ...opts, port });
  const deadline = Date.now() + (opts.timeoutMs ?? 60_000);
  for (;;) {
    if (proc.exited()) throw new Error(`carteiro ${proc.role} exited during start-up:\n${proc.output()}`);
    try {
      const res = await request(`${proc.url}/api/webhooks/health`, { headersTimeout: 2_000, bodyTimeout: 2_000 });
      await res.body.dump();
      return proc;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await proc.kill();
      throw new Error(`carteiro ${proc.role} did not answer /health within ${opts.timeoutMs ?? 60_000} ms:\n${proc.output()}`);
    }
    await sleep(50);
  }
}

/** Starts `carteiro worker`; resolves once its heartbeat row is in the ledger (it claims right after). */
export async function startWorker(env: Record<string, string>, sql: Sql, opts: SpawnOptions & { timeoutMs?: number } = {}): Promise<CarteiroProc> {
  const proc = spawnCarteiro('worker', env, opts);
  await waitWorkerReady(proc, sql, opts.timeoutMs ?? 60_000);
  return proc;
}

export async function waitWorkerReady(proc: CarteiroProc, sql: Sql, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.exited()) throw new Error(`carteiro worker exited during start-up:\n${proc.output()}`);
    const rows = await sql`SELECT 1 FROM worker_heartbeats WHERE pid = ${proc.pid}`.catch(() => []);
    if (rows.length) return;
    if (Date.now() > deadline) {
      await proc.kill();
      throw new Error(`carteiro worker gave no heartbeat within ${timeoutMs} ms:\n${proc.output()}`);
    }
    await sleep(20);
  }
}

/** A postgres.js client on the bench schema (for counting and checks, never on the hot path). */
export function benchSql(databaseUrl: string, schema: string, max = 4): Sql {
  return postgres(databaseUrl, {
    max,
    onnotice: () => {},
    connection: { search_path: `${schema},public`, application_name: 'carteiro-bench' },
  }) as unknown as Sql;
}

export async function dropBenchSchema(databaseUrl: string, schema: string): Promise<void> {
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Removes the Redis keys a bench schema left (background-job queue, live channel, limiter counters). */
export async function cleanRedis(redisUrl: string | undefined, schema: string): Promise<number> {
  if (!redisUrl) return 0;
  const { Redis } = await import('ioredis');
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 1, lazyConnect: true, connectTimeout: 3_000 });
  let removed = 0;
  try {
    await redis.connect();
    let cursor = '0';
    let rounds = 0;
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `*${BENCH_REDIS_PREFIX}:${schema}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) removed += await redis.del(...keys);
    } while (cursor !== '0' && ++rounds < 10_000);
  } catch {
    /* best effort */
  } finally {
    redis.disconnect();
  }
  return removed;
}

// --- the API, as a client ----------------------------------------------------------------------

export type ApiAnswer<T = any> = { status: number; body: T; headers: Record<string, string | string[] | undefined> };

/** `headers`: extra request headers, e.g. `x-organization-id` for the admin key to act for one organization. */
export async function api<T = any>(
  baseUrl: string,
  method: string,
  path: string,
  body?: unknown,
  timeoutMs = 30_000,
  headers: Record<string, string> = {},
): Promise<ApiAnswer<T>> {
  const res = await request(`${baseUrl}/api/webhooks/${path}`, {
    method: method as 'GET',
    headers: { ...headers, authorization: `Bearer ${BENCH_ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await res.body.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* keep text */
  }
  return { status: res.statusCode, body: parsed as T, headers: res.headers };
}

export async function registerBenchEventType(baseUrl: string, name = BENCH_EVENT_TYPE, headers: Record<string, string> = {}): Promise<void> {
  const r = await api(baseUrl, 'POST', 'event-types', { name, schema: { type: 'object' } }, 30_000, headers);
  if (r.status !== 201 && r.status !== 409) throw new Error(`event type ${name}: ${r.status} ${JSON.stringify(r.body)}`);
}

/**
 * `count` endpoints subscribed to `eventType`, each at its own path of the receiver (…/webhook/e1, /e2…).
 * `fields`: more of each endpoint's fields (a content filter, a transformation or template, …).
 */
export async function createEndpoints(
  baseUrl: string,
  receiverUrl: string,
  count: number,
  eventType = BENCH_EVENT_TYPE,
  fields: Record<string, unknown> = {},
): Promise<{ id: string; url: string }[]> {
  const out: { id: string; url: string }[] = [];
  for (let i = 1; i <= count; i++) {
    const url = `${receiverUrl}/e${i}`;
    const r = await api(baseUrl, 'POST', 'endpoints', { ...fields, name: `bench-${i}`, url, events: [eventType] });
    if (r.status !== 201) throw new Error(`endpoint: ${r.status} ${JSON.stringify(r.body)}`);
    out.push({ id: r.body.id, url });
  }
  return out;
}

const INGEST_BATCH_BODY_BYTES = 1024 * 1024 - 1024;

/**
 * Fills the ledger through POST /events/batch (up to 1,000 events a request, a few requests at
 * once), the way a producer would. Returns the accepted count and the rate.
 */
export async function ingestBacklog(
  baseUrl: string,
  o: {
    events: number;
    payloadBytes: number;
    eventType?: string;
    batch?: number;
    concurrency?: number;
    timeoutMs?: number;
    seqStart?: number;
    headers?: Record<string, string>;
  },
): Promise<{ accepted: number; ms: number; perSecond: number }> {
  // A batch must fit the API's default body limit (1 MiB) whatever the payload size; an event's JSON
  // is a little smaller than its payload size (makeData).
  const batch = o.batch ?? Math.max(1, Math.min(1000, Math.floor(INGEST_BATCH_BODY_BYTES / o.payloadBytes)));
  const pool = new Pool(baseUrl, { connections: o.concurrency ?? 4, keepAliveTimeout: 60_000 });
  const deadline = performance.now() + (o.timeoutMs ?? 600_000);
  const start = performance.now();
  let next = 0;
  let accepted = 0;
  const loop = async (): Promise<void> => {
    while (next < o.events) {
      if (performance.now() > deadline) throw new Error(`backlog ingest exceeded ${o.timeoutMs ?? 600_000} ms`);
      const from = next;
      const n = Math.min(batch, o.events - from);
      next += n;
      const events = Array.from({ length: n }, (_, k) => ({
        event_type: o.eventType ?? BENCH_EVENT_TYPE,
        data: { ...makeData(o.payloadBytes), seq: (o.seqStart ?? 0) + from + k },
      }));
      const res = await pool.request({
        method: 'POST',
        path: '/api/webhooks/events/batch',
        headers: { ...o.headers, authorization: `Bearer ${BENCH_ADMIN_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ events }),
        headersTimeout: 60_000,
        bodyTimeout: 60_000,
      });
      const text = await res.body.text();
      if (res.statusCode !== 202) throw new Error(`batch ingest: ${res.statusCode} ${text.slice(0, 300)}`);
      accepted += n;
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency ?? 4 }, loop));
  } finally {
    await pool.close();
  }
  const ms = performance.now() - start;
  return { accepted, ms, perSecond: (accepted / ms) * 1000 };
}

// --- ledger checks -------------------------------------------------------------------------------

export type DispatchCounts = { total: number; succeeded: number; failed: number; pending: number; in_flight: number; paused: number };

export async function dispatchCounts(sql: Sql): Promise<DispatchCounts> {
  const [row] = await sql<DispatchCounts[]>`
    SELECT count(*)::int AS total,
           count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
           count(*) FILTER (WHERE status = 'failed')::int AS failed,
           count(*) FILTER (WHERE status = 'pending')::int AS pending,
           count(*) FILTER (WHERE status = 'in_flight')::int AS in_flight,
           count(*) FILTER (WHERE status = 'paused')::int AS paused
    FROM webhook_dispatches`;
  return row as DispatchCounts;
}

export async function attemptCounts(sql: Sql): Promise<{ attempts: number; successes: number }> {
  const [row] = await sql<{ attempts: number; successes: number }[]>`
    SELECT count(*)::int AS attempts, count(*) FILTER (WHERE success)::int AS successes FROM webhook_deliveries`;
  return row as { attempts: number; successes: number };
}

/** Polls until `check` is truthy or the time runs out; returns the value, or null on timeout. */
export async function until<T>(check: () => Promise<T | null | undefined | false>, timeoutMs: number, intervalMs = 100): Promise<T | null> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => null);
    if (v) return v;
    if (performance.now() > deadline) return null;
    await sleep(intervalMs);
  }
}

// --- CPU -------------------------------------------------------------------------------------------

const CLOCK_TICKS_PER_SECOND = 100;

/** CPU time (user + system) a process has used so far, in ms, from /proc (0 when gone or not Linux). */
export function cpuMs(pid: number): number {
  // Precise when the kernel keeps it: /proc/<pid>/schedstat's first field is the time the process ran,
  // in ns, from the scheduler's clock. utime + stime in /proc/<pid>/stat are samples at each timer tick
  // (4 ms here), which charge a whole tick to whatever runs at that instant: fine for a saturated
  // process, far off for one that wakes for a few µs at a time (below saturation).
  try {
    const ran = Number(readFileSync(`/proc/${pid}/schedstat`, 'utf8').split(' ')[0]);
    if (Number.isFinite(ran)) return ran / 1e6;
  } catch {
    /* no schedstat: fall back to the tick samples */
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return 0;
  }
}

/**
 * The checkpointer's counters: checkpoints started, buffers written, and the time spent in the sync
 * phase (fsync of every file the checkpoint wrote). That phase is the stall to look for: on this
 * machine's disk it held every commit's WAL flush for 0.25-0.3 s, and a latency window it falls into
 * gets its p99 from those few hundred milliseconds (docs/performance.md, "Results").
 * A checkpoint started before a window can finish inside it, so the sync time, which is counted at
 * the end, is what says whether one did. Postgres 17 moved the counters to pg_stat_checkpointer.
 */
export type CheckpointCounters = { started: number; buffersWritten: number; syncMs: number };
export async function checkpointCounters(sql: Sql): Promise<CheckpointCounters | null> {
  type Row = { started: string; written: string; sync_ms: string };
  try {
    const [v] = await sql<{ v: string }[]>`SELECT current_setting('server_version_num') AS v`;
    const rows =
      Number(v?.v) >= 170000
        ? await sql<
            Row[]
          >`SELECT (num_timed + num_requested)::text AS started, buffers_written::text AS written, sync_time::text AS sync_ms FROM pg_stat_checkpointer`
        : await sql<
            Row[]
          >`SELECT (checkpoints_timed + checkpoints_req)::text AS started, buffers_checkpoint::text AS written, checkpoint_sync_time::text AS sync_ms FROM pg_stat_bgwriter`;
    const r = rows[0];
    return r ? { started: Number(r.started), buffersWritten: Number(r.written), syncMs: Number(r.sync_ms) } : null;
  } catch {
    return null;
  }
}

/**
 * Forces a checkpoint now, so that one begun by an earlier section's writes does not end inside the
 * next measured window (the window then starts with the checkpointer idle, and the next checkpoint is
 * minutes of WAL away). Needs a superuser or pg_checkpoint; returns whether it ran.
 */
export async function checkpointNow(sql: Sql): Promise<boolean> {
  try {
    await sql`CHECKPOINT`;
    return true;
  } catch {
    return false;
  }
}

export function checkpointDelta(before: CheckpointCounters | null, after: CheckpointCounters | null) {
  if (!before || !after) return null;
  return {
    started: after.started - before.started,
    buffersWritten: after.buffersWritten - before.buffersWritten,
    syncMs: Math.round(after.syncMs - before.syncMs),
  };
}

/** Postgres backends (pids) serving connections with this application_name (same host only). */
export async function backendPids(sql: Sql, applicationName: string): Promise<number[]> {
  const rows = await sql<{ pid: number }[]>`SELECT pid FROM pg_stat_activity WHERE application_name = ${applicationName}`;
  return rows.map((r) => r.pid);
}

/**
 * CPU used between start() and stop() by some processes and by the Postgres backends serving an
 * application_name (backends that appear meanwhile are counted from zero). Postgres must be on
 * this host for its part to be read.
 */
export class CpuMeter {
  #procs = new Map<string, { pids: number[]; start: number }>();
  #backends = new Map<number, number>();
  #sql: Sql | null = null;
  #app = '';

  async start(procs: Record<string, number[]>, sql?: Sql, applicationName?: string): Promise<void> {
    for (const [label, pids] of Object.entries(procs)) this.#procs.set(label, { pids, start: pids.reduce((a, p) => a + cpuMs(p), 0) });
    if (sql && applicationName) {
      this.#sql = sql;
      this.#app = applicationName;
      for (const pid of await backendPids(sql, applicationName).catch(() => [])) this.#backends.set(pid, cpuMs(pid));
    }
  }

  /** CPU ms per label, plus `postgres` for the backends. */
  async stop(): Promise<Record<string, number>> {
    const out: Record<string, number> = {};
    for (const [label, { pids, start }] of this.#procs) out[label] = Math.round(pids.reduce((a, p) => a + cpuMs(p), 0) - start);
    if (this.#sql) {
      let pg = 0;
      for (const pid of await backendPids(this.#sql, this.#app).catch(() => [])) pg += cpuMs(pid) - (this.#backends.get(pid) ?? 0);
      out.postgres = Math.round(pg);
    }
    return out;
  }
}

/**
 * How busy the whole machine was between start() and stop(), as a share of all its cores (/proc/stat:
 * everything but idle and iowait). A latency tail on a machine near 100% is queueing for the CPU.
 */
export class MachineBusyMeter {
  #start: { busy: number; total: number } | null = null;
  start(): void {
    this.#start = MachineBusyMeter.read();
  }
  stop(): number | null {
    const end = MachineBusyMeter.read();
    if (!this.#start || !end || end.total === this.#start.total) return null;
    return (end.busy - this.#start.busy) / (end.total - this.#start.total);
  }
  static read(): { busy: number; total: number } | null {
    try {
      const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]?.trim().split(/\s+/).slice(1).map(Number) ?? [];
      const total = cpu.reduce((a, b) => a + b, 0);
      const idle = (cpu[3] ?? 0) + (cpu[4] ?? 0);
      return { busy: total - idle, total };
    } catch {
      return null;
    }
  }
}

// --- memory ----------------------------------------------------------------------------------------

/** Resident set size of a process, in MB, from /proc (0 when gone or not Linux). */
export function rssMb(pid: number): { rss: number; hwm: number } {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)?.[1] ?? 0);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return { rss: 0, hwm: 0 };
  }
}

/** Samples the RSS of labelled processes every `intervalMs`, keeping each label's peak. */
export class RssSampler {
  #pids = new Map<string, number[]>();
  #peak = new Map<string, number>();
  #timer: NodeJS.Timeout | null = null;

  watch(label: string, pid: number): void {
    const list = this.#pids.get(label) ?? [];
    list.push(pid);
    this.#pids.set(label, list);
  }

  start(intervalMs = 200): this {
    this.sample();
    // A sampler must not keep the bench alive when a section fails before stopping it.
    this.#timer = setInterval(() => this.sample(), intervalMs).unref();
    return this;
  }

  sample(): void {
    for (const [label, pids] of this.#pids) {
      for (const pid of pids) {
        const { rss } = rssMb(pid);
        if (rss > (this.#peak.get(label) ?? 0)) this.#peak.set(label, rss);
      }
    }
  }

  /** Peak RSS per label, MB (the largest single process under that label). */
  stop(): Record<string, number> {
    if (this.#timer) clearInterval(this.#timer);
    this.sample();
    return Object.fromEntries([...this.#peak].map(([k, v]) => [k, Math.round(v * 10) / 10]));
  }
}
