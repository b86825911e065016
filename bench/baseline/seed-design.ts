// The seed's design, done plainly — the baseline Carteiro is compared against.
//
//   API ──queue.add──▶ BullMQ (Redis) ──▶ ONE Worker, concurrency 100
//                                           ├─ sign + POST (undici Pool)
//                                           └─ INSERT one attempt row (Postgres,
//                                              one statement per delivery,
//                                              synchronous_commit = on)
//
// No batching, no tuning beyond what the design states: this is what a
// straightforward implementation of that design achieves on this machine.
// Each run uses a uniquely named queue and a fresh Postgres schema, and
// removes both at the end, so runs never see each other's data.
import { randomBytes } from 'node:crypto';
import { Queue, Worker, type Job, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import postgres from 'postgres';
import { Pool } from 'undici';
import { makeData, nowMs, type EnvelopeData } from '../lib/envelope.ts';
import { fetchReceiverStats, resetReceiver } from '../lib/receiver.ts';
import { createSigner } from '../lib/sign.ts';
import type { LatencySummary } from '../lib/stats.ts';

export interface SeedBaselineOptions {
  databaseUrl: string;
  redisUrl: string;
  /** Delivery URL of the benchmark receiver. */
  receiverUrl: string;
  /** Jobs to enqueue as a backlog before the worker starts. */
  events: number;
  /** BullMQ Worker concurrency. Default 100. */
  concurrency?: number;
  /** Approximate serialized envelope size. Default 1024. */
  payloadBytes?: number;
  /** undici Pool connections. Default = concurrency (one socket per in-flight job). */
  connections?: number;
  /** postgres.js pool size (its default). Default 10. */
  pgPoolSize?: number;
  /** Hard stop for the delivery phase; the result says if it was hit. Default 120 s. */
  durationLimitMs?: number;
  secret?: string;
}

export interface SeedBaselineResult {
  deliveriesPerSecond: number;
  /** Worker start → last completion. */
  elapsedMs: number;
  events: number;
  delivered: number;
  /** Jobs that exhausted their attempts. */
  failed: number;
  /** Attempt rows found in Postgres afterwards (should be ≥ delivered). */
  attemptRows: number;
  enqueueMs: number;
  enqueuePerSecond: number;
  timedOut: boolean;
  concurrency: number;
}

export interface SeedLatencyOptions extends Omit<SeedBaselineOptions, 'events'> {
  /** Jobs offered per second, spread evenly (each added on its own, as an API would). */
  ratePerSecond: number;
  /** How long jobs are offered. */
  durationMs: number;
  /** After offering stops, how long to wait for the last deliveries. Default 30 s. */
  drainTimeoutMs?: number;
}

export interface SeedLatencyResult {
  offeredRate: number;
  offered: number;
  /** Jobs whose add() failed (not accepted). */
  rejected: number;
  delivered: number;
  /** Deliveries per second over the offering window + drain. */
  achievedRate: number;
  /** accepted → delivered (receiver clock − data.sent_at_ms set at add time), ms. */
  p50: number;
  p95: number;
  p99: number;
  latencyMs: LatencySummary;
  duplicates: number;
  drained: boolean;
  elapsedMs: number;
}

/** What one job carries: everything the worker needs to build and send the envelope. */
interface DeliveryJob {
  deliveryId: string;
  eventId: string;
  type: string;
  createdAt: string;
  payload: EnvelopeData;
}

// Retries as a plain seed would configure them; finished jobs are removed so
// Redis does not fill (failed ones kept for a bounded time, for inspection).
const JOB_OPTIONS: JobsOptions = {
  attempts: 5,
  backoff: { type: 'exponential', delay: 1_000 },
  removeOnComplete: true,
  removeOnFail: { age: 3_600, count: 10_000 },
};

const ADD_BULK_CHUNK = 1_000;

interface SeedRig {
  queue: Queue<DeliveryJob>;
  runId: string;
  makeJob(n: number, sentAtMs?: number): DeliveryJob;
  /** A paused worker; call `worker.run()` to start it. */
  createWorker(hooks: { onCompleted(): void; onFinalFailure(): void }): Promise<Worker<DeliveryJob>>;
  countAttempts(): Promise<number>;
  close(): Promise<void>;
}

async function setupRig(opts: SeedBaselineOptions | SeedLatencyOptions): Promise<SeedRig> {
  const concurrency = opts.concurrency ?? 100;
  const payloadBytes = opts.payloadBytes ?? 1024;
  const runId = `${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const schema = `bench_seed_${runId}`;
  const table = `${schema}.delivery_attempts`;
  const queueName = `bench-seed-${runId}`;

  const sql = postgres(opts.databaseUrl, {
    max: opts.pgPoolSize ?? 10,
    onnotice: () => {},
    // Durable commits, as the design relies on: every attempt row is flushed.
    connection: { synchronous_commit: 'on', application_name: 'carteiro-bench-seed' },
  });
  await sql`create schema ${sql(schema)}`;
  await sql`
    create table ${sql(table)} (
      id            bigserial primary key,
      delivery_id   text        not null,
      event_id      text        not null,
      attempt       integer     not null,
      status_code   integer     not null,
      duration_ms   integer     not null,
      response_body text,
      created_at    timestamptz not null default now()
    )`;

  // BullMQ wants maxRetriesPerRequest: null for worker (blocking) connections.
  const queueConn = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const workerConn = new Redis(opts.redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue<DeliveryJob>(queueName, { connection: queueConn, defaultJobOptions: JOB_OPTIONS });
  await queue.waitUntilReady();

  const target = new URL(opts.receiverUrl);
  const path = target.pathname + target.search;
  const pool = new Pool(target.origin, { connections: opts.connections ?? concurrency, keepAliveTimeout: 60_000 });
  const signer = createSigner(opts.secret);
  let worker: Worker<DeliveryJob> | undefined;

  async function deliver(job: Job<DeliveryJob>): Promise<void> {
    const d = job.data;
    const body = JSON.stringify({ id: d.eventId, type: d.type, timestamp: d.createdAt, data: d.payload });
    const headers = signer.headers(d.deliveryId, body);
    const t0 = performance.now();
    let status = 0;
    let responseBody: string;
    try {
      const res = await pool.request({ method: 'POST', path, headers, body, headersTimeout: 30_000, bodyTimeout: 30_000 });
      status = res.statusCode;
      responseBody = (await res.body.text()).slice(0, 4096);
    } catch (err) {
      responseBody = String(err).slice(0, 4096);
    }
    const durationMs = Math.round(performance.now() - t0);
    await sql`
      insert into ${sql(table)} (delivery_id, event_id, attempt, status_code, duration_ms, response_body)
      values (${d.deliveryId}, ${d.eventId}, ${job.attemptsMade + 1}, ${status}, ${durationMs}, ${responseBody})`;
    if (status < 200 || status >= 300) throw new Error(`delivery failed: HTTP ${status || 'error'}`);
  }

  return {
    queue,
    runId,
    makeJob(n, sentAtMs) {
      return {
        deliveryId: `dlv_${runId}_${n}`,
        eventId: `evt_${runId}_${n}`,
        type: 'bench.event',
        createdAt: new Date().toISOString(),
        payload: makeData(payloadBytes, sentAtMs),
      };
    },
    async createWorker(hooks) {
      worker = new Worker<DeliveryJob>(queueName, deliver, { connection: workerConn, concurrency, autorun: false });
      worker.on('completed', hooks.onCompleted);
      worker.on('failed', (job) => {
        if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) hooks.onFinalFailure();
      });
      worker.on('error', (err) => console.error('[seed-baseline] worker error:', err.message));
      await worker.waitUntilReady();
      return worker;
    },
    async countAttempts() {
      const [row] = await sql<{ n: number }[]>`select count(*)::int as n from ${sql(table)}`;
      return row?.n ?? 0;
    },
    async close() {
      // Best-effort, in order: stop consuming, drop the queue's keys, then the schema.
      await worker?.close().catch(() => undefined);
      await queue.obliterate({ force: true }).catch((e: Error) => console.error('[seed-baseline] obliterate:', e.message));
      await queue.close().catch(() => undefined);
      await pool.close().catch(() => undefined);
      queueConn.disconnect();
      workerConn.disconnect();
      await sql`drop schema if exists ${sql(schema)} cascade`.catch((e: Error) => console.error('[seed-baseline] drop schema:', e.message));
      await sql.end({ timeout: 5 });
    },
  };
}

/** Resolves when `isDone()` becomes true (checked by `kick`) or after `ms`; returns false on timeout. */
function completion(ms: number): { promise: Promise<boolean>; kick(isDone: boolean): void } {
  let resolve!: (v: boolean) => void;
  const promise = new Promise<boolean>((r) => (resolve = r));
  const timer = setTimeout(() => resolve(false), ms);
  return {
    promise,
    kick(isDone) {
      if (isDone) {
        clearTimeout(timer);
        resolve(true);
      }
    },
  };
}

/** Throughput from a backlog: enqueue `events`, then time one worker draining them. */
export async function runSeedBaseline(opts: SeedBaselineOptions): Promise<SeedBaselineResult> {
  const concurrency = opts.concurrency ?? 100;
  const rig = await setupRig(opts);
  try {
    const enqueueStart = performance.now();
    for (let i = 0; i < opts.events; i += ADD_BULK_CHUNK) {
      const n = Math.min(ADD_BULK_CHUNK, opts.events - i);
      await rig.queue.addBulk(Array.from({ length: n }, (_, k) => ({ name: 'deliver', data: rig.makeJob(i + k) })));
    }
    const enqueueMs = performance.now() - enqueueStart;

    let delivered = 0;
    let failed = 0;
    let lastDoneAt = 0;
    const done = completion(opts.durationLimitMs ?? 120_000);
    const worker = await rig.createWorker({
      onCompleted() {
        delivered++;
        lastDoneAt = performance.now();
        done.kick(delivered + failed >= opts.events);
      },
      onFinalFailure() {
        failed++;
        lastDoneAt = performance.now();
        done.kick(delivered + failed >= opts.events);
      },
    });

    const start = performance.now();
    worker.run().catch((e: Error) => console.error('[seed-baseline] worker.run:', e.message));
    const finished = await done.promise;
    const elapsedMs = (finished ? lastDoneAt : performance.now()) - start;
    await worker.close();
    return {
      deliveriesPerSecond: (delivered / elapsedMs) * 1000,
      elapsedMs,
      events: opts.events,
      delivered,
      failed,
      attemptRows: await rig.countAttempts(),
      enqueueMs,
      enqueuePerSecond: (opts.events / enqueueMs) * 1000,
      timedOut: !finished,
      concurrency,
    };
  } finally {
    await rig.close();
  }
}

/**
 * Latency under a fixed offered load. Jobs are added one by one at
 * `ratePerSecond`, each stamped with data.sent_at_ms just before add(); the
 * receiver measures accepted → delivered. Uses the receiver's HTTP control
 * routes (reset before, stats after), so nothing else should be sending to
 * that receiver during the run.
 */
export async function runSeedBaselineLatency(opts: SeedLatencyOptions): Promise<SeedLatencyResult> {
  const rig = await setupRig(opts);
  try {
    let delivered = 0;
    let failed = 0;
    let offered = 0;
    let rejected = 0;
    let offering = true;
    const total = Math.floor((opts.ratePerSecond * opts.durationMs) / 1000);
    const allDone = completion(opts.durationMs + (opts.drainTimeoutMs ?? 30_000));
    const isDone = (): boolean => !offering && delivered + failed + rejected >= offered;
    const worker = await rig.createWorker({
      onCompleted() {
        delivered++;
        allDone.kick(isDone());
      },
      onFinalFailure() {
        failed++;
        allDone.kick(isDone());
      },
    });
    worker.run().catch((e: Error) => console.error('[seed-baseline] worker.run:', e.message));
    await resetReceiver(opts.receiverUrl);

    // Open-loop arrivals: every few ms, add whatever is due by now, without
    // waiting for earlier adds (concurrent API requests don't wait either).
    const start = performance.now();
    await new Promise<void>((resolve) => {
      const tick = (): void => {
        const due = Math.min(total, Math.floor(((performance.now() - start) * opts.ratePerSecond) / 1000));
        while (offered < due) {
          const n = offered++;
          rig.queue.add('deliver', rig.makeJob(n, nowMs())).catch(() => {
            rejected++;
            allDone.kick(isDone());
          });
        }
        if (offered >= total || performance.now() - start >= opts.durationMs) {
          clearInterval(timer);
          resolve();
        }
      };
      const timer = setInterval(tick, 2);
    });
    offering = false;
    allDone.kick(isDone());
    const drained = await allDone.promise;
    const elapsedMs = performance.now() - start;
    await worker.close();

    const rx = await fetchReceiverStats(opts.receiverUrl);
    return {
      offeredRate: opts.ratePerSecond,
      offered,
      rejected,
      delivered,
      achievedRate: (delivered / elapsedMs) * 1000,
      p50: rx.latencyMs.p50,
      p95: rx.latencyMs.p95,
      p99: rx.latencyMs.p99,
      latencyMs: rx.latencyMs,
      duplicates: rx.duplicates,
      drained,
      elapsedMs,
    };
  } finally {
    await rig.close();
  }
}
