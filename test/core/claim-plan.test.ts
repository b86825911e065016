/**
 * A claim costs in proportion to what it claims, not to the backlog, whatever statistics the planner
 * has: here a large backlog in a schema never analysed (as on a fresh install, or a sudden backlog
 * before autovacuum's first ANALYZE), with not-yet-due high-priority retries in front of the due
 * normal work. The plan the claim ran must read only rows it may take: no sort over the due set, and
 * no scan that steps over the waiting retries.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createEndpoint, startCarteiro } from '../support/carteiro.ts';
import { claimDueDispatches, claimStatement } from '../../src/ledger/claims.ts';

type PlanNode = { 'Node Type': string; 'Relation Name'?: string; 'Actual Rows'?: number; 'Actual Loops'?: number; Plans?: PlanNode[] };
const nodesOf = (node: PlanNode): PlanNode[] => [node, ...(node.Plans ?? []).flatMap(nodesOf)];

describe('claiming from a large backlog', () => {
  test('on a never-analysed ledger the claim reads O(batch) rows: no sort over the due set, retries not yet due never stepped over', async (t) => {
    const c = await startCarteiro({ role: 'api' });
    t.after(() => c.stop());
    const sql = c.services.ledger.sql;
    const ep = await createEndpoint(c, { url: 'http://127.0.0.1:9/never', events: ['agent.created'] });
    // No ANALYZE behind the test's back: the planner keeps its fresh-table guesses.
    await sql`ALTER TABLE webhook_dispatches SET (autovacuum_enabled = false)`;
    await sql`ALTER TABLE webhook_events SET (autovacuum_enabled = false)`;
    const org = (await c.request('GET', `endpoints/${ep.id}`)).body.organization_id;
    // 20,000 due normal-priority deliveries, and in front of them in (priority, due) order 5,000
    // high-priority retries due in an hour. Events are inserted in the ledger, fan-out makes the rows.
    await sql`
      INSERT INTO webhook_events (organization_id, event_type, event_source, data, priority, data_sealed)
      SELECT ${org}::uuid, 'agent.created', 'api', jsonb_build_object('agent_id', 'b-' || i), 0, false FROM generate_series(1, 20000) i`;
    await sql`
      INSERT INTO webhook_events (organization_id, event_type, event_source, data, priority, data_sealed)
      SELECT ${org}::uuid, 'agent.created', 'api', jsonb_build_object('agent_id', 'r-' || i), 1, false FROM generate_series(1, 5000) i`;
    await sql`UPDATE webhook_dispatches SET next_attempt_at = now() + interval '1 hour', attempts = 1 WHERE priority = 1`;
    const [due] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_dispatches WHERE status = 'pending' AND next_attempt_at <= now()`;
    assert.equal(due!.n, 20_000);

    const LIMIT = 100;
    const bounds = { defaultMaxInFlight: 1000, startInFlight: 1000, slowLaneAfterFailures: 0 };
    const [row] = await sql<{ 'QUERY PLAN': [{ Plan: PlanNode }] }[]>`EXPLAIN (ANALYZE, FORMAT JSON) ${claimStatement(sql, 'w-plan', LIMIT, 60_000, bounds)}`;
    const nodes = nodesOf(row!['QUERY PLAN'][0].Plan);
    const top = nodes[0]!;
    assert.equal(top['Actual Rows'], LIMIT, 'the claim took a full batch');

    const sorts = nodes.filter((n) => n['Node Type'] === 'Sort' || n['Node Type'] === 'Incremental Sort');
    for (const s of sorts) assert.ok((s['Actual Rows'] ?? 0) <= 2 * LIMIT, `a sort over ${s['Actual Rows']} rows`);
    const readFromDispatches = nodes
      .filter((n) => n['Relation Name'] === 'webhook_dispatches')
      .reduce((sum, n) => sum + (n['Actual Rows'] ?? 0) * (n['Actual Loops'] ?? 1), 0);
    // Each claimed row is met a few times (found by the range scan, locked, updated, returned): a
    // constant factor of the batch. The walk of one global due order read the 5,000 retries, or the
    // whole due set for a sort, on top.
    assert.ok(readFromDispatches <= 6 * LIMIT, `the claim read ${readFromDispatches} dispatch rows for a batch of ${LIMIT}`);
  });
});

describe('a claim with less room than endpoints with due work', () => {
  test('takes the endpoints with the least in flight in this worker first', async (t) => {
    const c = await startCarteiro({ role: 'api' });
    t.after(() => c.stop());
    const sql = c.services.ledger.sql;
    // Ten endpoints of one organization, each with due work; this worker has requests in flight to
    // nine of them. A claim of one row must take the tenth, whatever random() says: repeated, so a
    // coin toss among the ten would show.
    const eps = [];
    for (let i = 0; i < 10; i++) eps.push(await createEndpoint(c, { url: `http://127.0.0.1:9/ep-${i}`, events: ['agent.created'] }));
    const quiet = eps[9]!;
    const bounds = { defaultMaxInFlight: 1000, startInFlight: 1000, slowLaneAfterFailures: 0 };
    const view = { endpointIds: eps.slice(0, 9).map((e) => e.id), inFlight: eps.slice(0, 9).map(() => 5), limits: eps.slice(0, 9).map(() => 1000) };
    for (let round = 0; round < 10; round++) {
      const res = await c.request('POST', 'trigger', { event_type: 'agent.created', data: { agent_id: `turn-${round}` } });
      assert.equal(res.status, 202, JSON.stringify(res.body));
      const claimed = await claimDueDispatches(sql, 'w-turns', 1, 60_000, bounds, view);
      assert.deepEqual(
        claimed.map((d) => d.webhook_endpoint_id),
        [quiet.id],
        `round ${round}`,
      );
      // The others' rows stay due, so every round has ten endpoints to choose from.
    }
  });
});
