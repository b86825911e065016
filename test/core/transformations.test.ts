/**
 * Endpoint transformations (docs/transformations.md), through a real Carteiro and real receivers on
 * loopback: what is sent is what the code made, and what is signed is what is sent (both schemes); a
 * cancel settles without a request; code that throws, loops (in JavaScript or inside a built-in) or
 * eats memory is a failed attempt saying so, while other endpoints keep delivering and the worker
 * lives on; code that does not compile is refused when the endpoint is written, and nothing changes;
 * the preview renders stored and sample events without sending anything, across organizations never.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, eventually, settled, trigger, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithSeed, verifiesWithStandardWebhooks, type TestReceiver } from '../support/receiver.ts';
import { appendPath } from '../../src/delivery/transformation/contract.ts';

const SHAPE = `function handler(webhook) {
  webhook.payload = { kind: webhook.event_type, who: webhook.data.name, total: webhook.data.amount * 2, id: webhook.event_id };
  webhook.headers['X-Tenant-Ref'] = 'ref-' + webhook.data.ref;
  webhook.headers['x-amount'] = webhook.data.amount;
  webhook.path = '/orders/' + encodeURIComponent(webhook.data.ref) + '?source=carteiro';
  return webhook;
}`;
const DATA_ONLY = `function handler(webhook) {
  webhook.data = { only: webhook.data.ref };
  return webhook;
}`;
const CANCEL_SMALL = `function handler(webhook) {
  if (webhook.data.amount < 100) webhook.cancel = true;
  return webhook;
}`;
const THROWS = `function handler(webhook) {
  const missing = webhook.data.nothing;
  return missing.deeper;
}`;
const LOOPS = 'function handler(webhook) { for (;;) {} }';
/** Loops inside a built-in, where QuickJS never asks its interrupt handler: only stopping the thread ends it. */
const LOOPS_IN_BUILTIN = 'function handler(webhook) { return Array.prototype.indexOf.call({ length: 2 ** 52 }, 1); }';
const HOGS = "function handler(webhook) { const kept = []; for (;;) kept.push('x'.repeat(65536) + kept.length); }";

type Sql = TestCarteiro['services']['ledger']['sql'];

/** Event types of this file's own, with any data. */
async function registerTypes(c: TestCarteiro, names: string[]): Promise<void> {
  for (const name of names) {
    const res = await c.request('POST', 'event-types', { name, schema: { type: 'object' } });
    assert.equal(res.status, 201, JSON.stringify(res.body));
  }
}

async function dispatchOf(sql: Sql, endpointId: string, eventId: string) {
  const [row] = await sql<{ status: string; attempts: number; last_error: string | null }[]>`
    SELECT status, attempts, last_error FROM webhook_dispatches WHERE webhook_endpoint_id = ${endpointId} AND webhook_event_id = ${eventId}`;
  return row;
}

async function attemptsOf(sql: Sql, endpointId: string) {
  return sql<{ success: boolean; status_code: number | null; error: string | null }[]>`
    SELECT success, status_code, error FROM webhook_deliveries WHERE webhook_endpoint_id = ${endpointId} ORDER BY attempt_number, created_at`;
}

describe('transformations at delivery', () => {
  let c: TestCarteiro;
  let rx: TestReceiver;
  before(async () => {
    // The slow lane's interval would space a failing endpoint's retries a second apart: not what is tested here.
    // Checking code waits for the sandbox's one thread within the answer deadline; here that thread is
    // stopped and started again by the looping and memory-hungry tests, which on a loaded machine takes
    // seconds: the deadline is set far, so it only stops a hang.
    c = await startCarteiro({ env: { CARTEIRO_SLOW_LANE_INTERVAL_MS: '0', CARTEIRO_ANSWER_DEADLINE_MS: '60000' } });
    rx = await startReceiver();
    await registerTypes(c, ['order.placed', 'deal.closed', 'bad.run', 'contract.check']);
  });
  after(async () => {
    await c?.stop();
    await rx?.close();
  });

  test('the code decides body, headers and path; the signatures (both schemes) verify over the bytes sent', async () => {
    const ep = await createEndpoint(c, { url: `${rx.url}/base/`, events: ['order.placed'], transformation: SHAPE });
    assert.equal(ep.transformation, SHAPE, 'the response shows the code');
    assert.equal(ep.template, null);
    const plain = await createEndpoint(c, { url: `${rx.url}/data-only`, events: ['order.placed'], transformation: DATA_ONLY });
    // `name` is sealed at rest (CARTEIRO_PII_FIELDS): the code sees it opened, as the receiver would.
    const id = await trigger(c, { event_type: 'order.placed', data: { ref: 'A/7', amount: 21, name: 'Maria Oliveira' } });
    const [first, second] = await rx.waitFor(2);
    const shaped = [first, second].find((r) => r?.path.startsWith('/base'));
    const dataOnly = [first, second].find((r) => r?.path === '/data-only');
    assert.ok(shaped && dataOnly);

    assert.equal(shaped.path, '/base/orders/A%2F7?source=carteiro');
    assert.deepEqual(JSON.parse(shaped.body), { kind: 'order.placed', who: 'Maria Oliveira', total: 42, id });
    assert.equal(shaped.headers['x-tenant-ref'], 'ref-A/7');
    assert.equal(shaped.headers['x-amount'], '21');
    assert.equal(shaped.headers['content-type'], 'application/json');
    assert.equal(shaped.headers['webhook-id'], id);
    assert.ok(verifiesWithSeed(ep.secret, shaped), 'X-Webhook-Signature verifies over the transformed body');
    assert.ok(verifiesWithStandardWebhooks(ep.secret, shaped), 'webhook-signature verifies over the transformed body');

    // Without `payload` the envelope stays Carteiro's, with the data the code left.
    const envelope = JSON.parse(dataOnly.body);
    assert.deepEqual(envelope, { id, type: 'order.placed', timestamp: envelope.timestamp, data: { only: 'A/7' } });
    assert.ok(verifiesWithStandardWebhooks(plain.secret, dataOnly));
    await settled(c, { eventIds: [id] });
    assert.equal((await dispatchOf(c.services.ledger.sql, ep.id, id))?.status, 'succeeded');
  });

  test('a cancel settles the delivery without a request, and is not counted as an attempt', async () => {
    const ep = await createEndpoint(c, { url: `${rx.url}/cancel`, events: ['deal.closed'], transformation: CANCEL_SMALL });
    const small = await trigger(c, { event_type: 'deal.closed', data: { amount: 5 } });
    const big = await trigger(c, { event_type: 'deal.closed', data: { amount: 500 } });
    await settled(c, { endpointId: ep.id });
    const sql = c.services.ledger.sql;
    assert.deepEqual(
      { ...(await dispatchOf(sql, ep.id, small)) },
      { status: 'cancelled', attempts: 0, last_error: "cancelled by the endpoint's transformation (nothing was sent)" },
    );
    assert.equal((await dispatchOf(sql, ep.id, big))?.status, 'succeeded');
    const onCancelPath = rx.received.filter((r) => r.path === '/cancel');
    assert.equal(onCancelPath.length, 1, 'only the big one was sent');
    assert.equal(JSON.parse(onCancelPath[0]?.body ?? '{}').data.amount, 500);
    assert.equal((await attemptsOf(sql, ep.id)).length, 1, 'no attempt row for the cancel');
    const status = await c.request('GET', `events/${small}/status`);
    assert.equal(status.body.status, 'completed');
    assert.equal(status.body.deliveries[0].status, 'cancelled');
    const [counts] = await sql<
      { success_count: number; failure_count: number }[]
    >`SELECT success_count::int, failure_count::int FROM webhook_endpoints WHERE id = ${ep.id}`;
    assert.deepEqual({ ...counts }, { success_count: 1, failure_count: 0 });
  });

  test('code that throws, loops or eats memory fails its attempts, saying so; other endpoints deliver and the worker lives on', async () => {
    const bad = {
      throws: await createEndpoint(c, { url: `${rx.url}/throws`, events: ['bad.run'], transformation: THROWS }),
      loops: await createEndpoint(c, { url: `${rx.url}/loops`, events: ['bad.run'], transformation: LOOPS }),
      builtin: await createEndpoint(c, { url: `${rx.url}/builtin`, events: ['bad.run'], transformation: LOOPS_IN_BUILTIN }),
      hogs: await createEndpoint(c, { url: `${rx.url}/hogs`, events: ['bad.run'], transformation: HOGS }),
    };
    const good = await createEndpoint(c, { url: `${rx.url}/good`, events: ['bad.run'], transformation: DATA_ONLY });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await trigger(c, { event_type: 'bad.run', data: { ref: `r${i}` } }));
    const ledger = await settled(c, { eventIds: ids });
    assert.equal(ledger.byStatus.succeeded, 3, 'the good endpoint got every event');
    assert.equal(ledger.byStatus.failed, 12, 'every bad one failed for good after its retries');
    const sql = c.services.ledger.sql;
    const expected: Record<keyof typeof bad, RegExp> = {
      throws: /^transformation threw TypeError: cannot read property 'deeper' of undefined \(line 3\)/,
      loops: /^transformation timed out: it did not finish in time, the limit being 50 ms/,
      builtin: /^transformation timed out: it did not finish in time \(stopped by force after \d+ ms of CPU\), the limit being 50 ms/,
      // Filling its memory, QuickJS may spin in its allocator before it is full: then the watchdog
      // stops it, as a timeout (docs/transformations.md); on a thread an earlier hog left large, or a
      // slow core, its own time limit may come first. Either way it is said, and nothing crashes.
      hogs: /^transformation (ran out of memory.*: the limit is 16 MB|timed out: it did not finish in time( \(stopped by force after \d+ ms of CPU\))?, the limit being 50 ms)/,
    };
    for (const [name, ep] of Object.entries(bad) as [keyof typeof bad, { id: string }][]) {
      const attempts = await attemptsOf(sql, ep.id);
      assert.equal(attempts.length, 12, `${name}: 4 attempts (1 + 3 retries) for each of 3 events`);
      for (const a of attempts) {
        assert.equal(a.success, false);
        assert.equal(a.status_code, null);
        assert.match(a.error ?? '', expected[name], name);
      }
      const d = await dispatchOf(sql, ep.id, ids[0] as string);
      assert.match(d?.last_error ?? '', /\(gave up after 4 attempts\)$/, name);
      assert.equal(rx.received.filter((r) => r.path === `/${name}`).length, 0, `${name}: nothing was sent`);
    }
    assert.equal(rx.received.filter((r) => r.path === '/good').length, 3);

    // The worker is alive and delivers, through the sandbox too.
    const later = await trigger(c, { event_type: 'bad.run', data: { ref: 'after' } });
    await eventually(async () => (await dispatchOf(sql, good.id, later))?.status === 'succeeded', { what: 'a delivery after the bad runs' });
    assert.equal(c.services.dispatcher?.stats().inFlight !== undefined, true);
  });

  test('a returned value that breaks the contract is a failed attempt naming what is wrong', async () => {
    const cases: [string, string, RegExp][] = [
      ['signature', "function handler(w) { w.headers['Webhook-Signature'] = 'v1,forged'; return w; }", /headers\["Webhook-Signature"\] is set by Carteiro/],
      ['ctype', "function handler(w) { w.headers['content-type'] = 'text/plain'; return w; }", /headers\["content-type"\] is set by Carteiro/],
      ['escape', "function handler(w) { w.path = '/../../admin'; return w; }", /path may not hold "\." or "\.\." segments/],
      ['nothing', 'function handler(w) { }', /handler must return the webhook object \(it returned null\)/],
    ];
    const eps: Record<string, string> = {};
    for (const [name, code] of cases)
      eps[name] = (await createEndpoint(c, { url: `${rx.url}/contract-${name}`, events: ['contract.check'], transformation: code })).id;
    const id = await trigger(c, { event_type: 'contract.check', data: {} });
    await settled(c, { eventIds: [id] });
    for (const [name, , pattern] of cases) {
      const [first] = await attemptsOf(c.services.ledger.sql, eps[name] as string);
      assert.match(first?.error ?? '', /^transformation returned an invalid webhook: /, name);
      assert.match(first?.error ?? '', pattern, name);
    }
    assert.equal(rx.received.filter((r) => r.path.startsWith('/contract-')).length, 0);
  });
});

describe('transformations on the API', () => {
  let c: TestCarteiro;
  let rx: TestReceiver;
  let orgKey: string;
  before(async () => {
    c = await startCarteiro();
    rx = await startReceiver();
    await registerTypes(c, ['preview.only', 'member.joined']);
    const org = (await c.request('POST', 'organizations', { name: 'Other' })).body;
    orgKey = (await c.request('POST', `organizations/${org.id}/keys`, { name: 'k' })).body.key;
  });
  after(async () => {
    await c?.stop();
    await rx?.close();
  });

  async function endpointCount(): Promise<number> {
    const [row] = await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_endpoints`;
    return row?.n ?? 0;
  }

  const BROKEN: [string, string, RegExp][] = [
    ['syntax', 'function handler(webhook) {\n  return webhook +\n}', /^transformation: does not compile: SyntaxError: .* \(line 3\)$/],
    ['no handler', 'function transform(webhook) { return webhook; }', /^transformation: the code must define a function named handler/],
    ['not a function', 'const handler = 42;', /^transformation: the code must define a function named handler/],
    ['top level throws', 'throw new Error("nope");\nfunction handler(w) { return w; }', /^transformation: its top level fails: threw Error: nope \(line 1\)$/],
    ['top level loops', 'while (true) {}\nfunction handler(w) { return w; }', /^transformation: its top level fails: timed out/],
    ['empty', '   ', /^transformation: is empty/],
  ];

  test('code that cannot run is a 422 naming `transformation` on create and PATCH, and nothing changes', async () => {
    const before = await endpointCount();
    for (const [what, code, message] of BROKEN) {
      const res = await c.request('POST', 'endpoints', { name: 'bad', url: `${rx.url}/bad`, transformation: code });
      assert.equal(res.status, 422, `${what}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.code, 'CARTEIRO_INVALID_TRANSFORMATION', what);
      assert.equal(res.body.details.field, 'transformation', what);
      assert.match(res.body.message, message, what);
    }
    assert.equal(await endpointCount(), before, 'no endpoint was created');

    const ep = await createEndpoint(c, { url: `${rx.url}/kept`, transformation: DATA_ONLY });
    for (const [what, code] of BROKEN) {
      const res = await c.request('PATCH', `endpoints/${ep.id}`, { transformation: code, name: 'renamed' });
      assert.equal(res.status, 422, what);
      assert.equal(res.body.details.field, 'transformation', what);
    }
    const shown = await c.request('GET', `endpoints/${ep.id}`);
    assert.equal(shown.body.transformation, DATA_ONLY);
    assert.equal(shown.body.name, 'test');

    // Replaced, then removed.
    let res = await c.request('PATCH', `endpoints/${ep.id}`, { transformation: SHAPE });
    assert.equal(res.status, 200);
    assert.equal(res.body.transformation, SHAPE);
    res = await c.request('PATCH', `endpoints/${ep.id}`, { transformation: null });
    assert.equal(res.status, 200);
    assert.equal(res.body.transformation, null);
  });

  test('templates: listed with their code; `template` fills in the code, which can then be edited', async () => {
    const list = await c.request('GET', 'transformation-templates');
    assert.equal(list.status, 200);
    assert.deepEqual(
      list.body.data.map((t: { name: string }) => t.name),
      ['slack', 'discord', 'teams', 'google-chat', 'telegram', 'n8n', 'passthrough'],
    );
    const slack = list.body.data.find((t: { name: string }) => t.name === 'slack');
    assert.match(slack.source, /function handler\(webhook\)/);

    const ep = await createEndpoint(c, { url: `${rx.url}/slack`, template: 'slack' });
    assert.equal(ep.template, 'slack');
    assert.equal(ep.transformation, slack.source);
    const edited = (ep.transformation as string).replace(
      "text: title(webhook.event_type) + ' (' + webhook.event_type + ')'",
      "text: 'edited ' + webhook.event_type",
    );
    const res = await c.request('PATCH', `endpoints/${ep.id}`, { transformation: edited });
    assert.equal(res.status, 200);
    assert.equal(res.body.transformation, edited);
    assert.equal(res.body.template, 'slack', 'the label says where the code came from');
    const preview = await c.request('POST', `endpoints/${ep.id}/transformation/preview`, { event_type: 'user.registered', data: { user_id: 'u1' } });
    assert.equal(preview.body.request.body.text, 'edited user.registered');

    const tg = await c.request('POST', 'endpoints', { name: 'tg', url: `${rx.url}/bot123`, template: 'telegram' });
    assert.equal(tg.status, 422);
    assert.equal(tg.body.details.field, 'template_options.chat_id');
    const badId = await c.request('POST', 'endpoints', {
      name: 'tg',
      url: `${rx.url}/bot123`,
      template: 'telegram',
      template_options: { chat_id: 'not an id' },
    });
    assert.equal(badId.body.details.field, 'template_options.chat_id');
    const unknown = await c.request('POST', 'endpoints', { name: 'x', url: `${rx.url}/x`, template: 'myspace' });
    assert.equal(unknown.status, 422);
    assert.equal(unknown.body.details.field, 'template');
    const extra = await c.request('POST', 'endpoints', { name: 'x', url: `${rx.url}/x`, template: 'slack', template_options: { channel: '#general' } });
    assert.equal(extra.body.details.field, 'template_options.channel');
  });

  test('the telegram template posts to <endpoint URL>/sendMessage with its chat_id', async () => {
    const ep = await createEndpoint(c, {
      url: `${rx.url}/bot123:ABC`,
      events: ['member.joined'],
      template: 'telegram',
      template_options: { chat_id: '-1001234567890' },
    });
    const id = await trigger(c, { event_type: 'member.joined', data: { user_id: 'u-tg', plan: 'pro' } });
    await settled(c, { eventIds: [id] });
    const got = rx.received.filter((r) => r.path === '/bot123:ABC/sendMessage');
    assert.equal(got.length, 1);
    const body = JSON.parse(got[0]?.body ?? '{}');
    assert.equal(body.chat_id, '-1001234567890');
    assert.match(body.text, /^Member joined \(member\.joined\)\nuser_id: u-tg\nplan: pro\nevent /);
    assert.ok(verifiesWithStandardWebhooks(ep.secret, got[0] as never));
  });

  test('preview: stored and sample events, unsaved code, cancels and failures; nothing is sent or written', async () => {
    const ep = await createEndpoint(c, {
      url: `${rx.url}/preview`,
      events: ['preview.only'],
      transformation: SHAPE,
      include_fields: ['ref', 'amount', 'name'],
    });
    // A stored event, held: the endpoint is disabled so the event is not delivered meanwhile.
    await c.request('POST', `endpoints/${ep.id}/disable`, {});
    const stored = await trigger(c, { event_type: 'preview.only', data: { ref: 'P1', amount: 5, name: 'Ana', secret_note: 'not for this endpoint' } });
    // Endpoints of earlier tests that take every type get it: let them, before counting what was sent.
    await settled(c, { eventIds: [stored] });
    const sentBefore = rx.received.length;
    const [attemptsBefore] = await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_deliveries`;

    const fromStored = await c.request('POST', `endpoints/${ep.id}/transformation/preview`, { event_id: stored });
    assert.equal(fromStored.status, 200, JSON.stringify(fromStored.body));
    assert.equal(fromStored.body.transformed, true);
    assert.equal(fromStored.body.cancelled, false);
    assert.equal(fromStored.body.request.method, 'POST');
    assert.equal(fromStored.body.request.url, `${rx.url}/preview/orders/P1?source=carteiro`);
    assert.deepEqual(fromStored.body.request.body, { kind: 'preview.only', who: 'Ana', total: 10, id: stored });
    assert.equal(fromStored.body.request.headers['x-tenant-ref'], 'ref-P1');
    assert.equal(fromStored.body.request.headers['content-type'], 'application/json');
    assert.equal(typeof fromStored.body.duration_ms, 'number');

    const sample = await c.request('POST', `endpoints/${ep.id}/transformation/preview`, {
      event_type: 'preview.only',
      data: { ref: 'S', amount: 1, secret_note: 'x' },
    });
    assert.equal(sample.status, 200);
    assert.equal(sample.body.request.body.total, 2);

    // Unsaved code: the endpoint's allow-list still applies to what it sees.
    const unsaved = await c.request('POST', `endpoints/${ep.id}/transformation/preview`, {
      event_id: stored,
      transformation: 'function handler(w) { w.payload = { keys: Object.keys(w.data) }; return w; }',
    });
    assert.deepEqual(unsaved.body.request.body, { keys: ['ref', 'amount', 'name'] });
    const cancel = await c.request('POST', `endpoints/${ep.id}/transformation/preview`, { event_id: stored, transformation: CANCEL_SMALL });
    assert.deepEqual({ ...cancel.body, duration_ms: 0 }, { transformed: true, cancelled: true, request: null, duration_ms: 0 });

    const threw = await c.request('POST', `endpoints/${ep.id}/transformation/preview`, { event_id: stored, transformation: THROWS });
    assert.equal(threw.status, 422);
    assert.equal(threw.body.code, 'CARTEIRO_TRANSFORMATION_FAILED');
    assert.deepEqual(threw.body.details, { field: 'transformation', kind: 'threw', line: 3 });
    const looped = await c.request('POST', `endpoints/${ep.id}/transformation/preview`, { event_type: 'preview.only', data: {}, transformation: LOOPS });
    assert.equal(looped.status, 422);
    assert.equal(looped.body.details.kind, 'timeout');
    const broken = await c.request('POST', `endpoints/${ep.id}/transformation/preview`, { event_id: stored, transformation: 'function handler(' });
    assert.equal(broken.status, 422);
    assert.equal(broken.body.code, 'CARTEIRO_INVALID_TRANSFORMATION');

    // Without code, the preview is Carteiro's envelope, as it would be sent.
    const plainEp = await createEndpoint(c, { url: `${rx.url}/plain`, events: ['preview.only'] });
    const plain = await c.request('POST', `endpoints/${plainEp.id}/transformation/preview`, { event_id: stored });
    assert.equal(plain.body.transformed, false);
    assert.equal(plain.body.request.url, `${rx.url}/plain`);
    assert.equal(plain.body.request.body.data.secret_note, 'not for this endpoint');

    for (const body of [{}, { event_id: stored, event_type: 'preview.only' }]) {
      const res = await c.request('POST', `endpoints/${ep.id}/transformation/preview`, body);
      assert.equal(res.status, 400);
      assert.equal(res.body.details.field, 'event_id');
    }
    assert.equal(rx.received.length, sentBefore, 'previews send nothing');
    const [attemptsAfter] = await c.services.ledger.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_deliveries`;
    assert.equal(attemptsAfter?.n, attemptsBefore?.n, 'previews write no attempt');
  });

  test("preview across organizations is a 404: another organization's endpoint, or its event", async () => {
    const asOrg = { authorization: `Bearer ${orgKey}` };
    const mine = await createEndpoint(c, { url: `${rx.url}/default-org`, transformation: DATA_ONLY });
    const defaultEvent = await trigger(c, { event_type: 'member.joined', data: { user_id: 'u-default' } });
    const theirs = await c.request('POST', 'endpoints', { name: 'theirs', url: `${rx.url}/other-org`, transformation: DATA_ONLY }, asOrg);
    assert.equal(theirs.status, 201);

    const other = await c.request('POST', `endpoints/${mine.id}/transformation/preview`, { event_type: 'user.registered', data: {} }, asOrg);
    assert.equal(other.status, 404);
    assert.equal(other.body.code, 'CARTEIRO_NOT_FOUND');
    const foreignEvent = await c.request('POST', `endpoints/${theirs.body.id}/transformation/preview`, { event_id: defaultEvent }, asOrg);
    assert.equal(foreignEvent.status, 404);
    assert.match(foreignEvent.body.message, /^event /);
    // The admin key sees both, and still never renders one organization's event for another's endpoint.
    const admin = await c.request('POST', `endpoints/${theirs.body.id}/transformation/preview`, { event_id: defaultEvent });
    assert.equal(admin.status, 404);
    const own = await c.request('POST', `endpoints/${theirs.body.id}/transformation/preview`, { event_type: 'user.registered', data: { ref: 'mine' } }, asOrg);
    assert.equal(own.status, 200);
  });
});

describe("a transformation's path", () => {
  test('is appended below the endpoint URL, never elsewhere', () => {
    const ok = (url: string, path: unknown) => {
      const r = appendPath(url, path);
      assert.ok(r.ok, `${url} + ${String(path)}: ${r.ok ? '' : r.error}`);
      return r.value;
    };
    assert.equal(ok('https://api.telegram.org/bot1:x', '/sendMessage'), 'https://api.telegram.org/bot1:x/sendMessage');
    assert.equal(ok('https://h.example/hooks/', '/a/b'), 'https://h.example/hooks/a/b');
    assert.equal(ok('https://h.example/v1/messages?key=k&token=t', '/x?thread=1'), 'https://h.example/v1/messages/x?key=k&token=t&thread=1');
    assert.equal(ok('https://h.example', '/@evil.example/x'), 'https://h.example/@evil.example/x');
    assert.equal(ok('https://h.example/orders', '/A%2F7'), 'https://h.example/orders/A%2F7');
    assert.equal(ok('https://h.example/a', null), 'https://h.example/a');
    for (const path of [
      '//evil.example/x',
      '/../admin',
      '/a/%2e%2e/b',
      '/a/%2F..%2F/b',
      '/a/x%5C..',
      '/a\\b',
      '/a#frag',
      'evil.example',
      '.evil.example',
      ':8080/x',
      '/a b',
      '/é',
      42,
      '/a/%zz',
    ]) {
      const r = appendPath('https://h.example/hooks', path);
      assert.equal(r.ok, false, `${JSON.stringify(path)} is refused`);
    }
  });
});
