/**
 * The attempt log partitioned by day (migration 0006): attempts land in their day's partition,
 * partitions are created ahead (idempotently), a row no partition covers still inserts (default
 * partition) and is moved out when its day is created, retention drops whole expired partitions while
 * keeping the attempts of events it keeps, erasure reaches every partition, and an install that
 * already has attempt rows is migrated in place (the old table attached, not copied).
 * Runs on Postgres with DATABASE_URL, on embedded PGlite otherwise; rows are back-dated in SQL.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import { BACKEND, startCarteiro, createEndpoint, trigger, eventually, testEnv, uniqueSchema, dropSchema, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { loadConfig } from '../../src/config/config.ts';
import { openLedger, type Sql } from '../../src/ledger/connection.ts';
import { listMigrations, migrate } from '../../src/ledger/migrate.ts';
import {
  ATTEMPT_PARTITION_DAYS_AHEAD,
  dropExpiredAttemptPartitions,
  ensureAttemptPartitions,
  listAttemptPartitions,
} from '../../src/ledger/attempt-partitions.ts';

const DAY_MS = 24 * 3600 * 1000;
const ORG = '00000000-0000-7000-8000-000000000000';

const utcDay = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
const partitionName = (d: Date) => `webhook_deliveries_p${d.toISOString().slice(0, 10).replaceAll('-', '')}`;
const daysFromNow = (n: number) => new Date(Date.now() + n * DAY_MS);

async function insertAttempt(sql: Sql, eventId: string, createdAt: Date | null, body = 'x'): Promise<string> {
  const [row] = await sql<{ id: string }[]>`
    INSERT INTO webhook_deliveries (organization_id, webhook_event_id, attempt_number, success, response_body, delivery_duration_ms, created_at)
    VALUES (${ORG}, ${eventId}, 1, true, ${body}, 5, coalesce(${createdAt}::timestamptz, now()))
    RETURNING id`;
  return row!.id;
}

/** The partition each attempt row sits in. */
async function partitionsOf(sql: Sql, ids: string[]): Promise<Map<string, string>> {
  const rows = await sql<{ id: string; part: string }[]>`
    SELECT id, tableoid::regclass::text AS part FROM webhook_deliveries WHERE id = ANY(${ids}::uuid[])`;
  return new Map(rows.map((r) => [r.id, r.part.replace(/^.*\./, '').replaceAll('"', '')]));
}

async function deliveredEvents(c: TestCarteiro, n: number, extra: Record<string, unknown> = {}): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push(await trigger(c, { event_type: 'agent.created', data: { agent_id: `a${i}` }, ...extra }));
  await eventually(
    async () => {
      const [r] = await c.services.ledger.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM webhook_events e WHERE id = ANY(${ids}::uuid[]) AND status = 'completed'
        AND EXISTS (SELECT 1 FROM webhook_deliveries a WHERE a.webhook_event_id = e.id)`;
      return r!.n === n;
    },
    { what: `${n} events delivered` },
  );
  return ids;
}

describe('attempt partitions', () => {
  let c: TestCarteiro;
  let receiver: TestReceiver;
  let sql: Sql;
  before(async () => {
    c = await startCarteiro();
    sql = c.services.ledger.sql;
    receiver = await startReceiver();
    await createEndpoint(c, { url: receiver.url, events: ['agent.*'] });
  });
  after(async () => {
    await c?.stop();
    await receiver?.close();
  });

  test('the attempt log is range-partitioned by day with a default partition, and attempts land in their day', async () => {
    const [shape] = await sql<{ relkind: string; strategy: string; key: string; pk: string }[]>`
      SELECT c.relkind::text, p.partstrat::text AS strategy, pg_get_partkeydef(c.oid) AS key,
             (SELECT pg_get_constraintdef(k.oid) FROM pg_constraint k WHERE k.conrelid = c.oid AND k.contype = 'p') AS pk
      FROM pg_class c JOIN pg_partitioned_table p ON p.partrelid = c.oid WHERE c.oid = 'webhook_deliveries'::regclass`;
    assert.deepEqual({ ...shape }, { relkind: 'p', strategy: 'r', key: 'RANGE (created_at)', pk: 'PRIMARY KEY (id, created_at)' });

    // A new install: no legacy partition, today and the days ahead, and the default.
    const parts = await listAttemptPartitions(sql);
    const today = utcDay(new Date());
    const expected = Array.from({ length: ATTEMPT_PARTITION_DAYS_AHEAD + 1 }, (_, i) => partitionName(new Date(today.getTime() + i * DAY_MS)));
    assert.deepEqual(
      parts.filter((p) => !p.isDefault).map((p) => p.name),
      expected,
    );
    assert.deepEqual(
      parts.filter((p) => p.isDefault).map((p) => p.name),
      ['webhook_deliveries_default'],
    );
    for (const p of parts.filter((p) => !p.isDefault)) {
      assert.equal(p.rangeStart!.getTime() % DAY_MS, 0, `${p.name} starts at a UTC midnight`);
      assert.equal(p.rangeEnd!.getTime() - p.rangeStart!.getTime(), DAY_MS, `${p.name} is one day`);
    }
    // Every partition keeps row level security on (no policy: other roles go through the parent).
    const noRls = await sql<{ relname: string }[]>`
      SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
      WHERE i.inhparent = 'webhook_deliveries'::regclass AND NOT c.relrowsecurity`;
    assert.deepEqual(
      noRls.map((x) => x.relname),
      [],
    );

    // Attempts the worker records (recordOutcomes) sit in the partition of their created_at's UTC day.
    const events = await deliveredEvents(c, 3);
    const rows = await sql<{ id: string; created_at: Date; part: string }[]>`
      SELECT id, created_at, tableoid::regclass::text AS part FROM webhook_deliveries WHERE webhook_event_id = ANY(${events}::uuid[])`;
    assert.equal(rows.length, 3);
    for (const r of rows) assert.equal(r.part.replace(/^.*\./, ''), partitionName(r.created_at));
  });

  test('maintenance creates partitions ahead, and running it again creates nothing', async () => {
    const at = daysFromNow(40);
    const created = await ensureAttemptPartitions(sql, { at, daysAhead: 2 });
    const first = utcDay(at);
    assert.deepEqual(
      created.map((p) => p.name),
      [0, 1, 2].map((i) => partitionName(new Date(first.getTime() + i * DAY_MS))),
    );
    assert.deepEqual(
      created.map((p) => [p.rangeStart.getTime(), p.rangeEnd.getTime(), p.movedRows]),
      [0, 1, 2].map((i) => [first.getTime() + i * DAY_MS, first.getTime() + (i + 1) * DAY_MS, 0]),
    );
    assert.deepEqual(await ensureAttemptPartitions(sql, { at, daysAhead: 2 }), [], 'idempotent');
    assert.deepEqual(await ensureAttemptPartitions(sql), [], 'today and the week ahead exist since start-up');
    // A new partition is routed to at once.
    const id = await insertAttempt(sql, randomUUID(), new Date(first.getTime() + DAY_MS + 3600_000));
    assert.equal((await partitionsOf(sql, [id])).get(id), partitionName(new Date(first.getTime() + DAY_MS)));
  });

  test('an attempt dated outside every partition still inserts (default partition) and moves out when its day is created', async () => {
    const far = daysFromNow(400);
    const past = daysFromNow(-400);
    const farId = await insertAttempt(sql, randomUUID(), far);
    const pastId = await insertAttempt(sql, randomUUID(), past);
    const infinityId = (
      await sql<{ id: string }[]>`
      INSERT INTO webhook_deliveries (organization_id, webhook_event_id, attempt_number, success, delivery_duration_ms, created_at)
      VALUES (${ORG}, ${randomUUID()}, 1, false, 1, 'infinity') RETURNING id`
    )[0]!.id;
    let where = await partitionsOf(sql, [farId, pastId, infinityId]);
    assert.deepEqual([where.get(farId), where.get(pastId), where.get(infinityId)], Array(3).fill('webhook_deliveries_default'));

    // Creating the far row's day moves it out of the default in the same transaction.
    const created = await ensureAttemptPartitions(sql, { at: far, daysAhead: 0 });
    assert.deepEqual(
      created.map((p) => [p.name, p.movedRows]),
      [[partitionName(far), 1]],
    );
    where = await partitionsOf(sql, [farId, pastId, infinityId]);
    assert.deepEqual(
      [where.get(farId), where.get(pastId), where.get(infinityId)],
      [partitionName(far), 'webhook_deliveries_default', 'webhook_deliveries_default'],
    );
    const [kept] = await sql<{ response_body: string; created_at: Date }[]>`SELECT response_body, created_at FROM webhook_deliveries WHERE id = ${farId}`;
    assert.equal(kept!.created_at.getTime(), far.getTime(), 'the moved row is unchanged');
  });

  test("erasure deletes a user's attempts in every partition", async () => {
    const [ana1, ana2, ana3] = (await deliveredEvents(c, 3, { user_id: 'ana-partitions' })) as [string, string, string];
    const [other] = await deliveredEvents(c, 1, { user_id: 'bob-partitions' });
    await ensureAttemptPartitions(sql, { at: daysFromNow(-10), daysAhead: 0 });
    await sql`UPDATE webhook_deliveries SET created_at = now() - interval '10 days' WHERE webhook_event_id = ${ana1}`; // an older partition
    await sql`UPDATE webhook_deliveries SET created_at = now() + interval '500 days' WHERE webhook_event_id = ${ana2}`; // the default
    await insertAttempt(sql, ana3, daysFromNow(2)); // a partition ahead
    const count = async (ids: string[]) =>
      (
        await sql<{ n: number; parts: number }[]>`
      SELECT count(*)::int AS n, count(DISTINCT tableoid)::int AS parts FROM webhook_deliveries WHERE webhook_event_id = ANY(${ids}::uuid[])`
      ).map((x) => ({ ...x }))[0]!;
    assert.deepEqual(await count([ana1, ana2, ana3]), { n: 4, parts: 4 });

    const res = await c.request('DELETE', 'users/ana-partitions/data');
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.attempts_deleted, 4);
    assert.deepEqual(await count([ana1, ana2, ana3]), { n: 0, parts: 0 });
    assert.equal((await count([other!])).n, 1, "another user's attempts stay");
  });

  test('retention drops whole expired partitions, keeps recent ones, and keeps the attempts of events it keeps', async () => {
    // A separate instance, so the counts below are this test's alone.
    const r = await startCarteiro();
    try {
      const rsql = r.services.ledger.sql;
      await createEndpoint(r, { url: receiver.url, events: ['agent.*'] });
      // Three old days, and one 29 days ago: still inside retention (30 days), so its partition stays.
      const oldCreated = await ensureAttemptPartitions(rsql, { at: daysFromNow(-45), daysAhead: 2 });
      assert.equal(oldCreated.length, 3);
      await ensureAttemptPartitions(rsql, { at: daysFromNow(-29), daysAhead: 0 });

      const [finished1, finished2, paused, recent] = (await deliveredEvents(r, 4)) as [string, string, string, string];
      const old = [finished1, finished2, paused];
      await rsql`UPDATE webhook_events SET created_at = now() - interval '44 days' WHERE id = ANY(${old}::uuid[])`;
      await rsql`UPDATE webhook_deliveries SET created_at = now() - interval '44 days' WHERE webhook_event_id = ANY(${old}::uuid[])`;
      // An old event whose delivery is still held (its endpoint disabled): retention keeps it, and its log.
      await rsql`UPDATE webhook_dispatches SET status = 'paused' WHERE webhook_event_id = ${paused}`;
      const pausedAttempt = await insertAttempt(rsql, paused, daysFromNow(-43), 'paused, second attempt');
      const orphanOld = await insertAttempt(rsql, randomUUID(), daysFromNow(-45));
      const within = await insertAttempt(rsql, randomUUID(), daysFromNow(-29));

      const byPartition = async () =>
        Object.fromEntries(
          (
            await rsql<{ part: string; n: number }[]>`
        SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM webhook_deliveries GROUP BY 1`
          ).map((x) => [x.part.replace(/^.*\./, ''), x.n]),
        );
      const before = await byPartition();
      assert.equal(before[partitionName(daysFromNow(-44))], 3, 'the three back-dated attempts');
      assert.equal(before[partitionName(daysFromNow(-43))], 1);
      assert.equal(before[partitionName(daysFromNow(-45))], 1);
      assert.equal(before[partitionName(daysFromNow(-29))], 1);
      const recentBefore = (await rsql<{ id: string }[]>`SELECT id FROM webhook_deliveries WHERE webhook_event_id = ${recent}`).map((x) => x.id);
      assert.equal(recentBefore.length, 1);

      const job = await r.services.jobs.enqueue('retention-purge', { olderThanDays: 30 });
      const state = await eventually(
        async () => {
          const s = await r.services.jobs.get(job.id);
          return s && (s.state === 'completed' || s.state === 'failed') ? s : null;
        },
        { what: 'the retention job to finish' },
      );
      assert.equal(state.error, null);
      const result = state.result as Record<string, number>;
      assert.equal(result.partitions_dropped, 3);
      assert.equal(result.partition_attempts_kept, 2, "the paused event's two attempts");
      assert.equal(result.partitions_busy, 0);
      assert.equal(result.events, 2, 'the two finished old events, by the batched purge');
      assert.equal(result.dispatches, 2);
      assert.equal(result.attempts, 0, 'their attempts went with their partition');

      const after = await byPartition();
      for (const p of oldCreated) assert.equal(after[p.name], undefined, `${p.name} dropped`);
      const names = (await listAttemptPartitions(rsql)).map((p) => p.name);
      for (const p of oldCreated) assert.ok(!names.includes(p.name), `${p.name} no longer a partition`);
      assert.ok(names.includes(partitionName(daysFromNow(-29))), 'a partition inside retention stays');
      assert.equal(after[partitionName(daysFromNow(-29))], 1);
      assert.equal(after.webhook_deliveries_default, 2, 'the kept attempts, now in the default partition');

      // Recent data untouched; the kept event, its dispatch and its whole log are still there.
      assert.deepEqual(
        (await rsql<{ id: string }[]>`SELECT id FROM webhook_deliveries WHERE webhook_event_id = ${recent}`).map((x) => x.id),
        recentBefore,
      );
      const keptLog = await rsql<{ id: string; response_body: string | null }[]>`
        SELECT id, response_body FROM webhook_deliveries WHERE webhook_event_id = ${paused} ORDER BY created_at`;
      assert.equal(keptLog.length, 2);
      assert.equal(keptLog[1]!.id, pausedAttempt);
      assert.equal(keptLog[1]!.response_body, 'paused, second attempt');
      const [events] = await rsql<{ kept: number; gone: number }[]>`
        SELECT count(*) FILTER (WHERE id = ANY(${[paused, recent]}::uuid[]))::int AS kept,
               count(*) FILTER (WHERE id = ANY(${[finished1, finished2]}::uuid[]))::int AS gone
        FROM webhook_events`;
      assert.deepEqual({ ...events }, { kept: 2, gone: 0 });
      const gone = await rsql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_event_id = ANY(${[finished1, finished2]}::uuid[]) OR id = ${orphanOld}`;
      assert.equal(gone[0]!.n, 0);
      assert.equal((await partitionsOf(rsql, [within])).size, 1);

      // Nothing left to drop; the kept attempts go once their event is finished and purged.
      const again = await dropExpiredAttemptPartitions(rsql, { cutoff: daysFromNow(-30) });
      assert.deepEqual(again, { dropped: [], busy: false });
    } finally {
      await r.stop();
    }
  });

  test('a drop that cannot get its lock gives way (inserts go on) and succeeds once the table is free', {
    skip: BACKEND !== 'postgres' && 'PGlite has one session: no concurrent lock holder',
  }, async () => {
    await ensureAttemptPartitions(sql, { at: daysFromNow(-60), daysAhead: 0 });
    const expired = partitionName(daysFromNow(-60));
    // A long reader of the attempt log holds ACCESS SHARE on it.
    const reader = await sql.reserve();
    try {
      await reader`BEGIN`;
      await reader`SELECT count(*) FROM webhook_deliveries`;
      const dropping = dropExpiredAttemptPartitions(sql, { cutoff: daysFromNow(-50), lockTimeoutMs: 300, retries: 1, retryPauseMs: 50 });
      // An insert issued while the drop waits for its lock: it waits at most the lock timeout, never fails.
      await new Promise((res) => setTimeout(res, 50));
      const started = Date.now();
      const id = await insertAttempt(sql, randomUUID(), null);
      assert.ok(Date.now() - started < 20_000); // a lock timeout or two (300 ms), not the reader's whole transaction
      assert.equal((await partitionsOf(sql, [id])).get(id), partitionName(new Date()));
      assert.deepEqual(await dropping, { dropped: [], busy: true });
      assert.ok(
        (await listAttemptPartitions(sql)).some((p) => p.name === expired),
        'left for a later run',
      );
    } finally {
      await reader`ROLLBACK`;
      reader.release();
    }
    const done = await dropExpiredAttemptPartitions(sql, { cutoff: daysFromNow(-50) });
    assert.ok(done.dropped.some((d) => d.name === expired));
    assert.equal(done.busy, false);
  });

  test('a kept event erased while its partition is being dropped does not get its attempts back', {
    skip: BACKEND !== 'postgres' && 'PGlite has one session: no concurrent lock holder',
  }, async () => {
    await ensureAttemptPartitions(sql, { at: daysFromNow(-70), daysAhead: 0 });
    const [held] = (await deliveredEvents(c, 1)) as [string];
    await sql`UPDATE webhook_dispatches SET status = 'paused' WHERE webhook_event_id = ${held}`;
    await sql`UPDATE webhook_events SET created_at = now() - interval '70 days' WHERE id = ${held}`;
    await sql`UPDATE webhook_deliveries SET created_at = now() - interval '70 days' WHERE webhook_event_id = ${held}`;
    const reader = await sql.reserve();
    let dropping: ReturnType<typeof dropExpiredAttemptPartitions> | undefined;
    try {
      await reader`BEGIN`;
      await reader`SELECT count(*) FROM webhook_deliveries`;
      // The drop copies the held event's attempts out, then waits for the parent's lock…
      dropping = dropExpiredAttemptPartitions(sql, { cutoff: daysFromNow(-65), lockTimeoutMs: 20_000, retries: 0 });
      await eventually(
        async () =>
          (
            await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%drop_expired_attempt_partitions%'`
          )[0]!.n === 1,
        { what: 'the drop to wait for its lock' },
      );
      // …meanwhile the event goes (as an erasure's delete would, before the drop holds the lock).
      await sql`DELETE FROM webhook_events WHERE id = ${held}`;
    } finally {
      await reader`ROLLBACK`;
      reader.release();
    }
    const done = await dropping!;
    assert.deepEqual(
      done.dropped.map((d) => [d.name, d.keptRows]),
      [[partitionName(daysFromNow(-70)), 0]],
    );
    const [left] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_deliveries WHERE webhook_event_id = ${held}`;
    assert.equal(left!.n, 0);
  });
});

/** Applies the migrations up to `last` exactly as migrate() would (same transaction, same bookkeeping). */
async function migrateUpTo(sql: Sql, schema: string, last: string): Promise<void> {
  await sql.begin(async (tx) => {
    await tx.unsafe(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await tx.unsafe(`SET LOCAL search_path TO "${schema}", public`);
    await tx`CREATE TABLE IF NOT EXISTS schema_migrations (
      version text PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`;
    for (const m of listMigrations().filter((m) => m.version <= last)) {
      await tx.unsafe(m.sql);
      await tx`INSERT INTO schema_migrations (version, name) VALUES (${m.version}, ${m.name})`;
    }
  });
}

describe('migrating an install that already has attempt rows', () => {
  for (const prebuilt of [false, true]) {
    test(
      prebuilt
        ? 'with the (id, created_at) index built beforehand, the migration uses it'
        : 'the old table becomes the legacy partition in place: no row copied, indexes kept, grants carried over',
      async () => {
        // A schema of its own, migrated by hand below: not a copy of the migrated template.
        const env = testEnv({ schema: uniqueSchema('legacy') });
        const ledger = await openLedger(loadConfig(env), { poolSize: 2 });
        const sql = ledger.sql;
        const role = `carteiro_reader_${randomBytes(4).toString('hex')}`;
        try {
          await migrateUpTo(sql, ledger.schema, '0005');
          const [unpartitioned] = await sql<{ relkind: string }[]>`SELECT relkind::text FROM pg_class WHERE oid = 'webhook_deliveries'::regclass`;
          assert.equal(unpartitioned!.relkind, 'r');
          // 60 days of history, one row per 6 hours, and one row dated ahead (a clock that ran fast).
          await sql`
          INSERT INTO webhook_deliveries (organization_id, webhook_event_id, attempt_number, success, response_body, delivery_duration_ms, created_at)
          SELECT ${ORG}, gen_random_uuid(), 1, g % 2 = 0, 'old ' || g, g, now() - g * interval '6 hours' FROM generate_series(0, 239) g`;
          const futureId = await insertAttempt(sql, randomUUID(), daysFromNow(3), 'ahead');
          await sql.unsafe(`CREATE ROLE ${role} NOLOGIN`);
          await sql.unsafe(`GRANT SELECT ON webhook_deliveries TO ${role}`);
          if (prebuilt) await sql`CREATE UNIQUE INDEX webhook_deliveries_id_created ON webhook_deliveries (id, created_at)`;
          const storage = async (names: string[]) =>
            Object.fromEntries(
              (
                await sql<{ relname: string; node: string }[]>`
          SELECT relname, pg_relation_filenode(oid)::text AS node FROM pg_class
          WHERE relnamespace = ${ledger.schema}::regnamespace AND relname = ANY(${names})`
              ).map((x) => [x.relname, x.node]),
            );
          const before = await storage([
            'webhook_deliveries',
            'webhook_deliveries_event',
            'webhook_deliveries_created',
            'webhook_deliveries_endpoint',
            'webhook_deliveries_id_created',
          ]);
          const rowsBefore = await sql<{ id: string; created_at: Date; response_body: string }[]>`
          SELECT id, created_at, response_body FROM webhook_deliveries ORDER BY id`;
          assert.equal(rowsBefore.length, 241);

          assert.equal((await migrate(sql, ledger.schema))[0], '0006_attempt_partitions');

          // Every row kept, as it was.
          const rowsAfter = await sql<{ id: string; created_at: Date; response_body: string }[]>`
          SELECT id, created_at, response_body FROM webhook_deliveries ORDER BY id`;
          assert.deepEqual(
            rowsAfter.map((x) => ({ ...x })),
            rowsBefore.map((x) => ({ ...x })),
          );
          // The old table and its indexes are the legacy partition's, on the same storage: nothing rewritten.
          const afterStorage = await storage([
            'webhook_deliveries_legacy',
            'webhook_deliveries_legacy_event',
            'webhook_deliveries_legacy_created',
            'webhook_deliveries_legacy_endpoint',
            'webhook_deliveries_legacy_pkey',
          ]);
          assert.equal(afterStorage.webhook_deliveries_legacy, before.webhook_deliveries);
          assert.equal(afterStorage.webhook_deliveries_legacy_event, before.webhook_deliveries_event);
          assert.equal(afterStorage.webhook_deliveries_legacy_created, before.webhook_deliveries_created);
          assert.equal(afterStorage.webhook_deliveries_legacy_endpoint, before.webhook_deliveries_endpoint);
          if (prebuilt) assert.equal(afterStorage.webhook_deliveries_legacy_pkey, before.webhook_deliveries_id_created);
          const indexParents = await sql<{ child: string; parent: string }[]>`
          SELECT ci.relname AS child, pi.relname AS parent FROM pg_inherits i
          JOIN pg_class ci ON ci.oid = i.inhrelid JOIN pg_class pi ON pi.oid = i.inhparent
          WHERE ci.relname LIKE 'webhook_deliveries_legacy_%' AND ci.relnamespace = ${ledger.schema}::regnamespace ORDER BY 1`;
          assert.deepEqual(
            indexParents.map((x) => [x.child, x.parent]),
            [
              ['webhook_deliveries_legacy_created', 'webhook_deliveries_created'],
              ['webhook_deliveries_legacy_endpoint', 'webhook_deliveries_endpoint'],
              ['webhook_deliveries_legacy_event', 'webhook_deliveries_event'],
              ['webhook_deliveries_legacy_pkey', 'webhook_deliveries_pkey'],
            ],
          );
          const tomorrow = new Date(utcDay(new Date()).getTime() + DAY_MS);
          const parts = await listAttemptPartitions(sql);
          assert.deepEqual(parts[0], { name: 'webhook_deliveries_legacy', rangeStart: null, rangeEnd: tomorrow, isDefault: false });
          // The row dated ahead was moved to its own day; the days after today have partitions.
          assert.equal((await partitionsOf(sql, [futureId])).get(futureId), partitionName(daysFromNow(3)));
          assert.deepEqual(
            parts
              .filter((p) => !p.isDefault)
              .slice(1)
              .map((p) => p.name),
            Array.from({ length: ATTEMPT_PARTITION_DAYS_AHEAD }, (_, i) => partitionName(new Date(tomorrow.getTime() + i * DAY_MS))),
          );
          // What an operator granted on the old table still holds on the new one.
          const [grant] = await sql<{ ok: boolean }[]>`SELECT has_table_privilege(${role}, 'webhook_deliveries', 'SELECT') AS ok`;
          assert.equal(grant!.ok, true);

          // Today's attempts go on into the legacy partition, tomorrow's into their own.
          const nowId = await insertAttempt(sql, randomUUID(), null);
          const tomorrowId = await insertAttempt(sql, randomUUID(), new Date(tomorrow.getTime() + 60_000));
          const where = await partitionsOf(sql, [nowId, tomorrowId]);
          assert.equal(where.get(nowId), 'webhook_deliveries_legacy');
          assert.equal(where.get(tomorrowId), partitionName(tomorrow));

          // Once its whole range is past the cutoff, the legacy partition is dropped like any day.
          const dropped = await dropExpiredAttemptPartitions(sql, { cutoff: tomorrow });
          assert.deepEqual(
            dropped.dropped.map((d) => [d.name, d.keptRows]),
            [['webhook_deliveries_legacy', 0]],
          );
          const [left] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_deliveries`;
          assert.equal(left!.n, 2, "the row dated ahead and tomorrow's");
        } finally {
          await sql.unsafe(`DROP SCHEMA IF EXISTS "${ledger.schema}" CASCADE`).catch(() => {});
          await sql.unsafe(`DROP ROLE IF EXISTS ${role}`).catch(() => {});
          await ledger.close();
          await dropSchema(env);
          if (env.CARTEIRO_DATA_DIR) rmSync(env.CARTEIRO_DATA_DIR, { recursive: true, force: true });
        }
      },
    );
  }
});
