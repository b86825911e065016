/**
 * A backlog accepted while no worker runs survives a restart of the whole service, and is then
 * delivered high priority first (the seed's high and normal queues). /stats shows the backlog.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { startCarteiro, createEndpoint, restartableLedger, dropSchema, eventually, BACKEND } from '../support/carteiro.ts';
import { startReceiver } from '../support/receiver.ts';

test(`a backlog survives a restart and high priority is delivered first (${BACKEND})`, async (t) => {
  const { dataDir, schema } = restartableLedger('prio');
  t.after(() => rmSync(dataDir, { recursive: true, force: true }));
  const receiver = await startReceiver();
  t.after(() => receiver.close());

  // 1. The API alone accepts a backlog: 40 normal events, then 10 high-priority payments.
  const api = await startCarteiro({ role: 'api', dataDir, schema });
  // Stopped below before the restart; here too, so that a failed assertion does not leave it serving
  // (the file's process would never end).
  let apiStopped = false;
  t.after(async () => {
    if (!apiStopped) await api.stop({ keepSchema: true });
  });
  await createEndpoint(api, { url: receiver.url, events: ['*'] });
  const normal = Array.from({ length: 40 }, (_, i) => ({ event_type: 'conversation.created', data: { conversation_id: `c${i}` } }));
  const high = Array.from({ length: 10 }, (_, i) => ({ event_type: 'payment.confirmed', data: { payment_id: `p${i}` } }));
  assert.equal((await api.request('POST', 'events/batch', { events: normal })).status, 202);
  assert.equal((await api.request('POST', 'events/batch', { events: high })).status, 202);

  const stats = (await api.request('GET', 'stats')).body;
  assert.equal(stats.queues.high_priority, 10);
  assert.equal(stats.queues.normal_priority, 40);
  assert.equal(stats.queues.retry, 0);
  assert.equal(stats.processing_tasks, 0);
  assert.ok(stats.supported_events.includes('conversation.message.added'));
  const health = (await api.request('GET', 'health')).body;
  assert.deepEqual(Object.keys(health).sort(), ['ledger', 'n8n', 'overall_status', 'services', 'timestamp']);
  assert.deepEqual(Object.keys(health.services).sort(), ['n8n', 'redis', 'supabase', 'webhook_manager']);
  assert.equal(health.services.supabase, 'healthy');
  apiStopped = true;
  await api.stop({ keepSchema: true });

  // 2. The whole service restarts on the same ledger with one delivery at a time.
  const all = await startCarteiro({ dataDir, schema, env: { CARTEIRO_WORKER_CONCURRENCY: '1', CARTEIRO_WORKER_BATCH_SIZE: '1' } });
  t.after(async () => {
    await all.stop({ keepSchema: true });
    await dropSchema(all.env);
  });
  await receiver.waitFor(50);
  const types = receiver.received.map((r) => JSON.parse(r.body).type as string);
  assert.deepEqual(types.slice(0, 10), Array(10).fill('payment.confirmed'), `order: ${types.join(',')}`);
  assert.equal(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size, 50);
  const after = await eventually(
    async () => {
      const s = (await all.request('GET', 'stats')).body;
      return s.queues.high_priority + s.queues.normal_priority + s.processing_tasks === 0 ? s : null;
    },
    { what: 'queues drained' },
  );
  assert.equal(after.last_hour.delivered, 50);
  assert.equal((await all.request('GET', 'health')).body.overall_status, 'healthy');
});
