/**
 * The promise of table capture: a committed row always yields a delivered, signed webhook; a
 * rolled-back row never yields anything. The event is written by the trigger in the row's own
 * transaction, the fan-out trigger adds its dispatch, and the commit's NOTIFY wakes the worker.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import postgres from 'postgres';
import { BACKEND, DATABASE_URL, startCarteiro, createEndpoint, eventually, settled, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithSeed, verifiesWithStandardWebhooks, type TestReceiver } from '../support/receiver.ts';
import { installSeedTriggers } from '../../src/ledger/table-capture.ts';
import { appSchemaName, capturedEvents, createSeedTables, dropAppSchema } from './app-tables.ts';

const POLL_INTERVAL_MS = 60_000;

describe('table capture → delivery', () => {
  let c: TestCarteiro;
  let receiver: TestReceiver;
  let secret: string;
  const app = appSchemaName();

  before(async () => {
    // A poll too slow to matter: every delivery here must be woken by the commit's NOTIFY (on
    // Postgres through the LISTEN connection, embedded through the pool's onnotify).
    c = await startCarteiro({ env: { CARTEIRO_POLL_INTERVAL_MS: String(POLL_INTERVAL_MS) } });
    receiver = await startReceiver();
    secret = (await createEndpoint(c, { url: `${receiver.url}/hook`, events: ['user.registered'] })).secret;
    await createSeedTables(c.services.ledger.sql, app);
    await installSeedTriggers(c.services.ledger.sql, { schema: app });
  });
  after(async () => {
    await dropAppSchema(c.services.ledger.sql, app);
    await c.stop();
    await receiver.close();
  });

  test('a committed user row arrives as a signed user.registered webhook', async () => {
    const sql = c.services.ledger.sql;
    const started = Date.now();
    const [user] = await sql<{ id: string }[]>`
      INSERT INTO ${sql(app)}.users (email, name) VALUES ('joao@example.com', 'João Silva') RETURNING id`;
    const [hit] = await receiver.waitFor(1);
    assert.ok(hit);
    const body = JSON.parse(hit.body);
    assert.equal(body.type, 'user.registered');
    assert.deepEqual(body.data, { user_id: user?.id, email: 'joao@example.com', name: 'João Silva' });
    assert.ok(verifiesWithSeed(secret, hit), 'seed signature verifies');
    assert.ok(verifiesWithStandardWebhooks(secret, hit), 'Standard Webhooks signature verifies');
    assert.ok(hit.at - started < 5000, `delivered ${hit.at - started} ms after the insert, long before any poll`);

    const [event] = await capturedEvents(sql, { table: 'users' });
    assert.equal(event?.event_source, 'supabase');
    assert.equal(event?.record_id, user?.id);
    assert.equal(event?.user_id, user?.id);
    assert.equal(body.id, event?.id);
  });

  test('a rolled-back user row never yields an event or a webhook', async () => {
    const sql = c.services.ledger.sql;
    const before = receiver.received.length;
    await assert.rejects(
      sql.begin(async (tx) => {
        await tx.unsafe(`INSERT INTO "${app}".users (email, name) VALUES ('rollback@example.com', 'Nunca')`);
        throw new Error('roll back');
      }),
      /roll back/,
    );
    // Nothing may show up, ever: once nothing is left to send, nothing more was sent.
    await settled(c);
    assert.equal(receiver.received.length, before);
    const events = await capturedEvents(sql, { table: 'users' });
    assert.equal(events.filter((e) => e.data.email === 'rollback@example.com').length, 0);
  });

  test('1,000 rows inserted in one transaction make exactly 1,000 events, all delivered', { timeout: 120_000 }, async () => {
    const sql = c.services.ledger.sql;
    const before = receiver.received.length;
    const eventsBefore = (await capturedEvents(sql, { table: 'users' })).length;
    const t0 = Date.now();
    await sql.begin(async (tx) => {
      await tx.unsafe(`INSERT INTO "${app}".users (email, name) SELECT 'bulk' || g || '@example.com', 'Bulk ' || g FROM generate_series(1, 1000) g`);
    });
    const insertMs = Date.now() - t0;

    const events = (await capturedEvents(sql, { table: 'users' })).slice(eventsBefore);
    assert.equal(events.length, 1000);
    assert.equal(new Set(events.map((e) => e.record_id)).size, 1000);

    await receiver.waitFor(before + 1000, 60_000);
    const delivered = new Set(receiver.received.slice(before).map((r) => r.headers['webhook-id']));
    assert.equal(delivered.size, 1000);
    for (const e of events) assert.ok(delivered.has(e.id), `event ${e.id} delivered`);
    await eventually(
      async () => {
        const [row] = await sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM webhook_dispatches d JOIN webhook_events e ON e.id = d.webhook_event_id
        WHERE e.table_name = 'users' AND d.status = 'succeeded'`;
        return row?.n === eventsBefore + 1000;
      },
      { what: 'every dispatch recorded as succeeded' },
    );
    console.log(`# 1,000-row insert with capture: ${insertMs} ms; all delivered ${Date.now() - t0} ms after the insert began`);
  });
});

describe('table capture while another commit is the one notifying', {
  skip: BACKEND !== 'postgres' && 'PGlite has one session: no concurrent notifier',
}, () => {
  // Migration 0009: one transaction at a time notifies (the holder of a transaction-scoped advisory
  // lock); the others commit without queueing for Postgres's notify lock, and a worker picks their
  // rows up at its next wake-up or fallback poll.
  test('a row committed without a NOTIFY (another notifier in flight) is still delivered, at the poll', async () => {
    const c = await startCarteiro({ env: { CARTEIRO_POLL_INTERVAL_MS: '300' } });
    const receiver = await startReceiver();
    const app = appSchemaName();
    const holder = postgres(DATABASE_URL as string, { max: 2, onnotice: () => {} });
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    try {
      const schema = c.env.CARTEIRO_SCHEMA as string;
      await createEndpoint(c, { url: `${receiver.url}/hook`, events: ['user.registered'] });
      await createSeedTables(c.services.ledger.sql, app);
      await installSeedTriggers(c.services.ledger.sql, { schema: app });

      const notifications: string[] = [];
      await holder.listen(`${schema}_dispatch`, (payload) => notifications.push(payload));
      // As a long transaction that notified would: it holds the notifier's lock until it ends.
      let locked!: () => void;
      const isLocked = new Promise<void>((r) => (locked = r));
      const holding = holder.begin(async (tx) => {
        await tx`SELECT pg_advisory_xact_lock(hashtext('carteiro.dispatch_notify'), hashtext(${schema}))`;
        locked();
        await released;
      });
      await isLocked;

      const sql = c.services.ledger.sql;
      const started = Date.now();
      await sql.unsafe(`INSERT INTO "${app}".users (email, name) VALUES ('quiet@example.com', 'Sem Aviso')`);
      const [hit] = await receiver.waitFor(1);
      assert.equal(JSON.parse(hit?.body ?? '{}').data?.email, 'quiet@example.com');
      assert.ok((hit?.at ?? Infinity) - started < 30_000); // by a poll (300 ms), not held until the lock is released
      assert.deepEqual(notifications, [], 'the commit skipped its NOTIFY: the poll delivered it');

      release();
      await holding;
      // With the lock free again, a commit notifies (and is delivered long before a slow poll would).
      await sql.unsafe(`INSERT INTO "${app}".users (email, name) VALUES ('loud@example.com', 'Com Aviso')`);
      await eventually(() => notifications.length > 0, { what: 'a NOTIFY from the uncontended commit' });
      await receiver.waitFor(2);
    } finally {
      release();
      await holder.end({ timeout: 5 });
      await dropAppSchema(c.services.ledger.sql, app);
      await c.stop();
      await receiver.close();
    }
  });
});
