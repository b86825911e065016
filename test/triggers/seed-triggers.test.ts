/**
 * The seed's five triggers, installed on tables shaped like the seed's app: each row makes its event
 * with the seed's field names (valid against the catalog's schema for that type), delivered as is.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { installSeedTriggers, listCaptures } from '../../src/ledger/table-capture.ts';
import { DEFAULT_ORGANIZATION_ID } from '../../src/tenancy/principal.ts';
import { appSchemaName, capturedEvents, createSeedTables, dropAppSchema } from './app-tables.ts';

describe('the seed triggers', () => {
  let c: TestCarteiro;
  let receiver: TestReceiver;
  const app = appSchemaName();
  const bare = appSchemaName();

  before(async () => {
    c = await startCarteiro();
    receiver = await startReceiver();
    await createEndpoint(c, { url: `${receiver.url}/all`, events: ['*'] });
    await createSeedTables(c.services.ledger.sql, app);
  });
  after(async () => {
    await dropAppSchema(c.services.ledger.sql, app);
    await dropAppSchema(c.services.ledger.sql, bare);
    await c.stop();
    await receiver.close();
  });

  /** Inserts/updates with SQL, returns the events the statement captured (and checks their delivery). */
  async function runAll(statement: string, opts: { validate?: boolean } = {}): Promise<{ type: string; data: Record<string, unknown> }[]> {
    const sql = c.services.ledger.sql;
    const before = (await capturedEvents(sql)).length;
    // Counted before the write: the commit's NOTIFY can bring the webhook in before the next line runs.
    const deliveredBefore = receiver.received.length;
    await sql.unsafe(statement);
    const events = (await capturedEvents(sql)).slice(before);
    for (const e of events) {
      assert.equal(e.status === 'failed', false, `event failed: ${e.error_message}`);
      // Captures bypass the API; from tables with the seed's columns their data still satisfies the
      // catalog's schema for the type.
      if (opts.validate !== false) c.services.catalog.validateData(await c.services.catalog.resolve(e.organization_id, e.event_type), e.data);
    }
    const deliveredIds = () => new Set(receiver.received.slice(deliveredBefore).map((r) => r.headers['webhook-id']));
    await eventually(() => events.every((e) => deliveredIds().has(e.id)), { what: `delivery of ${events.map((e) => e.event_type)}` });
    const bodies = new Map(receiver.received.slice(deliveredBefore).map((r) => [r.headers['webhook-id'], JSON.parse(r.body)]));
    return events.map((e) => {
      const body = bodies.get(e.id);
      assert.ok(body, `event ${e.id} (${e.event_type}) delivered`);
      assert.deepEqual(body.data, e.data, 'delivered data is the stored data');
      return { type: body.type, data: body.data };
    });
  }

  test('install_seed_triggers attaches the five triggers by the seed names and operations', async () => {
    const results = await installSeedTriggers(c.services.ledger.sql, { schema: app });
    assert.deepEqual(
      results.map((r) => [r.table_name, r.trigger_name, r.installed]),
      [
        ['users', 'webhook_user_registration', true],
        ['agents', 'webhook_agent_created', true],
        ['conversations', 'webhook_conversation_created', true],
        ['messages', 'webhook_message_added', true],
        ['external_integrations', 'webhook_integration_connected', true],
      ],
    );
    const mine = (await listCaptures(c.services.ledger.sql)).filter((x) => x.schema_name === app);
    assert.equal(mine.length, 5);
    assert.ok(mine.every((x) => x.attached));
    assert.deepEqual(mine.find((x) => x.table_name === 'external_integrations')?.operations, ['INSERT', 'UPDATE']);
    // Idempotent: installing again re-configures the same five.
    await installSeedTriggers(c.services.ledger.sql, { schema: app });
    assert.equal((await listCaptures(c.services.ledger.sql)).filter((x) => x.schema_name === app).length, 5);
  });

  test('users → user.registered, agents → agent.created, conversations → conversation.created, messages → conversation.message.added', async () => {
    const u = '11111111-1111-4111-8111-111111111111';
    const a = '22222222-2222-4222-8222-222222222222';
    const cv = '33333333-3333-4333-8333-333333333333';
    const m = '44444444-4444-4444-8444-444444444444';
    assert.deepEqual(await runAll(`INSERT INTO "${app}".users (id, email, name) VALUES ('${u}', 'ana@example.com', 'Ana Souza')`), [
      { type: 'user.registered', data: { user_id: u, email: 'ana@example.com', name: 'Ana Souza' } },
    ]);
    assert.deepEqual(await runAll(`INSERT INTO "${app}".agents (id, user_id, name) VALUES ('${a}', '${u}', 'Assistente de Vendas')`), [
      { type: 'agent.created', data: { agent_id: a, user_id: u, name: 'Assistente de Vendas' } },
    ]);
    assert.deepEqual(await runAll(`INSERT INTO "${app}".conversations (id, agent_id, user_id, channel) VALUES ('${cv}', '${a}', '${u}', 'whatsapp')`), [
      { type: 'conversation.created', data: { conversation_id: cv, agent_id: a, user_id: u, channel: 'whatsapp' } },
    ]);
    assert.deepEqual(
      await runAll(`INSERT INTO "${app}".messages (id, conversation_id, user_id, role, content) VALUES ('${m}', '${cv}', '${u}', 'user', 'Olá!')`),
      [{ type: 'conversation.message.added', data: { message_id: m, conversation_id: cv, user_id: u, role: 'user', content: 'Olá!' } }],
    );
    const [event] = await capturedEvents(c.services.ledger.sql, { table: 'messages' });
    assert.equal(event?.record_id, m);
    assert.equal(event?.user_id, u);
    assert.equal(event?.organization_id, DEFAULT_ORGANIZATION_ID);
  });

  test('external_integrations: connected by provider on insert, disconnected when it goes inactive, nothing otherwise', async () => {
    const u = '55555555-5555-4555-8555-555555555555';
    const wa = '66666666-6666-4666-8666-666666666666';
    const oa = '77777777-7777-4777-8777-777777777777';
    const table = `"${app}".external_integrations`;
    assert.deepEqual(await runAll(`INSERT INTO ${table} (id, user_id, provider, phone_number) VALUES ('${wa}', '${u}', 'whatsapp', '+55 11 90000-0000')`), [
      { type: 'integration.whatsapp.connected', data: { integration_id: wa, user_id: u, provider: 'whatsapp', phone_number: '+55 11 90000-0000' } },
    ]);
    assert.deepEqual(await runAll(`INSERT INTO ${table} (id, user_id, provider) VALUES ('${oa}', '${u}', 'OpenAI')`), [
      { type: 'integration.openai.connected', data: { integration_id: oa, user_id: u, provider: 'openai' } },
    ]);
    // An update that leaves it connected is not an event.
    assert.deepEqual(await runAll(`UPDATE ${table} SET phone_number = '+55 11 91111-1111' WHERE id = '${wa}'`), []);
    assert.deepEqual(await runAll(`UPDATE ${table} SET is_active = false WHERE id = '${wa}'`), [
      { type: 'integration.disconnected', data: { integration_id: wa, user_id: u, provider: 'whatsapp' } },
    ]);
    assert.deepEqual(await runAll(`UPDATE ${table} SET is_active = false WHERE id = '${wa}'`), []);
    // Reconnected: connected again.
    assert.deepEqual(await runAll(`UPDATE ${table} SET is_active = true WHERE id = '${wa}'`), [
      { type: 'integration.whatsapp.connected', data: { integration_id: wa, user_id: u, provider: 'whatsapp', phone_number: '+55 11 91111-1111' } },
    ]);
    // Inserted inactive, or a provider the catalog has no "connected" type for: nothing.
    assert.deepEqual(await runAll(`INSERT INTO ${table} (user_id, provider, is_active) VALUES ('${u}', 'whatsapp', false)`), []);
    assert.deepEqual(await runAll(`INSERT INTO ${table} (user_id, provider) VALUES ('${u}', 'telegram')`), []);
  });

  test('tables with only the required columns still insert and map (missing optional columns are left out)', async () => {
    const sql = c.services.ledger.sql;
    // Data without e.g. `email` does not satisfy the catalog's schema (the API would refuse it): a
    // capture reports the row as it is rather than lose it.
    const run = (statement: string) => runAll(statement, { validate: false });
    await sql.unsafe(`
      CREATE SCHEMA "${bare}";
      CREATE TABLE "${bare}".users (id text PRIMARY KEY, raw_user_meta_data jsonb); -- as Supabase's auth.users keeps the name
      CREATE VIEW "${bare}".conversations AS SELECT 1 AS id;
      CREATE TABLE "${bare}".agents (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);
      CREATE TABLE "${bare}".messages (id serial PRIMARY KEY, conversation_id text);
      CREATE TABLE "${bare}".external_integrations (id serial PRIMARY KEY, provider text, status text)`);
    const results = await installSeedTriggers(sql, { schema: bare });
    assert.deepEqual(
      results.filter((r) => r.installed).map((r) => r.table_name),
      ['users', 'agents', 'messages', 'external_integrations'],
    );

    assert.deepEqual(await run(`INSERT INTO "${bare}".users (id) VALUES ('test-user-123')`), [{ type: 'user.registered', data: { user_id: 'test-user-123' } }]);
    assert.deepEqual(await run(`INSERT INTO "${bare}".users VALUES ('u-meta', '{"full_name": "Test User", "source": "landing_page"}')`), [
      { type: 'user.registered', data: { user_id: 'u-meta', name: 'Test User' } },
    ]);
    assert.deepEqual(await run(`INSERT INTO "${bare}".agents DEFAULT VALUES`), [{ type: 'agent.created', data: { agent_id: '1' } }]);
    assert.deepEqual(await run(`INSERT INTO "${bare}".messages (conversation_id) VALUES ('c-1')`), [
      { type: 'conversation.message.added', data: { message_id: '1', conversation_id: 'c-1' } },
    ]);
    // A status column instead of is_active: 'pending' is not connected yet, 'connected' is, 'revoked' is not.
    const table = `"${bare}".external_integrations`;
    assert.deepEqual(await run(`INSERT INTO ${table} (provider, status) VALUES ('whatsapp', 'pending')`), []);
    assert.deepEqual(await run(`UPDATE ${table} SET status = 'connected'`), [
      { type: 'integration.whatsapp.connected', data: { integration_id: '1', provider: 'whatsapp' } },
    ]);
    assert.deepEqual(await run(`UPDATE ${table} SET status = 'revoked'`), [
      { type: 'integration.disconnected', data: { integration_id: '1', provider: 'whatsapp' } },
    ]);
  });
});
