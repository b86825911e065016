/**
 * Retention: finished events older than the cutoff go, with their dispatches and attempts, in small
 * batches; unfinished work and recent rows stay; old attempts whose event is gone are swept.
 * Rows are back-dated in SQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startCarteiro, createEndpoint, trigger, eventually, uniqueSchema, REDIS_URL, type TestCarteiro } from '../support/carteiro.ts';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { purgeExpired } from '../../src/ledger/retention.ts';

const DAY_MS = 24 * 3600 * 1000;

describe('retention purge', () => {
  let c: TestCarteiro;
  let receiver: TestReceiver;
  before(async () => {
    c = await startCarteiro();
    receiver = await startReceiver();
    await createEndpoint(c, { url: receiver.url, events: ['agent.*'] });
  });
  after(async () => {
    await c.stop();
    await receiver.close();
  });

  async function deliveredEvents(n: number): Promise<string[]> {
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push(await trigger(c, { event_type: 'agent.created', data: { agent_id: `a${i}` } }));
    await eventually(
      async () => {
        const rows = await c.services.ledger.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM webhook_events WHERE id = ANY(${ids}::uuid[]) AND status = 'completed'`;
        return rows[0]!.n === n;
      },
      { what: `${n} events delivered` },
    );
    return ids;
  }

  async function backdate(ids: string[], days: number): Promise<void> {
    const sql = c.services.ledger.sql;
    await sql`UPDATE webhook_events SET created_at = now() - ${days} * interval '1 day' WHERE id = ANY(${ids}::uuid[])`;
    await sql`UPDATE webhook_deliveries SET created_at = now() - ${days} * interval '1 day' WHERE webhook_event_id = ANY(${ids}::uuid[])`;
  }

  const count = async (table: 'webhook_events' | 'webhook_dispatches' | 'webhook_deliveries', column: string, ids: string[]) => {
    const rows = await c.services.ledger.sql<
      { n: number }[]
    >`SELECT count(*)::int AS n FROM ${c.services.ledger.sql(table)} WHERE ${c.services.ledger.sql(column)} = ANY(${ids}::uuid[])`;
    return rows[0]!.n;
  };

  test('old finished events go in batches with their dispatches and attempts; unfinished and recent ones stay', async () => {
    const sql = c.services.ledger.sql;
    const ids = await deliveredEvents(6);
    const [old1, old2, old3, old4, pausedOld, recent] = ids as [string, string, string, string, string, string];
    await backdate([old1, old2, old3, old4, pausedOld], 40);
    // An old event whose delivery is still held (its endpoint disabled): never purged.
    await sql`UPDATE webhook_dispatches SET status = 'paused' WHERE webhook_event_id = ${pausedOld}`;
    // Attempts whose event is gone: an old one (swept) and a recent one (kept).
    const orphanOld = randomUUID();
    const orphanRecent = randomUUID();
    await sql`
      INSERT INTO webhook_deliveries (organization_id, webhook_event_id, attempt_number, success, delivery_duration_ms, created_at)
      VALUES ('00000000-0000-7000-8000-000000000000', ${orphanOld}, 1, true, 5, now() - interval '40 days'),
             ('00000000-0000-7000-8000-000000000000', ${orphanRecent}, 1, true, 5, now())`;

    const progress: number[] = [];
    const counts = await purgeExpired(sql, { cutoff: new Date(Date.now() - 30 * DAY_MS), batchSize: 2, onBatch: (p) => void progress.push(p.events) });
    assert.deepEqual({ ...counts, batches: undefined }, { events: 4, dispatches: 4, attempts: 4, orphan_attempts: 1, batches: undefined });
    assert.ok(counts.batches >= 3, `small batches (${counts.batches})`);
    assert.ok(progress.length >= 3);

    const gone = [old1, old2, old3, old4];
    assert.equal(await count('webhook_events', 'id', gone), 0);
    assert.equal(await count('webhook_dispatches', 'webhook_event_id', gone), 0);
    assert.equal(await count('webhook_deliveries', 'webhook_event_id', gone), 0);
    assert.equal(await count('webhook_events', 'id', [pausedOld, recent]), 2);
    assert.equal(await count('webhook_dispatches', 'webhook_event_id', [pausedOld, recent]), 2);
    assert.equal(await count('webhook_deliveries', 'webhook_event_id', [pausedOld, recent]), 2);
    assert.equal(await count('webhook_deliveries', 'webhook_event_id', [orphanOld]), 0);
    assert.equal(await count('webhook_deliveries', 'webhook_event_id', [orphanRecent]), 1);

    const again = await purgeExpired(sql, { cutoff: new Date(Date.now() - 30 * DAY_MS), batchSize: 2 });
    assert.equal(again.events + again.attempts + again.orphan_attempts, 0, 'a second run finds nothing');
  });

  test('the retention-purge job runs the purge with the configured age and reports counts', async () => {
    const ids = await deliveredEvents(3);
    await backdate(ids.slice(0, 2), 31);
    const job = await c.services.jobs.enqueue('retention-purge', { olderThanDays: c.config.retentionDays });
    const state = await eventually(
      async () => {
        const s = await c.services.jobs.get(job.id);
        return s && (s.state === 'completed' || s.state === 'failed') ? s : null;
      },
      { what: 'the purge job to finish' },
    );
    assert.equal(state.error, null);
    const result = state.result as Record<string, number>;
    assert.equal(result.events, 2);
    assert.equal(result.attempts, 2);
    assert.equal(result.older_than_days, 30);
    assert.equal(await count('webhook_events', 'id', ids), 1);
  });
});

describe('retention schedule', () => {
  test('turning the purge off (interval 0) removes the schedule an earlier start left in Redis', {
    skip: !REDIS_URL && 'the schedule outlives processes only in Redis',
  }, async () => {
    const schema = uniqueSchema();
    const first = await startCarteiro({ schema, env: { CARTEIRO_RETENTION_INTERVAL_MINUTES: '60' } });
    const connection = new Redis(REDIS_URL as string, { maxRetriesPerRequest: null });
    const queue = new Queue('carteiro-jobs', { connection, prefix: `{${first.config.redis.prefix}:${schema}}` });
    try {
      assert.deepEqual(
        (await queue.getJobSchedulers()).map((s) => s.key),
        ['retention-purge-schedule'],
      );
      await first.stop({ keepSchema: true });
      // Before: the schedule stayed, and kept purging with the days it was created with.
      const second = await startCarteiro({ schema, env: { CARTEIRO_RETENTION_INTERVAL_MINUTES: '0' } });
      assert.deepEqual(await queue.getJobSchedulers(), []);
      await second.stop();
    } finally {
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
      connection.disconnect();
    }
  });
});
