/**
 * The dashboard page (public, strict CSP, no inline script) and the live stream
 * (GET /api/webhooks/live: authenticated Server-Sent Events, per-organization, unsubscribed on
 * disconnect, ended by app.close()).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { createEndpoint, eventually, startCarteiro, TEST_ADMIN_KEY, trigger, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { openSse, type SseClient } from './sse-client.ts';
import { createLiveRoutes, sseFrame, visibleTo } from '../../src/api/routes/live.ts';
import { createLocalLiveBus, type LiveBus } from '../../src/coordination/live-bus.ts';
import { DEFAULT_ORGANIZATION_ID } from '../../src/tenancy/principal.ts';
import type { Services } from '../../src/runtime/services.ts';

const ADMIN = { authorization: `Bearer ${TEST_ADMIN_KEY}` };

/** Counts the live bus's open subscriptions, to see a closed stream let go of its own. */
function countSubscriptions(c: TestCarteiro): { active(): number; restore(): void } {
  const bus = c.services.liveBus;
  let active = 0;
  const counted: LiveBus = {
    publish: (m) => bus.publish(m),
    close: () => bus.close(),
    subscribe(fn) {
      active++;
      const off = bus.subscribe(fn);
      let done = false;
      return () => {
        if (done) return;
        done = true;
        active--;
        off();
      };
    },
  };
  c.services.liveBus = counted;
  return { active: () => active, restore: () => void (c.services.liveBus = bus) };
}

/**
 * With Redis the bus subscribes on the first listener, a moment after the stream says ready: publish
 * probes until one comes through, so nothing the test does afterwards can be missed.
 */
async function untilSubscribed(c: TestCarteiro, stream: SseClient, organizationId: string | null): Promise<void> {
  const tag = Math.random().toString(36).slice(2);
  await eventually(
    () => {
      c.services.liveBus.publish({ type: 'probe', organization_id: organizationId, tag });
      return stream.frames.some((f) => f.event === 'probe' && f.data?.tag === tag);
    },
    { intervalMs: 50, what: 'the live stream to receive a probe' },
  );
}

async function createOrgWithKey(c: TestCarteiro, name: string): Promise<{ id: string; key: string }> {
  const org = await c.request('POST', 'organizations', { name });
  assert.equal(org.status, 201, JSON.stringify(org.body));
  const key = await c.request('POST', `organizations/${org.body.id}/keys`, { name: `${name} key` });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  return { id: org.body.id, key: key.body.key };
}

describe('dashboard page', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro();
  });
  after(async () => {
    await c.stop();
  });

  test('GET /dashboard serves the page without a key, under a strict Content-Security-Policy', async () => {
    for (const url of ['/dashboard', '/dashboard/']) {
      const res = await c.app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      const csp = String(res.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /script-src 'self'/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|\*/);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
      assert.match(res.body, /<title>Carteiro/);
      assert.match(res.body, /<script src="\/dashboard\/app\.js" defer><\/script>/);
      assert.match(res.body, /<link rel="stylesheet" href="\/dashboard\/app\.css">/);
    }
  });

  test('the page has no inline script, style or handler, and asks for the key without a form field name', async () => {
    const html = (await c.app.inject({ method: 'GET', url: '/dashboard' })).body;
    for (const script of html.match(/<script\b[^>]*>/g) ?? []) assert.match(script, /\bsrc="\/dashboard\//, script);
    assert.doesNotMatch(html, /<style\b/);
    assert.doesNotMatch(html, /\sstyle=/);
    assert.doesNotMatch(html, /\son[a-z]+=/i);
    assert.doesNotMatch(html, /https?:\/\//, 'nothing from another origin');
    const keyInput = /<input id="login-key"[^>]*>/.exec(html)?.[0] ?? '';
    assert.match(keyInput, /type="password"/);
    assert.doesNotMatch(keyInput, /\bname=/);
  });

  test('script, stylesheet and icon are public, typed, cacheable by ETag', async () => {
    const expected: Record<string, RegExp> = {
      '/dashboard/app.js': /^text\/javascript/,
      '/dashboard/app.css': /^text\/css/,
      '/dashboard/favicon.svg': /^image\/svg\+xml/,
    };
    for (const [url, type] of Object.entries(expected)) {
      const res = await c.app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.match(String(res.headers['content-type']), type);
      const etag = String(res.headers.etag);
      const again = await c.app.inject({ method: 'GET', url, headers: { 'if-none-match': etag } });
      assert.equal(again.statusCode, 304, url);
    }
    // Only these files: anything else under /dashboard is an unknown route (401 without a key, as every unknown route).
    const missing = await c.app.inject({ method: 'GET', url: '/dashboard/../package.json' });
    assert.notEqual(missing.statusCode, 200);
  });

  test('the script renders text only: no HTML parsing of data, no eval, the key only in sessionStorage', () => {
    const js = readFileSync(new URL('../../src/dashboard/public/app.js', import.meta.url), 'utf8');
    for (const sink of ['innerHTML', 'outerHTML', 'insertAdjacentHTML', 'document.write', 'eval(', 'new Function', 'localStorage']) {
      assert.ok(!js.includes(sink), `app.js uses ${sink}`);
    }
    assert.match(js, /sessionStorage/);
    assert.match(js, /authorization: 'Bearer '/);
  });

  test('the API routes still require a key', async () => {
    const res = await c.app.inject({ method: 'GET', url: '/api/webhooks/stats' });
    assert.equal(res.statusCode, 401);
  });
});

describe('live stream', () => {
  let c: TestCarteiro;
  let receiver: TestReceiver;
  before(async () => {
    c = await startCarteiro({ listen: true });
    receiver = await startReceiver();
  });
  after(async () => {
    await c.stop();
    await receiver.close();
  });

  test('requires a valid key', async () => {
    const none = await c.app.inject({ method: 'GET', url: '/api/webhooks/live' });
    assert.equal(none.statusCode, 401);
    const wrong = await c.app.inject({ method: 'GET', url: '/api/webhooks/live', headers: { authorization: 'Bearer ck_wrong' } });
    assert.equal(wrong.statusCode, 401);
    const fetched = await fetch(`${c.url}/api/webhooks/live`);
    assert.equal(fetched.status, 401);
    assert.match(fetched.headers.get('content-type') ?? '', /json/);
  });

  test('streams new events and recorded deliveries, and lets go of the bus when the client leaves', async () => {
    const subs = countSubscriptions(c);
    try {
      const stream = await openSse(`${c.url}/api/webhooks/live`, ADMIN);
      assert.equal(stream.status, 200);
      assert.match(stream.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.match(stream.headers.get('cache-control') ?? '', /no-cache/);
      const ready = await stream.waitFor((f) => f.event === 'ready', undefined, 'ready');
      assert.equal(ready.data.organization_id, null);
      assert.equal(subs.active(), 1);
      await untilSubscribed(c, stream, DEFAULT_ORGANIZATION_ID);

      const endpoint = await createEndpoint(c, { url: `${receiver.url}/live`, events: ['agent.created'] });
      const eventId = await trigger(c, { event_type: 'agent.created', data: { agent_id: 'a-live', name: 'Agente ao vivo' } });
      const accepted = await stream.waitFor((f) => f.event === 'events.accepted', undefined, 'events.accepted');
      assert.deepEqual(accepted.data, { type: 'events.accepted', organization_id: DEFAULT_ORGANIZATION_ID, count: 1 });
      const recorded = await stream.waitFor((f) => f.event === 'deliveries.recorded' && f.data.delivered >= 1, undefined, 'deliveries.recorded');
      assert.equal(recorded.data.organization_id, DEFAULT_ORGANIZATION_ID);
      assert.ok(recorded.data.count >= recorded.data.delivered);
      assert.equal(receiver.received.length, 1);
      const status = await c.request('GET', `events/${eventId}/status`);
      assert.equal(status.body.status, 'completed');
      assert.equal(status.body.deliveries[0].endpoint_id, endpoint.id);

      stream.abort();
      await eventually(() => subs.active() === 0, { what: 'the stream to unsubscribe after the client left' });
    } finally {
      subs.restore();
    }
  });

  test('events written straight into the database (table capture) are announced too, by the sealing pass', async () => {
    const stream = await openSse(`${c.url}/api/webhooks/live`, ADMIN);
    try {
      await stream.waitFor((f) => f.event === 'ready', undefined, 'ready');
      await untilSubscribed(c, stream, DEFAULT_ORGANIZATION_ID);
      await c.services.ledger.sql`
        INSERT INTO webhook_events (organization_id, event_type, event_source, table_name, data)
        VALUES (${DEFAULT_ORGANIZATION_ID}, 'agent.created', 'supabase', 'agents', '{"agent_id": "a-captured"}'::jsonb)`;
      const accepted = await stream.waitFor((f) => f.event === 'events.accepted', undefined, 'events.accepted for the captured row');
      assert.deepEqual(accepted.data, { type: 'events.accepted', organization_id: DEFAULT_ORGANIZATION_ID, count: 1 });
    } finally {
      stream.abort();
    }
  });

  test("an organization key sees only its organization's messages; the admin sees all", async () => {
    const org = await createOrgWithKey(c, `live-${Date.now()}`);
    const orgStream = await openSse(`${c.url}/api/webhooks/live`, { authorization: `Bearer ${org.key}` });
    const adminStream = await openSse(`${c.url}/api/webhooks/live`, ADMIN);
    try {
      assert.equal(orgStream.status, 200);
      const ready = await orgStream.waitFor((f) => f.event === 'ready', undefined, 'ready');
      assert.equal(ready.data.organization_id, org.id);
      await untilSubscribed(c, orgStream, org.id);
      await untilSubscribed(c, adminStream, null);

      // Another organization's event, then one of its own: only its own arrives.
      await trigger(c, { event_type: 'agent.created', data: { agent_id: 'a-other', name: 'outro' } });
      await adminStream.waitFor(
        (f) => f.event === 'events.accepted' && f.data.organization_id === DEFAULT_ORGANIZATION_ID,
        undefined,
        'the default org event on the admin stream',
      );
      const own = await c.request(
        'POST',
        'trigger',
        { event_type: 'agent.created', data: { agent_id: 'a-own', name: 'próprio' } },
        { authorization: `Bearer ${org.key}` },
      );
      assert.equal(own.status, 202, JSON.stringify(own.body));
      await orgStream.waitFor((f) => f.event === 'events.accepted', undefined, 'its own event');
      await adminStream.waitFor((f) => f.event === 'events.accepted' && f.data.organization_id === org.id, undefined, 'the org event on the admin stream');

      const foreign = orgStream.frames.filter((f) => f.data && f.event !== 'ready' && f.data.organization_id !== org.id);
      assert.deepEqual(foreign, [], 'frames of another organization leaked');
      // A message that names no organization is for the admin only.
      c.services.liveBus.publish({ type: 'system.notice' });
      await adminStream.waitFor((f) => f.event === 'system.notice', undefined, 'the unscoped message on the admin stream');
      assert.ok(!orgStream.frames.some((f) => f.event === 'system.notice'));
    } finally {
      orgStream.abort();
      adminStream.abort();
    }
  });

  test('an admin naming an organization (X-Organization-Id) sees only that one', async () => {
    const org = await createOrgWithKey(c, `scoped-${Date.now()}`);
    const stream = await openSse(`${c.url}/api/webhooks/live`, { ...ADMIN, 'x-organization-id': org.id });
    try {
      await untilSubscribed(c, stream, org.id);
      c.services.liveBus.publish({ type: 'deliveries.recorded', organization_id: DEFAULT_ORGANIZATION_ID, count: 1, delivered: 1 });
      c.services.liveBus.publish({ type: 'deliveries.recorded', organization_id: org.id, count: 2, delivered: 2 });
      const got = await stream.waitFor((f) => f.event === 'deliveries.recorded', undefined, 'deliveries.recorded');
      assert.equal(got.data.organization_id, org.id);
      assert.equal(stream.frames.filter((f) => f.event === 'deliveries.recorded').length, 1);
    } finally {
      stream.abort();
    }
  });
});

test('app.close() ends open streams instead of waiting on them', async () => {
  const c = await startCarteiro({ listen: true });
  const subs = countSubscriptions(c);
  const streams = await Promise.all([1, 2, 3].map(() => openSse(`${c.url}/api/webhooks/live`, ADMIN)));
  for (const s of streams) await s.waitFor((f) => f.event === 'ready', undefined, 'ready');
  assert.equal(subs.active(), 3);
  const started = Date.now();
  await c.stop();
  const took = Date.now() - started;
  // Waiting on them instead would take a keep-alive timeout (72 s); a busy machine takes a few seconds at worst.
  assert.ok(took < 30_000, `stop took ${took} ms`);
  await Promise.all(streams.map((s) => s.ended));
  assert.equal(subs.active(), 0);
});

describe('live route unit', () => {
  test('visibility: null reads all; an organization reads only messages naming it', () => {
    assert.ok(visibleTo(null, { type: 'x' }));
    assert.ok(visibleTo(null, { type: 'x', organization_id: 'a' }));
    assert.ok(visibleTo('a', { type: 'x', organization_id: 'a' }));
    assert.ok(!visibleTo('a', { type: 'x', organization_id: 'b' }));
    assert.ok(!visibleTo('a', { type: 'x' }));
    assert.ok(!visibleTo('a', { type: 'x', organization_id: null }));
  });

  test('a frame cannot be split by a hostile type', () => {
    const frame = sseFrame({ type: 'a\n\ndata: {"evil":1}', organization_id: 'o' });
    assert.equal(frame.split('\n\n').length, 2, frame);
    assert.match(frame, /^event: a__data____evil__1_\ndata: /);
  });

  /** The route alone on a bare Fastify, with a tenant set by a stub hook. */
  async function bareApp(bus: LiveBus, opts: Parameters<typeof createLiveRoutes>[0]) {
    // undici (fetch) may open a spare connection after an abort that never carries a request; don't wait on it.
    const app = Fastify({ forceCloseConnections: true });
    app.decorateRequest('tenant', null as never);
    app.addHook('onRequest', async (request) => {
      request.tenant = { principal: { kind: 'admin' }, readOrganizationId: null, writeOrganizationId: DEFAULT_ORGANIZATION_ID };
    });
    await app.register(async (scope) => createLiveRoutes(opts)(scope, { liveBus: bus } as Services), { prefix: '/api/webhooks' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    const url = typeof addr === 'object' && addr ? `http://127.0.0.1:${addr.port}` : '';
    return { app, url };
  }

  test('heartbeat comments keep an idle stream talking', async () => {
    const bus = createLocalLiveBus();
    const { app, url } = await bareApp(bus, { heartbeatMs: 40 });
    try {
      const s = await openSse(`${url}/api/webhooks/live`, {});
      const beat = await s.waitFor((f) => f.comment?.startsWith('heartbeat') ?? false, undefined, 'a heartbeat');
      assert.equal(beat.data, null);
      s.abort();
    } finally {
      await app.close();
    }
  });

  test('too many streams for one key are refused with 429', async () => {
    const bus = createLocalLiveBus();
    const { app, url } = await bareApp(bus, { maxStreamsPerKey: 2 });
    try {
      const a = await openSse(`${url}/api/webhooks/live`, {});
      const b = await openSse(`${url}/api/webhooks/live`, {});
      const third = await fetch(`${url}/api/webhooks/live`);
      assert.equal(third.status, 429);
      a.abort();
      // A slot frees when a client leaves.
      await eventually(
        async () => {
          const res = await fetch(`${url}/api/webhooks/live`);
          if (res.status === 200) await res.body?.cancel();
          else await res.text();
          return res.status === 200;
        },
        { what: 'a freed slot' },
      );
      b.abort();
    } finally {
      await app.close();
    }
  });

  test('a client gone before the stream starts holds no slot (its socket closed while the hooks ran)', async () => {
    const bus = createLocalLiveBus();
    const app = Fastify({ forceCloseConnections: true });
    app.decorateRequest('tenant', null as never);
    let hooked = 0;
    app.addHook('onRequest', async (request) => {
      await new Promise((r) => setTimeout(r, 50)); // as a key lookup does
      request.tenant = { principal: { kind: 'admin' }, readOrganizationId: null, writeOrganizationId: DEFAULT_ORGANIZATION_ID };
      hooked++;
    });
    await app.register(async (scope) => createLiveRoutes({ maxStreamsPerKey: 2 })(scope, { liveBus: bus } as Services), { prefix: '/api/webhooks' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    try {
      const { connect } = await import('node:net');
      for (let i = 0; i < 4; i++) {
        const socket = connect(port, '127.0.0.1');
        await new Promise<void>((r) => socket.once('connect', () => r()));
        socket.write('GET /api/webhooks/live HTTP/1.1\r\nhost: x\r\n\r\n');
        await new Promise((r) => setTimeout(r, 2));
        socket.destroy();
      }
      // The hooks finish for every one of them, and their handlers run (they are next in line).
      await eventually(() => hooked === 4, { what: "the four gone clients' hooks" });
      await new Promise((r) => setImmediate(r));
      const a = await openSse(`http://127.0.0.1:${port}/api/webhooks/live`, {});
      const b = await openSse(`http://127.0.0.1:${port}/api/webhooks/live`, {});
      assert.deepEqual([a.status, b.status], [200, 200], 'both slots are free');
      a.abort();
      b.abort();
    } finally {
      await app.close();
    }
  });

  test("a revoked organization key's open stream ends at its next heartbeat", { timeout: 60_000 }, async () => {
    const bus = createLocalLiveBus();
    let valid = true;
    const app = Fastify({ forceCloseConnections: true });
    app.decorateRequest('tenant', null as never);
    app.addHook('onRequest', async (request) => {
      request.tenant = { principal: { kind: 'organization', keyId: 'k1', organizationId: 'o1' }, readOrganizationId: 'o1', writeOrganizationId: 'o1' } as never;
    });
    const services = {
      liveBus: bus,
      authenticate: async (token: string) => (valid && token === 'org-key' ? { kind: 'organization' } : null),
    } as unknown as Services;
    await app.register(async (scope) => createLiveRoutes({ heartbeatMs: 40 })(scope, services), { prefix: '/api/webhooks' });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const { port } = app.server.address() as AddressInfo;
    try {
      const s = await openSse(`http://127.0.0.1:${port}/api/webhooks/live`, { authorization: 'Bearer org-key' });
      await s.waitFor((f) => f.comment?.startsWith('heartbeat') ?? false, undefined, 'a heartbeat while the key stands');
      valid = false;
      await s.ended;
      bus.publish({ type: 'events.accepted', organization_id: 'o1', count: 1 });
    } finally {
      await app.close();
    }
  });

  test('a client that stops reading is dropped once its backlog passes the limit', async () => {
    const bus = createLocalLiveBus();
    const { app, url } = await bareApp(bus, { maxBacklogBytes: 64 * 1024 });
    try {
      const { request } = await import('node:http');
      const req = request(`${url}/api/webhooks/live`);
      // The response's headers are written once the stream is subscribed to the bus.
      const res = await new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
        req.on('response', resolve).on('error', reject);
        req.end();
      });
      res.pause();
      const closed = new Promise<void>((resolve) => res.on('close', () => resolve()));
      const big = 'x'.repeat(16 * 1024);
      const flood = setInterval(() => {
        for (let i = 0; i < 50; i++) bus.publish({ type: 'flood', big });
      }, 5);
      // A server that never drops the client must fail here, not hang until the suite's timeout.
      let guard: NodeJS.Timeout | undefined;
      const kept = new Promise<'kept'>((resolve) => {
        guard = setTimeout(() => resolve('kept'), 30_000);
      });
      try {
        assert.notEqual(await Promise.race([closed.then(() => 'dropped' as const), kept]), 'kept', 'the server kept a client that stopped reading for 30 s');
      } finally {
        clearInterval(flood);
        clearTimeout(guard);
        req.destroy();
      }
    } finally {
      await app.close();
    }
  });
});
