import postgres from 'postgres';
import { claimStatement } from '/work/main/src/ledger/claims.ts';
const sql = postgres('postgres://postgres@127.0.0.1:5432/carteiro_fan', { connection: { search_path: 'webhooks' }, max: 1, onnotice: () => {} });
const eps = await sql<{ id: string }[]>`SELECT id FROM webhook_endpoints ORDER BY name`;
const noisy = eps.slice(1).map((e) => e.id);
const bounds = { defaultMaxInFlight: 256, startInFlight: 1, slowLaneAfterFailures: 3 };
async function timeIt(label: string, view: { endpointIds: string[]; inFlight: number[]; limits: number[] }, n = 30) {
  const ts: number[] = [];
  for (let i = 0; i < n; i++) {
    await sql.begin(async (tx) => {
      await tx`SET LOCAL plan_cache_mode = force_custom_plan`;
      const t = performance.now();
      await claimStatement(tx, 'explain', 64, 60_000, bounds, view, { batching: false }).execute();
      ts.push(performance.now() - t);
      throw new Error('rollback');
    }).catch(() => {});
  }
  ts.sort((a, b) => a - b);
  console.log(label, 'p50', ts[n >> 1]!.toFixed(2), 'min', ts[0]!.toFixed(2));
}
await timeIt('view 200 busy', { endpointIds: noisy, inFlight: noisy.map(() => 8), limits: noisy.map(() => 8) });
await timeIt('empty view', { endpointIds: [], inFlight: [], limits: [] });
await sql.end();
