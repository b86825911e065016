/**
 * What a capture does when something is wrong (docs/triggers.md, "When a capture fails"):
 *   1. a row the mapping cannot handle never fails the user's write: it is stored as a failed event,
 *      with the error, and never delivered;
 *   2. in a multi-row INSERT, one bad row costs only itself: the others still make their events;
 *   3. a ledger that refuses the event fails the user's write, so no committed row is without its event;
 *   4. the event's organization is the capture's, else the row's (if Carteiro has it), else the default;
 *   5. a role with no rights on Carteiro's schema can still write captured tables (SECURITY DEFINER).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { startCarteiro, createEndpoint, eventually, settled, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { captureTable, installSeedTriggers, listCaptures, uncaptureTable } from '../../src/ledger/table-capture.ts';
import { DEFAULT_ORGANIZATION_ID } from '../../src/tenancy/principal.ts';
import { appSchemaName, capturedEvents, dropAppSchema } from './app-tables.ts';

describe('capture failure rules', () => {
  let c: TestCarteiro;
  let receiver: TestReceiver;
  const app = appSchemaName();
  const sql = () => c.services.ledger.sql;

  before(async () => {
    c = await startCarteiro();
    receiver = await startReceiver();
    await createEndpoint(c, { url: `${receiver.url}/all`, events: ['*'] });
    await sql().unsafe(`CREATE SCHEMA "${app}"`);
  });
  after(async () => {
    await dropAppSchema(sql(), app);
    await c.stop();
    await receiver.close();
  });

  /** 'failed', or 'ok' for an event on its way (pending until delivered, then completed). */
  const outcome = (e: { status: string } | undefined) => (e?.status === 'failed' ? 'failed' : e ? 'ok' : 'missing');

  async function dispatchCount(eventId: string): Promise<number> {
    const [row] = await sql()<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_dispatches WHERE webhook_event_id = ${eventId}`;
    return row?.n ?? -1;
  }

  test('1. a row the mapping cannot handle is committed; its event is stored failed, with the error, and not delivered', async () => {
    // A seed messages table without conversation_id: the message event cannot be built.
    await sql().unsafe(`CREATE TABLE "${app}".messages (id serial PRIMARY KEY, content text)`);
    await installSeedTriggers(sql(), { schema: app });
    const delivered = receiver.received.length;
    await sql().unsafe(`INSERT INTO "${app}".messages (content) VALUES ('sem conversa')`);

    const [row] = await sql().unsafe(`SELECT count(*)::int AS n FROM "${app}".messages`);
    assert.equal(row?.n, 1, 'the user write is committed');
    const [event] = await capturedEvents(sql(), { table: 'messages' });
    assert.equal(event?.status, 'failed');
    assert.equal(event?.event_type, 'conversation.message.added');
    assert.match(event?.error_message ?? '', /webhook_message_added.*conversation_id/);
    assert.deepEqual(event?.data, { type: 'INSERT', schema: app, table: 'messages', record: { id: 1, content: 'sem conversa' }, old_record: null });
    // No dispatch: nothing can ever send it.
    assert.equal(await dispatchCount(event!.id), 0, 'a failed capture has no deliveries');
    assert.equal(receiver.received.slice(delivered).filter((r) => r.headers['webhook-id'] === event!.id).length, 0, 'nothing delivered');
  });

  test('1b. a user mapper that raises, and a projected column that was dropped, are failed events too', async () => {
    await sql().unsafe(`
      CREATE TABLE "${app}".orders (id serial PRIMARY KEY, total numeric, note text);
      CREATE FUNCTION "${app}".strict_mapper(op text, record jsonb, old_record jsonb) RETURNS jsonb LANGUAGE plpgsql AS $$
      BEGIN
        IF (record ->> 'total')::numeric < 0 THEN RAISE EXCEPTION 'negative total %', record ->> 'total'; END IF;
        RETURN jsonb_build_object('event_type', 'order.created', 'data', jsonb_build_object('order_id', record ->> 'id'), 'record_id', record ->> 'id');
      END $$`);
    await captureTable(sql(), {
      schema: app,
      table: 'orders',
      mapping: 'function',
      mapper: `"${app}".strict_mapper(text,jsonb,jsonb)`,
      triggerName: 'orders_mapped',
    });
    await captureTable(sql(), { schema: app, table: 'orders', eventType: 'order.noted', columns: ['id', 'note'], triggerName: 'orders_noted' });

    await sql().unsafe(`INSERT INTO "${app}".orders (total, note) VALUES (-5, 'x')`);
    let events = await capturedEvents(sql(), { table: 'orders' });
    assert.deepEqual(events.map((e) => [e.event_type, outcome(e)]).sort(), [
      ['carteiro.capture.failed', 'failed'],
      ['order.noted', 'ok'],
    ]);
    assert.match(events.find((e) => e.status === 'failed')?.error_message ?? '', /orders_mapped.*negative total -5/);

    await sql().unsafe(`ALTER TABLE "${app}".orders DROP COLUMN note`);
    await sql().unsafe(`INSERT INTO "${app}".orders (total) VALUES (10)`);
    events = (await capturedEvents(sql(), { table: 'orders' })).slice(2);
    const noted = events.find((e) => e.event_type === 'order.noted');
    assert.equal(noted?.status, 'failed');
    assert.match(noted?.error_message ?? '', /column\(s\) note are not in the row/);
    assert.equal(outcome(events.find((e) => e.event_type === 'order.created')), 'ok');
  });

  test('2. in one multi-row INSERT, a bad row becomes a failed event and the others are delivered', async () => {
    // No key constraint: a row without an id is legal here, but cannot make a conversation.created.
    await sql().unsafe(`CREATE TABLE "${app}".conversations (id text, channel text)`);
    await installSeedTriggers(sql(), { schema: app });
    const delivered = receiver.received.length;
    await sql().unsafe(`INSERT INTO "${app}".conversations (id, channel) VALUES ('c1', 'web'), (NULL, 'web'), ('c3', 'whatsapp')`);
    const events = await capturedEvents(sql(), { table: 'conversations' });
    assert.deepEqual(events.map((e) => `${e.record_id}:${outcome(e)}`).sort(), ['c1:ok', 'c3:ok', 'null:failed']);
    const conversationIds = () =>
      receiver.received
        .slice(delivered)
        .map((r) => JSON.parse(r.body))
        .filter((b) => b.type === 'conversation.created')
        .map((b) => b.data.conversation_id);
    await eventually(() => conversationIds().length >= 2, { what: 'two conversation.created deliveries' });
    // Settled: a wrong third one would have been sent by now, and only the two captured ones were routed.
    assert.equal((await settled(c, { eventIds: events.map((e) => e.id) })).attempts, 2);
    assert.deepEqual(conversationIds().sort(), ['c1', 'c3']);
  });

  test('3. when the ledger refuses the event, the user write fails and nothing is committed', async () => {
    await sql().unsafe(`CREATE TABLE "${app}".blocked (id serial PRIMARY KEY, v text)`);
    await captureTable(sql(), { schema: app, table: 'blocked', eventType: 'blocked.created' });
    await captureTable(sql(), { schema: app, table: 'blocked', eventType: 'blocked.updated', operations: ['UPDATE'] });
    // Stand-in for a ledger that cannot take the row (disk full, a broken constraint, a revoked grant).
    await sql().unsafe(`ALTER TABLE webhook_events ADD CONSTRAINT test_refuse_blocked CHECK (table_name IS DISTINCT FROM 'blocked') NOT VALID`);
    try {
      await assert.rejects(sql().unsafe(`INSERT INTO "${app}".blocked (v) VALUES ('a'), ('b')`), /test_refuse_blocked/);
      const [row] = await sql().unsafe(`SELECT count(*)::int AS n FROM "${app}".blocked`);
      assert.equal(row?.n, 0, 'the rows were not committed without their events');
    } finally {
      await sql().unsafe(`ALTER TABLE webhook_events DROP CONSTRAINT test_refuse_blocked`);
    }
    await sql().unsafe(`INSERT INTO "${app}".blocked (v) VALUES ('a')`);
    await sql().unsafe(`ALTER TABLE webhook_events ADD CONSTRAINT test_refuse_blocked CHECK (table_name IS DISTINCT FROM 'blocked') NOT VALID`);
    try {
      await assert.rejects(sql().unsafe(`UPDATE "${app}".blocked SET v = 'b'`), /test_refuse_blocked/);
      const [row] = await sql().unsafe(`SELECT v FROM "${app}".blocked`);
      assert.equal(row?.v, 'a', 'the update was rolled back');
    } finally {
      await sql().unsafe(`ALTER TABLE webhook_events DROP CONSTRAINT test_refuse_blocked`);
    }
  });

  test('4. organization: the capture’s, else the row’s organization_id if Carteiro has it, else the default', async () => {
    const known = randomUUID();
    await sql()`INSERT INTO organizations (id, name) VALUES (${known}, 'tenant')`;
    await sql().unsafe(`CREATE TABLE "${app}".tickets (id serial PRIMARY KEY, organization_id uuid, title text)`);
    await captureTable(sql(), { schema: app, table: 'tickets', eventType: 'ticket.created', triggerName: 'by_row' });
    const unknown = randomUUID();
    await sql().unsafe(`INSERT INTO "${app}".tickets (organization_id, title) VALUES ('${known}', 'mine'), (NULL, 'nobody'), ('${unknown}', 'stranger')`);
    const events = await capturedEvents(sql(), { table: 'tickets' });
    assert.deepEqual(
      // A failed event keeps the row as Supabase would send it: {type, schema, table, record, old_record}.
      events.map((e) => [e.data.title ?? e.data.record?.title, e.organization_id, outcome(e)]).sort(),
      [
        ['mine', known, 'ok'],
        ['nobody', DEFAULT_ORGANIZATION_ID, 'ok'],
        ['stranger', DEFAULT_ORGANIZATION_ID, 'failed'],
      ],
    );
    assert.match(events.find((e) => e.status === 'failed')?.error_message ?? '', /not a Carteiro organization/);

    // A fixed organization wins over the row's column.
    await captureTable(sql(), { schema: app, table: 'tickets', eventType: 'ticket.created', triggerName: 'by_row', organizationId: known });
    await sql().unsafe(`INSERT INTO "${app}".tickets (organization_id, title) VALUES ('${unknown}', 'fixed')`);
    const [last] = (await capturedEvents(sql(), { table: 'tickets' })).slice(-1);
    assert.deepEqual([last?.data.title, last?.organization_id, outcome(last)], ['fixed', known, 'ok']);
  });

  test('6. a user id too long for the ledger fails its event, not the write; a failed event keeps only the configured columns', async () => {
    await sql().unsafe(`CREATE TABLE "${app}".profiles (id serial PRIMARY KEY, user_id text, name text, ssn text)`);
    await captureTable(sql(), { schema: app, table: 'profiles', eventType: 'profile.created', columns: ['id', 'user_id', 'name'] });
    // Random, so Postgres cannot compress it into an index entry (at most 2,704 bytes).
    const huge = randomBytes(1600).toString('hex');
    await sql().unsafe(`INSERT INTO "${app}".profiles (user_id, name, ssn) VALUES ('u-ok', 'ok', '111'), ('${huge}', 'big', '999-99-9999')`);
    const [row] = await sql().unsafe(`SELECT count(*)::int AS n FROM "${app}".profiles`);
    assert.equal(row?.n, 2, 'both rows are committed');
    const events = await capturedEvents(sql(), { table: 'profiles' });
    assert.deepEqual(events.map((e) => outcome(e)).sort(), ['failed', 'ok']);
    const failed = events.find((e) => e.status === 'failed')!;
    assert.match(failed.error_message ?? '', /user id is 3200 characters long; at most 200/);
    assert.equal(failed.user_id, null);
    assert.deepEqual(Object.keys(failed.data.record).sort(), ['id', 'name', 'user_id'], 'ssn is not a configured column');
  });

  test('7. a partitioned table: rows written into a partition directly, or copied, make their events too', async () => {
    await sql().unsafe(`
      CREATE TABLE "${app}".parts (id int, region text, v text) PARTITION BY LIST (region);
      CREATE TABLE "${app}".parts_eu PARTITION OF "${app}".parts FOR VALUES IN ('eu');
      CREATE TABLE "${app}".parts_us PARTITION OF "${app}".parts FOR VALUES IN ('us')`);
    await captureTable(sql(), { schema: app, table: 'parts', eventType: 'part.{op}' });
    await sql().unsafe(`CREATE TABLE "${app}".parts_br PARTITION OF "${app}".parts FOR VALUES IN ('br')`); // after the capture
    await sql().unsafe(`INSERT INTO "${app}".parts VALUES (1, 'eu', 'via parent')`);
    await sql().unsafe(`INSERT INTO "${app}".parts_us VALUES (2, 'us', 'direct')`);
    await sql().unsafe(`INSERT INTO "${app}".parts_br VALUES (3, 'br', 'new partition')`);
    const events = await capturedEvents(sql(), { table: 'parts' });
    assert.deepEqual(events.map((e) => [e.data.id, e.event_type, outcome(e)]).sort(), [
      [1, 'part.created', 'ok'],
      [2, 'part.created', 'ok'],
      [3, 'part.created', 'ok'],
    ]);
  });

  test('8. a renamed table: its capture is still listed as attached, and removing it removes its trigger', async () => {
    await sql().unsafe(`CREATE TABLE "${app}".inv (id serial PRIMARY KEY, v text)`);
    const capture = await captureTable(sql(), { schema: app, table: 'inv', eventType: 'inv.{op}' });
    await sql().unsafe(`ALTER TABLE "${app}".inv RENAME TO invoices`);
    const listed = (await listCaptures(sql())).find((x) => x.id === capture.id);
    assert.equal(listed?.attached, true);
    assert.equal(await uncaptureTable(sql(), { schema: app, table: 'inv' }), 1);
    await sql().unsafe(`INSERT INTO "${app}".invoices (v) VALUES ('after removal')`);
    assert.deepEqual(await capturedEvents(sql(), { table: 'invoices' }), [], 'no trigger is left firing');
  });

  test('9. a table named with multi-byte characters gets a trigger name that is its own, and can be re-configured', async () => {
    const name = 'é'.repeat(30);
    await sql().unsafe(`CREATE TABLE "${app}"."${name}" (id serial PRIMARY KEY, v text)`);
    const first = await captureTable(sql(), { schema: app, table: name, eventType: 'acc.{op}' });
    assert.ok(Buffer.byteLength(first.trigger_name) <= 63, first.trigger_name);
    assert.equal((await listCaptures(sql())).find((x) => x.id === first.id)?.attached, true);
    const again = await captureTable(sql(), { schema: app, table: name, eventType: 'acc.{op}', columns: ['id'] });
    assert.equal(again.id, first.id, 're-configured, not a second capture');
    await sql().unsafe(`INSERT INTO "${app}"."${name}" (v) VALUES ('x')`);
    const events = await capturedEvents(sql(), { table: name });
    assert.deepEqual(
      events.map((e) => e.data),
      [{ id: 1 }],
    );
  });

  test('10. a row naming the operations organization is refused like an unknown one', async () => {
    await sql().unsafe(`CREATE TABLE "${app}".alerts (id serial PRIMARY KEY, organization_id uuid, v text)`);
    await captureTable(sql(), { schema: app, table: 'alerts', eventType: 'alert.created' });
    await sql().unsafe(`INSERT INTO "${app}".alerts (organization_id, v) VALUES ('00000000-0000-7000-8000-00000000000f', 'forged')`);
    const [event] = await capturedEvents(sql(), { table: 'alerts' });
    assert.equal(event?.status, 'failed');
    assert.equal(event?.organization_id, DEFAULT_ORGANIZATION_ID);
    assert.match(event?.error_message ?? '', /not a Carteiro organization/);
    await assert.rejects(
      captureTable(sql(), {
        schema: app,
        table: 'alerts',
        eventType: 'alert.created',
        triggerName: 'ops',
        organizationId: '00000000-0000-7000-8000-00000000000f',
      }),
      /operations organization/,
    );
  });

  test('5. a role without any right on Carteiro’s schema writes a captured table and its event is recorded', async (t) => {
    const role = `carteiro_test_${randomBytes(4).toString('hex')}`;
    try {
      await sql().unsafe(`CREATE ROLE ${role} NOLOGIN`);
    } catch (err) {
      t.skip(`cannot create roles here: ${(err as Error).message}`);
      return;
    }
    try {
      await sql().unsafe(`
        CREATE TABLE "${app}".notes (id serial PRIMARY KEY, body text);
        GRANT USAGE ON SCHEMA "${app}" TO ${role};
        GRANT INSERT ON "${app}".notes TO ${role};
        GRANT USAGE ON SEQUENCE "${app}".notes_id_seq TO ${role};`);
      await captureTable(sql(), { schema: app, table: 'notes', eventType: 'note.created' });
      const [rights] = await sql()<{ usage: boolean; insert: boolean }[]>`
        SELECT has_schema_privilege(${role}, current_schema(), 'USAGE') AS usage,
               has_table_privilege(${role}, 'webhook_events', 'INSERT') AS insert`;
      assert.deepEqual(rights, { usage: false, insert: false });
      await sql().begin(async (tx) => {
        await tx.unsafe(`SET LOCAL ROLE ${role}`);
        await tx.unsafe(`INSERT INTO "${app}".notes (body) VALUES ('least privilege')`);
      });
      const [event] = await capturedEvents(sql(), { table: 'notes' });
      assert.equal(event?.event_type, 'note.created');
      assert.equal(event?.data.body, 'least privilege');
    } finally {
      await sql().unsafe(`DROP TABLE IF EXISTS "${app}".notes; REVOKE ALL ON SCHEMA "${app}" FROM ${role}; DROP ROLE ${role}`);
    }
  });
});
