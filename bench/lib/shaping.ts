// What shaping costs, measured directly (the shaping section's second half; the first is four drains
// through real Carteiro processes, bench/lib/drain.ts):
//
//   filterEvaluation   a content filter as fan-out applies it: jsonb_path_match over the event's data
//                      with the compiled jsonpath and its variables (src/catalog/content-filter.ts), in
//                      Postgres, on a temporary table of bench events; the count with the predicate
//                      minus the count without, per row
//   transformationCall one transformation run as the worker makes it (src/delivery/transformation/): the
//                      transformer with the service's default limits and one sandbox thread, in this
//                      process; one run awaited alone, and many in flight (wall and CPU per run)
import postgres from 'postgres';
import { compileContentFilter } from '../../src/catalog/content-filter.ts';
import { loadConfig } from '../../src/config/config.ts';
import { createTransformer } from '../../src/delivery/transformation/transformer.ts';
import { makeData } from './envelope.ts';

export type FilterEvaluation = { rows: number; matched: number; withMs: number; withoutMs: number; usPerEvaluation: number };

/** µs per evaluation of `filter` over `rows` bench events of `payloadBytes`: best of `repeats` timings each. */
export async function filterEvaluation(
  databaseUrl: string,
  filter: Record<string, unknown>,
  o: { rows: number; payloadBytes: number; repeats: number },
): Promise<FilterEvaluation> {
  const compiled = compileContentFilter(filter, new Set());
  const sql = postgres(databaseUrl, { max: 1, onnotice: () => {} });
  try {
    const data = makeData(o.payloadBytes);
    return await sql.begin(async (tx) => {
      await tx`CREATE TEMP TABLE shaping_events ON COMMIT DROP AS
               SELECT jsonb_build_object('sent_at_ms', ${data.sent_at_ms}::float8, 'pad', ${data.pad}::text, 'seq', g) AS data
               FROM generate_series(0, ${o.rows - 1}) g`;
      await tx`ANALYZE shaping_events`;
      let withMs = Infinity;
      let withoutMs = Infinity;
      let matched = 0;
      for (let i = 0; i < o.repeats; i++) {
        let t = performance.now();
        // count(data) reads every row's data, as the filter does; only the predicate differs.
        await tx`SELECT count(data) FROM shaping_events`;
        withoutMs = Math.min(withoutMs, performance.now() - t);
        t = performance.now();
        const [row] = await tx<{ n: number }[]>`
          SELECT count(data)::int AS n FROM shaping_events
          WHERE jsonb_path_match(data, ${compiled.jsonpath}::jsonpath, ${tx.json(compiled.vars as never)}, true)`;
        withMs = Math.min(withMs, performance.now() - t);
        matched = row?.n ?? 0;
      }
      return { rows: o.rows, matched, withMs, withoutMs, usPerEvaluation: (Math.max(0, withMs - withoutMs) * 1000) / o.rows };
    });
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export type TransformationCall = { runs: number; aloneUs: number; inFlightWallUs: number; inFlightCpuUs: number };

/** One transformation's cost per run, as the worker calls it: awaited alone, and `runs` in flight at once. */
export async function transformationCall(source: string, o: { runs: number; payloadBytes: number }): Promise<TransformationCall> {
  const config = loadConfig({ ...process.env, DATABASE_URL: process.env.DATABASE_URL ?? 'postgres://unused' });
  const transformer = createTransformer({ ...config.transformations, threads: 1, maxWaitMs: 60_000 });
  const event = {
    id: '0190c3a4-5b6e-7c8d-9e0f-112233445566',
    type: 'bench.event',
    createdAt: new Date(),
    dataJson: JSON.stringify({ ...makeData(o.payloadBytes), seq: 1 }),
  };
  const url = 'http://127.0.0.1:9/e1';
  const run = async (key: string) => {
    const r = await transformer.apply(key, source, event, url);
    if (r.kind !== 'send') throw new Error(`transformation: ${JSON.stringify(r).slice(0, 300)}`);
  };
  try {
    for (let i = 0; i < 100; i++) await run('warm');
    const alone = Math.max(50, Math.floor(o.runs / 4));
    let t = performance.now();
    for (let i = 0; i < alone; i++) await run('e1');
    const aloneUs = ((performance.now() - t) / alone) * 1000;
    const cpu = process.cpuUsage();
    t = performance.now();
    await Promise.all(Array.from({ length: o.runs }, () => run('e1')));
    const inFlightWallUs = ((performance.now() - t) / o.runs) * 1000;
    const used = process.cpuUsage(cpu);
    return { runs: o.runs, aloneUs, inFlightWallUs, inFlightCpuUs: (used.user + used.system) / o.runs };
  } finally {
    await transformer.close();
  }
}
