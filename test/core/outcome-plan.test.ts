/**
 * Recording a batch of outcomes must cost in proportion to the batch, whatever statistics the planner
 * holds. An ANALYZE taken while nothing was in flight (an idle queue, which is when autovacuum
 * usually gets to it) made the planner expect one in-flight row, and it joined the batch with a nested
 * loop that read the whole batch again for every row: quadratic, seconds for a batch of 1,000, long
 * enough for leases to run out and deliveries to be sent again. The test reads the plan Postgres
 * actually ran (auto_explain, sent to this session as a notice).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { BACKEND, DATABASE_URL, createEndpoint, startCarteiro } from '../support/carteiro.ts';
import { claimDueDispatches, type ClaimedDispatch } from '../../src/ledger/claims.ts';
import { recordOutcomes, type OutcomeRecord } from '../../src/ledger/outcomes.ts';
import { recordSubject } from '../../src/worker/outcome-records.ts';

type PlanNode = { 'Node Type': string; 'Actual Loops'?: number; 'Rows Removed by Join Filter'?: number; Plans?: PlanNode[]; [k: string]: unknown };
type LoggedPlan = { 'Query Text': string; Plan: PlanNode };

function nodesOf(node: PlanNode): PlanNode[] {
  return [node, ...(node.Plans ?? []).flatMap(nodesOf)];
}

function delivered(d: ClaimedDispatch): OutcomeRecord {
  return {
    ...recordSubject(d),
    attempted: true,
    success: true,
    statusCode: 200,
    responseBody: 'ok',
    responseSealed: false,
    durationMs: 3,
    error: null,
    nextStatus: 'succeeded',
    nextAttemptAt: null,
    disableEndpointReason: null,
  };
}

describe('recording a batch of outcomes', { skip: BACKEND !== 'postgres' && 'reads the plan through auto_explain, which PGlite does not have' }, () => {
  test('after an ANALYZE of an idle queue, the batch is read once, not once per row', async (t) => {
    const BATCH = 300;
    // The API alone: the dispatches stay pending until this test claims them.
    const c = await startCarteiro({ role: 'api' });
    t.after(() => c.stop());
    // Three endpoints, so the batch also updates several endpoints' counters and events with several dispatches.
    for (const i of [1, 2, 3]) await createEndpoint(c, { url: `http://127.0.0.1:9/never-${i}`, events: ['agent.created'] });
    const events = Array.from({ length: BATCH / 3 }, (_, i) => ({ event_type: 'agent.created', data: { agent_id: `plan-${i}` } }));
    assert.equal((await c.request('POST', 'events/batch', { events })).status, 202);

    const plans: LoggedPlan[] = [];
    const sql = postgres(DATABASE_URL as string, {
      max: 1,
      connection: { search_path: c.env.CARTEIRO_SCHEMA as string },
      transform: { undefined: null },
      onnotice: (n) => {
        const text = String(n.message ?? '');
        const json = text.indexOf('{');
        if (text.startsWith('duration:') && json >= 0) plans.push(JSON.parse(text.slice(json)) as LoggedPlan);
      },
    });
    t.after(() => sql.end({ timeout: 5 }));

    // Statistics that say no dispatch is in flight, as after an autovacuum of an idle queue.
    await sql`ANALYZE webhook_dispatches`;
    await sql`LOAD 'auto_explain'`;
    await sql`SET auto_explain.log_min_duration = 0`;
    await sql`SET auto_explain.log_analyze = on`;
    await sql`SET auto_explain.log_timing = off`;
    await sql`SET auto_explain.log_format = json`;
    await sql`SET auto_explain.log_level = notice`;
    // postgres.js prepares every statement, and after five runs Postgres may keep a generic plan,
    // made without the batch's values: that is the plan that has to hold up.
    await sql`SET plan_cache_mode = force_generic_plan`;

    const claimed = await claimDueDispatches(sql, 'w-plan-test', 500, 60_000, { defaultMaxInFlight: 1000, startInFlight: 1000, slowLaneAfterFailures: 0 });
    assert.equal(claimed.length, BATCH);
    await recordOutcomes(sql, 'w-plan-test', claimed.map(delivered));

    const [row] = await sql<{ succeeded: number; attempts: number }[]>`
      SELECT (SELECT count(*) FROM webhook_dispatches WHERE status = 'succeeded')::int AS succeeded,
             (SELECT count(*) FROM webhook_deliveries)::int AS attempts`;
    assert.deepEqual(row, { succeeded: BATCH, attempts: BATCH });

    const write = plans.find((p) => p['Query Text'].includes('INSERT INTO webhook_deliveries'));
    assert.ok(write, `the outcome statement's plan was logged (${plans.length} plans seen)`);
    // Every statement of the claim and of the outcome transaction, not only the one that regressed.
    for (const plan of plans) {
      const statement = plan['Query Text'].trim().replace(/\s+/g, ' ').slice(0, 60);
      const nodes = nodesOf(plan.Plan);
      const rescanned = nodes.filter((n) => n['Node Type'] === 'Function Scan' && (n['Actual Loops'] ?? 0) > 1);
      assert.deepEqual(
        rescanned.map((n) => `${n['Alias'] as string} read ${n['Actual Loops']} times`),
        [],
        `${statement}: each array of the batch is read once`,
      );
      const filtered = nodes.reduce((sum, n) => sum + (n['Rows Removed by Join Filter'] ?? 0), 0);
      assert.equal(filtered, 0, `${statement}: no pairs of rows compared and thrown away`);
    }
  });
});
