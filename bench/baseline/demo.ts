// Runnable demo of the building blocks: raw ceiling vs the seed design.
//
//   ./node_modules/.bin/node bench/baseline/demo.ts [--no-latency]
//
// Starts one receiver (own process), measures the raw ceiling, then the seed
// baseline from a backlog, then (unless --no-latency) the seed's latency at a
// fixed offered rate, and prints the figures and their ratio to the ceiling.
// Everything talks to loopback only; every phase is bounded in count and time.
import { measureCeiling } from '../lib/ceiling.ts';
import { startReceiver } from '../lib/receiver.ts';
import { runSeedBaseline, runSeedBaselineLatency } from './seed-design.ts';

const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const withLatency = !process.argv.includes('--no-latency');

const fmt = (n: number, digits = 0): string => n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

const rx = await startReceiver();
const rows: [string, string, string][] = [];
try {
  const ceiling = await measureCeiling({ url: rx.url, count: 50_000, connections: 64, durationLimitMs: 30_000 });
  const ceilingRx = await rx.stats();
  rows.push([
    'raw ceiling (undici Pool, 64 conns)',
    `${fmt(ceiling.requestsPerSecond)} req/s`,
    `p50 ${fmt(ceiling.p50, 2)} ms, p99 ${fmt(ceiling.p99, 2)} ms, ${ceiling.completed} sent${ceiling.timedOut ? ' (TIME LIMIT)' : ''}, errors ${ceiling.errors + ceiling.non2xx}`,
  ]);

  await rx.reset();
  const seed = await runSeedBaseline({
    databaseUrl: DATABASE_URL,
    redisUrl: REDIS_URL,
    receiverUrl: rx.url,
    events: 20_000,
    concurrency: 100,
    payloadBytes: 1024,
    durationLimitMs: 60_000,
  });
  const seedRx = await rx.stats();
  rows.push([
    'seed design, backlog (BullMQ c=100 + 1 INSERT/delivery)',
    `${fmt(seed.deliveriesPerSecond)} deliv/s`,
    `${seed.delivered}/${seed.events} in ${fmt(seed.elapsedMs)} ms${seed.timedOut ? ' (TIME LIMIT)' : ''}, rows ${seed.attemptRows}, ` +
      `receiver unique ${seedRx.uniqueIds} dup ${seedRx.duplicates}`,
  ]);
  rows.push(['  ratio seed / ceiling', fmt(seed.deliveriesPerSecond / ceiling.requestsPerSecond, 3), '']);

  if (withLatency) {
    const lat = await runSeedBaselineLatency({
      databaseUrl: DATABASE_URL,
      redisUrl: REDIS_URL,
      receiverUrl: rx.url,
      ratePerSecond: 1_200,
      durationMs: 10_000,
      drainTimeoutMs: 20_000,
    });
    rows.push([
      'seed design, 1,200 events/s offered',
      `p99 ${fmt(lat.p99, 1)} ms`,
      `p50 ${fmt(lat.p50, 1)} ms, p95 ${fmt(lat.p95, 1)} ms, max ${fmt(lat.latencyMs.max, 1)} ms, ` +
        `${lat.delivered}/${lat.offered} delivered${lat.drained ? '' : ' (NOT DRAINED)'}, ${fmt(lat.achievedRate)}/s`,
    ]);
  }

  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  console.log(`\n${'figure'.padEnd(w0)}  ${'value'.padStart(w1)}  detail`);
  console.log(`${'-'.repeat(w0)}  ${'-'.repeat(w1)}  ------`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
  console.log(
    `\nceiling receiver check: ${ceilingRx.acknowledged} acked (incl. warm-up), ${ceilingRx.duplicates} duplicates, ` +
      `send→receive p50 ${fmt(ceilingRx.latencyMs.p50, 2)} ms`,
  );
} finally {
  await rx.stop();
}
