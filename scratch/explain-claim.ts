import postgres from 'postgres';
import { claimStatement } from '/work/main/src/ledger/claims.ts';
const sql = postgres('postgres://postgres@127.0.0.1:5432/carteiro_fan', { connection: { search_path: 'webhooks' }, max: 1, onnotice: () => {} });
const eps = await sql<{ id: string }[]>`SELECT id FROM webhook_endpoints ORDER BY name`;
// 200 noisy endpoints with 8 in flight each (their limit), one healthy with nothing in flight
const noisy = eps.slice(1).map((e) => e.id);
const view = { endpointIds: noisy, inFlight: noisy.map(() => 8), limits: noisy.map(() => 8) };
const bounds = { defaultMaxInFlight: 256, startInFlight: 1, slowLaneAfterFailures: 3 };
for (let i = 0; i < 3; i++) {
  await sql.begin(async (tx) => {
    await tx`SET LOCAL plan_cache_mode = force_custom_plan`;
    const t = performance.now();
    const rows = await tx`EXPLAIN (ANALYZE, BUFFERS) ${claimStatement(tx, 'explain', 64, 60_000, bounds, view, { batching: false })}`;
    if (i === 2) console.log(rows.map((r) => r['QUERY PLAN']).join('\n'));
    console.log('ms', (performance.now() - t).toFixed(1));
    throw new Error('rollback');
  }).catch(() => {});
}
await sql.end();
