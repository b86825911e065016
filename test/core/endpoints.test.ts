/**
 * Endpoint management: secrets shown once and stored encrypted, rotation with an overlap during
 * which both secrets sign, updates, deletion, and replay of finished events.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, trigger, eventually, settled, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithSeed, verifiesWithStandardWebhooks } from '../support/receiver.ts';
import { registerCoreJobs } from '../../src/jobs/core-jobs.ts';
import type { Services } from '../../src/runtime/services.ts';

describe('endpoints', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro();
  });
  after(async () => c.stop());

  test('the secret is returned once, as whsec_ base64, and stored only as ciphertext', async () => {
    const ep = await createEndpoint(c, { url: 'http://127.0.0.1:9/x', events: ['agent.*'], description: 'n8n' });
    assert.match(ep.secret, /^whsec_[A-Za-z0-9+/]{32}$/);
    const [row] = await c.services.ledger.sql<{ secret: string }[]>`SELECT secret FROM webhook_endpoints WHERE id = ${ep.id}`;
    assert.match(row?.secret ?? '', /^enc:v1:/);
    assert.ok(!row?.secret.includes(ep.secret.slice(6)));
    const got = await c.request('GET', `endpoints/${ep.id}`);
    assert.equal(got.body.secret, undefined);
    const list = await c.request('GET', 'endpoints');
    assert.ok(list.body.data.some((e: { id: string }) => e.id === ep.id));
    assert.ok(!JSON.stringify(list.body).includes('whsec_'), 'no secret in listings');
    assert.ok(!JSON.stringify(list.body).includes('enc:v1'), 'no ciphertext in listings');
  });

  test('bad endpoint input is refused and nothing is created', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ name: 'x', url: 'ftp://example.test/hook' }, /http or https/],
      [{ name: 'x', url: 'not a url at all' }, /absolute URL/],
      [{ name: 'x', url: 'http://127.0.0.1:9/', events: ['integ*'] }, /events/],
      [{ name: 'x', url: 'http://127.0.0.1:9/', events: [] }, /events/],
      [{ url: 'http://127.0.0.1:9/' }, /name/],
      [{ name: 'x', url: 'http://user:pw@127.0.0.1:9/' }, /credentials/],
    ];
    const [before] = await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_endpoints`;
    for (const [body, message] of cases) {
      const res = await c.request('POST', 'endpoints', body);
      assert.ok(res.status === 400 || res.status === 422, `${JSON.stringify(body)} → ${res.status}`);
      assert.match(res.body.message, message);
    }
    const [after] = await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_endpoints`;
    assert.equal(after?.n, before?.n);
  });

  test('a refused destination names its field, url, in the message and details.field', async () => {
    for (const url of ['ftp://example.test/hook', 'not a url at all', 'http://user:pw@127.0.0.1:9/', 'http://127.0.0.1:0/hook']) {
      const res = await c.request('POST', 'endpoints', { name: 'x', url });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.equal(res.body.code, 'CARTEIRO_UNSAFE_DESTINATION');
      assert.equal(res.body.details?.field, 'url', JSON.stringify(res.body));
      assert.match(res.body.message, /^url /);
    }
  });

  test('update, unknown ids and delete', async () => {
    const ep = await createEndpoint(c, { url: 'http://127.0.0.1:9/a', events: ['*'] });
    const patched = await c.request('PATCH', `endpoints/${ep.id}`, { events: ['payment.*'], name: 'payments' });
    assert.deepEqual(patched.body.events, ['payment.*']);
    assert.equal(patched.body.name, 'payments');
    const missing = await c.request('GET', 'endpoints/01a22a71-0000-7000-8000-000000000000');
    assert.equal(missing.status, 404);
    const badId = await c.request('GET', 'endpoints/not-a-uuid');
    assert.equal(badId.status, 400);
    // Longer than the router takes: refused before the route's schema, still in the error envelope.
    const longId = await c.request('GET', `endpoints/${'a'.repeat(120)}`);
    assert.equal(longId.status, 414);
    assert.deepEqual([longId.body.code, longId.body.error, longId.body.details], ['CARTEIRO_PARAM_TOO_LONG', 'URI Too Long', { field: 'params.id' }]);
    assert.match(longId.body.message, /params\.id is longer than 100 characters/);
    assert.equal((await c.request('DELETE', `endpoints/${ep.id}`)).status, 204);
    assert.equal((await c.request('GET', `endpoints/${ep.id}`)).status, 404);
  });

  test('deleting an endpoint cancels its pending deliveries and settles their events', async (t) => {
    // The API alone: no worker, so the delivery stays pending.
    const apiOnly = await startCarteiro({ role: 'api' });
    t.after(() => apiOnly.stop());
    const ep = await createEndpoint(apiOnly, { url: 'http://127.0.0.1:9/never', events: ['onboarding.completed'] });
    const id = await trigger(apiOnly, { event_type: 'onboarding.completed', data: { user_id: 'gone' } });
    assert.equal((await apiOnly.request('GET', `events/${id}/status`)).body.status, 'pending');
    assert.equal((await apiOnly.request('DELETE', `endpoints/${ep.id}`)).status, 204);
    const event = (await apiOnly.request('GET', `events/${id}`)).body;
    assert.equal(event.status, 'completed', 'not left processing for ever');
    assert.ok(event.processed_at);
  });

  test('endpoints deleted while their deliveries are being recorded are deleted cleanly (no deadlock)', async (t) => {
    const receiver = await startReceiver(() => ({ status: 200, delayMs: 5 }));
    t.after(() => receiver.close());
    const eps = [];
    for (let i = 0; i < 12; i++) eps.push(await createEndpoint(c, { url: `${receiver.url}/${i}`, events: ['conversation.created'] }));
    const events = Array.from({ length: 150 }, (_, i) => ({ event_type: 'conversation.created', data: { conversation_id: `race-${i}` } }));
    assert.equal((await c.request('POST', 'events/batch', { events })).status, 202);
    await receiver.waitFor(20);
    const statuses = await Promise.all(eps.map((ep) => c.request('DELETE', `endpoints/${ep.id}`).then((r) => r.status)));
    assert.deepEqual(statuses, Array(eps.length).fill(204));
    const stuck = await eventually(
      async () => {
        const [row] = await c.services.ledger.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM webhook_events WHERE data->>'conversation_id' LIKE 'race-%' AND status IN ('pending', 'processing')`;
        return row?.n === 0 ? 'settled' : null;
      },
      { what: 'every event settled' },
    );
    assert.equal(stuck, 'settled');
  });

  test('after a rotation both secrets sign until the overlap ends', async (t) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    const ep = await createEndpoint(c, { url: receiver.url, events: ['user.updated'] });
    const rotated = await c.request('POST', `endpoints/${ep.id}/rotate-secret`, { overlap_seconds: 3600 });
    assert.equal(rotated.status, 200);
    const newSecret = rotated.body.secret as string;
    assert.notEqual(newSecret, ep.secret);
    assert.ok(rotated.body.previous_secret_expires_at);

    await trigger(c, { event_type: 'user.updated', data: { user_id: 'rot-1' } });
    const [during] = await receiver.waitFor(1);
    assert.ok(verifiesWithStandardWebhooks(ep.secret, during!), 'old secret verifies (standard)');
    assert.ok(verifiesWithStandardWebhooks(newSecret, during!), 'new secret verifies (standard)');
    assert.ok(verifiesWithSeed(newSecret, during!), "new secret verifies (seed's header)");
    assert.ok(verifiesWithSeed(ep.secret, during!, 'x-webhook-signature-previous'), 'old secret verifies (previous header)');

    const ended = await c.request('POST', `endpoints/${ep.id}/rotate-secret`, { overlap_seconds: 0 });
    const latest = ended.body.secret as string;
    await trigger(c, { event_type: 'user.updated', data: { user_id: 'rot-2' } });
    const after = (await receiver.waitFor(2))[1]!;
    assert.ok(verifiesWithStandardWebhooks(latest, after));
    assert.ok(!verifiesWithStandardWebhooks(newSecret, after), 'with no overlap the previous secret no longer signs');
    assert.equal(after.headers['x-webhook-signature-previous'], undefined);
  });

  test('a finished event can be replayed, alone or in bulk as a job', async (t) => {
    let failing = true;
    const receiver = await startReceiver(() => ({ status: failing ? 500 : 200 }));
    t.after(() => receiver.close());
    await createEndpoint(c, { url: receiver.url, events: ['integration.disconnected'] });
    const a = await trigger(c, { event_type: 'integration.disconnected', data: { user_id: 'r1', provider: 'whatsapp' } });
    const b = await trigger(c, { event_type: 'integration.disconnected', data: { user_id: 'r2', provider: 'openai' } });
    const isFailed = async (id: string) => (await c.request('GET', `events/${id}/status`)).body.status === 'failed';
    await eventually(async () => (await isFailed(a)) && (await isFailed(b)), { what: 'both failed' });
    failing = false;

    const one = await c.request('POST', `events/${a}/replay`);
    assert.equal(one.status, 202);
    assert.equal(one.body.requeued, 1);
    await eventually(async () => (await c.request('GET', `events/${a}/status`)).body.status === 'completed', { what: 'a replayed' });

    const bulk = await c.request('POST', 'replay', { status: 'failed', event_type: 'integration.disconnected' });
    assert.equal(bulk.status, 202);
    const job = await eventually(
      async () => {
        const j = await c.request('GET', `jobs/${bulk.body.job_id}`);
        return j.body.state === 'completed' ? j.body : null;
      },
      { what: 'bulk replay job done' },
    );
    assert.deepEqual(job.result, { events: 1, dispatches: 1 });
    await eventually(async () => (await c.request('GET', `events/${b}/status`)).body.status === 'completed', { what: 'b replayed' });
    const attempts = (await c.request('GET', `events/${b}/attempts`)).body.data;
    assert.equal(attempts.at(-1).success, true);
    assert.equal(attempts.at(-1).attempt_number, attempts.length, 'attempt numbers keep counting across a replay');

    // An endpoint that does not exist is a 404 naming it; one that exists but has nothing finished for the event, 409.
    const again = await c.request('POST', `events/${a}/replay`, { endpoint_id: '01a22a71-0000-7000-8000-000000000000' });
    assert.equal(again.status, 404, JSON.stringify(again.body));
    assert.equal(again.body.details.field, 'endpoint_id');
    assert.match(again.body.message, /endpoint_id/);
    const unrelated = await createEndpoint(c, { url: 'http://127.0.0.1:9/unrelated', events: ['agent.created'] });
    assert.equal((await c.request('POST', `events/${a}/replay`, { endpoint_id: unrelated.id })).status, 409);
  });

  test('a bulk replay run again (its job retried after a crash) requeues nothing twice, and resumes its counts', async (t) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    await createEndpoint(c, { url: `${receiver.url}/again`, events: ['template.applied'] });
    const ids: string[] = [];
    for (const template of ['r1', 'r2', 'r3']) ids.push(await trigger(c, { event_type: 'template.applied', data: { template_id: template, agent_id: 'a1' } }));
    const completed = () =>
      eventually(
        async () => {
          const rows = await c.services.ledger.sql<
            { n: number }[]
          >`SELECT count(*)::int AS n FROM webhook_events WHERE id = ANY(${ids}::uuid[]) AND status = 'completed'`;
          return rows[0]?.n === 3 || null;
        },
        { what: 'the three events completed' },
      );
    await receiver.waitFor(3);
    await completed();
    // The job's handler, run as the job runner runs it (with BullMQ a crashed run is retried).
    const handlers = new Map<string, (p: unknown, ctx: unknown) => Promise<unknown>>();
    registerCoreJobs({ ...c.services, jobs: { register: (name: string, h: never) => handlers.set(name, h) } } as unknown as Services);
    const replay = handlers.get('bulk-replay')!;
    const payload = { organizationId: null, status: 'completed', eventType: 'template.applied', requestedAt: new Date().toISOString() };
    const progress: Record<string, unknown>[] = [];
    const ctx = (resumed: Record<string, unknown> | null) => ({ progress: async (p: Record<string, unknown>) => void progress.push(p), resumed });
    assert.deepEqual(await replay(payload, ctx(null)), { events: 3, dispatches: 3 });
    await receiver.waitFor(6);
    await completed();
    // Retried from the start (its progress lost): everything it replayed finished after it was asked for.
    assert.deepEqual(await replay(payload, ctx(null)), { events: 0, dispatches: 0 });
    // Retried where its progress said it was: the counts carry on.
    const last = progress[0]!;
    assert.deepEqual(await replay(payload, ctx(last)), { events: 3, dispatches: 3 });
    // Every requeued dispatch settled: no further request can go out.
    const ledger = await settled(c, { eventIds: ids });
    assert.equal(ledger.attempts, 6, 'each event delivered, then re-delivered once');
    assert.equal(receiver.received.length, 6, 'each event re-delivered once');
  });

  test('a bulk replay that cannot match anything is refused instead of run as a job', async () => {
    const missing = await c.request('POST', 'replay', { endpoint_id: '01a22a71-0000-7000-8000-000000000000' });
    assert.equal(missing.status, 404, JSON.stringify(missing.body));
    assert.equal(missing.body.details.field, 'endpoint_id');
    assert.match(missing.body.message, /endpoint_id/);
    const backwards = await c.request('POST', 'replay', { since: '2025-01-02T00:00:00Z', until: '2025-01-01T00:00:00Z' });
    assert.equal(backwards.status, 400, JSON.stringify(backwards.body));
    assert.equal(backwards.body.details.field, 'until');
    assert.match(backwards.body.message, /until must be later than since/);
    const empty = await c.request('POST', 'replay', { since: '2025-01-01T00:00:00Z', until: '2025-01-01T00:00:00Z' });
    assert.equal(empty.status, 400);
    const ok = await c.request('POST', 'replay', { since: '2025-01-01T00:00:00Z', until: '2025-01-02T00:00:00Z' });
    assert.equal(ok.status, 202);
  });
});
