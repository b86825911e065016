/**
 * Capturing any table: capture_table / uncapture_table through ledger/table-capture.ts (what the CLI and
 * the benchmarks call). Data is the row or a projection of it; '{op}' names the operation; an update
 * that leaves the projection as it was makes no event; removing a capture stops its events.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, type TestCarteiro } from '../support/carteiro.ts';
import { captureTable, listCaptures, uncaptureTable } from '../../src/ledger/table-capture.ts';
import { NotFoundError, ValidationError } from '../../src/errors/errors.ts';
import { appSchemaName, capturedEvents, dropAppSchema } from './app-tables.ts';

describe('capturing any table', () => {
  let c: TestCarteiro;
  const app = appSchemaName();
  const sql = () => c.services.ledger.sql;
  const orders = () => capturedEvents(sql(), { table: 'orders' });

  before(async () => {
    c = await startCarteiro();
    await sql().unsafe(`
      CREATE SCHEMA "${app}";
      CREATE TABLE "${app}".orders (id bigserial PRIMARY KEY, customer_id text, status text, total numeric, internal_note text);
      CREATE VIEW "${app}".orders_view AS SELECT * FROM "${app}".orders;`);
  });
  after(async () => {
    await dropAppSchema(sql(), app);
    await c.stop();
  });

  test('insert, update and delete with "{op}", a projection, and a user id column', async () => {
    const capture = await captureTable(sql(), {
      schema: app,
      table: 'orders',
      eventType: 'order.{op}',
      operations: ['INSERT', 'UPDATE', 'DELETE'],
      columns: ['id', 'status', 'total'],
      userIdColumn: 'customer_id',
      priority: 'high',
    });
    assert.equal(capture.trigger_name, 'carteiro_orders_delete_insert_update');
    assert.deepEqual(capture.operations, ['DELETE', 'INSERT', 'UPDATE']);

    await sql().unsafe(`INSERT INTO "${app}".orders (customer_id, status, total, internal_note) VALUES ('cust-1', 'open', 99.9, 'vip')`);
    await sql().unsafe(`UPDATE "${app}".orders SET internal_note = 'not captured'`); // outside the projection: no event
    await sql().unsafe(`UPDATE "${app}".orders SET status = 'paid'`);
    await sql().unsafe(`DELETE FROM "${app}".orders`);

    const events = await orders();
    assert.deepEqual(
      events.map((e) => [e.event_type, e.data]),
      [
        ['order.created', { id: 1, status: 'open', total: 99.9 }],
        ['order.updated', { id: 1, status: 'paid', total: 99.9 }],
        ['order.deleted', { id: 1, status: 'paid', total: 99.9 }],
      ],
    );
    assert.ok(events.every((e) => e.record_id === '1' && e.user_id === 'cust-1' && e.table_name === 'orders'));
    const [prio] = await sql()<{ priority: number }[]>`SELECT DISTINCT priority FROM webhook_events WHERE table_name = 'orders'`;
    assert.equal(prio?.priority, 1);
  });

  test('capturing again under the same trigger name re-configures it; list shows it attached', async () => {
    await captureTable(sql(), { schema: app, table: 'orders', eventType: 'order.placed', triggerName: 'carteiro_orders_delete_insert_update' });
    const mine = (await listCaptures(sql())).filter((x) => x.schema_name === app);
    assert.equal(mine.length, 1);
    assert.deepEqual([mine[0]?.event_type, mine[0]?.operations, mine[0]?.columns, mine[0]?.attached], ['order.placed', ['INSERT'], null, true]);
    const [trg] = await sql()<{ n: number }[]>`
      SELECT count(*)::int AS n FROM pg_trigger WHERE tgrelid = ${`"${app}".orders`}::regclass AND NOT tgisinternal`;
    assert.equal(trg?.n, 1, 'one trigger, replaced in place');

    const before = (await orders()).length;
    await sql().unsafe(`INSERT INTO "${app}".orders (status) VALUES ('open')`);
    const [event] = (await orders()).slice(before);
    assert.equal(event?.event_type, 'order.placed');
    assert.deepEqual(Object.keys(event?.data).sort(), ['customer_id', 'id', 'internal_note', 'status', 'total'], 'the whole row');
  });

  test('refuses what cannot work, with the reason', async () => {
    const refused = async (spec: Parameters<typeof captureTable>[1], pattern: RegExp, type: Function = ValidationError) => {
      await assert.rejects(captureTable(sql(), spec), (err: Error) => {
        assert.ok(err instanceof type, `${err.name}: ${err.message}`);
        assert.match(err.message, pattern);
        return true;
      });
    };
    await refused({ schema: app, table: 'orders', eventType: 'Order Created' }, /dotted lower-case name/);
    await refused({ schema: app, table: 'orders', eventType: 'order.created', columns: ['id', 'nope'] }, /column\(s\) nope not found/);
    await refused({ schema: app, table: 'orders_view', eventType: 'order.created' }, /not a table/);
    await refused({ schema: app, table: 'missing', eventType: 'order.created' }, /table .*missing/, NotFoundError);
    await refused({ schema: c.services.ledger.schema, table: 'webhook_events', eventType: 'loop.created' }, /Carteiro's own tables/);
    await sql().unsafe(`
      CREATE FUNCTION "${app}".audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
      CREATE TRIGGER users_own AFTER INSERT ON "${app}".orders FOR EACH ROW EXECUTE FUNCTION "${app}".audit();`);
    await refused({ schema: app, table: 'orders', eventType: 'order.created', triggerName: 'users_own' }, /exists and is not a Carteiro capture/);
  });

  test('uncapture removes the trigger and its configuration; a dropped table’s capture can still be removed', async () => {
    assert.equal(await uncaptureTable(sql(), { schema: app, table: 'orders' }), 1);
    const before = (await orders()).length;
    await sql().unsafe(`INSERT INTO "${app}".orders (status) VALUES ('after removal')`);
    assert.equal((await orders()).length, before, 'no event after removal');
    assert.equal((await listCaptures(sql())).filter((x) => x.schema_name === app).length, 0);
    assert.equal(await uncaptureTable(sql(), { schema: app, table: 'orders' }), 0);

    await sql().unsafe(`CREATE TABLE "${app}".scratch (id int)`);
    await captureTable(sql(), { schema: app, table: 'scratch', eventType: 'scratch.created' });
    await sql().unsafe(`DROP TABLE "${app}".scratch`);
    const [gone] = (await listCaptures(sql())).filter((x) => x.schema_name === app);
    assert.equal(gone?.attached, false, 'listed as detached');
    assert.equal(await uncaptureTable(sql(), { schema: app, table: 'scratch' }), 1);
    assert.equal((await listCaptures(sql())).filter((x) => x.schema_name === app).length, 0);
  });
});
