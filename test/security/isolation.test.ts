// Two organizations, each with its own key. For every route, B's key gets 404 for A's resources
// (403 on the admin-only routes, whose answer does not depend on the resource), listings show B only
// its own rows, and nothing B does changes anything of A's. The last test sweeps every route the API
// describes (OpenAPI), so a route added later is held to the same rule without being listed here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, eventually, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { createOrgWithKey, injectRaw, withKey, type TestOrg } from './tenancy-helpers.ts';

const MARK_A = 'zebra-secret-of-a';
let c: TestCarteiro;
let receiver: TestReceiver;
let A: TestOrg;
let B: TestOrg;
let asA: ReturnType<typeof withKey>;
let asB: ReturnType<typeof withKey>;
const a = {
  endpoint: '',
  event: '',
  typedEvent: '',
  workflow: '',
  workflowN8nId: `wf-${MARK_A}`,
  job: '',
  eventType: 'acmeiso.thing',
  kebab: 'acmeiso-thing',
  user: `user-${MARK_A}`,
};
const b = { endpoint: '', event: '' };

/** Everything of A's that must never appear in an answer to B (unless B itself put it in the URL). */
const secretsOfA = () => [MARK_A, A.id, a.endpoint, a.event, a.typedEvent, a.workflow, a.eventType, A.keyId];

function assertNoLeak(what: string, body: unknown, url = '') {
  const text = JSON.stringify(body) ?? '';
  for (const s of secretsOfA()) {
    if (s && !url.includes(s)) assert.ok(!text.includes(s), `${what} leaked "${s}": ${text.slice(0, 300)}`);
  }
}

before(async () => {
  c = await startCarteiro({ env: { CARTEIRO_INGRESS_RATE_PER_SECOND: '0' } });
  receiver = await startReceiver();
  A = await createOrgWithKey(c, `Org A ${MARK_A}`);
  B = await createOrgWithKey(c, 'Org B');
  asA = withKey(c, A.key);
  asB = withKey(c, B.key);

  const epA = await asA('POST', 'endpoints', { name: `ep ${MARK_A}`, url: `${receiver.url}/a`, events: ['*'], description: MARK_A });
  assert.equal(epA.status, 201, JSON.stringify(epA.body));
  a.endpoint = epA.body.id;
  const typeA = await asA('POST', 'event-types', { name: a.eventType, description: MARK_A });
  assert.equal(typeA.status, 201, JSON.stringify(typeA.body));
  const evA = await asA('POST', 'trigger', { event_type: 'user.registered', data: { user_id: a.user, email: `${MARK_A}@example.com`, name: MARK_A } });
  assert.equal(evA.status, 202, JSON.stringify(evA.body));
  a.event = evA.body.event_id;
  const typed = await asA('POST', `events/${a.kebab}`, { note: MARK_A });
  assert.equal(typed.status, 202, JSON.stringify(typed.body));
  a.typedEvent = typed.body.event_id;
  const wf = await asA('POST', 'n8n/workflows', {
    workflow_id: a.workflowN8nId,
    name: `wf ${MARK_A}`,
    webhook_url: `${receiver.url}/webhook/a`,
    event_types: ['payment.confirmed'],
  });
  assert.equal(wf.status, 201, JSON.stringify(wf.body));
  a.workflow = wf.body.id;

  const epB = await asB('POST', 'endpoints', { name: 'ep of b', url: `${receiver.url}/b`, events: ['*'] });
  b.endpoint = epB.body.id;
  const evB = await asB('POST', 'trigger', { event_type: 'user.registered', data: { user_id: 'user-b', email: 'b@example.com', name: 'b' } });
  b.event = evB.body.event_id;

  // Both events delivered (A's two to its endpoint, B's one to its own), so attempts exist.
  await receiver.waitFor(3);
  await eventually(async () => (await asA('GET', `events/${a.event}/status`)).body.status === 'completed', { what: "A's event delivered" });
  await eventually(async () => (await asB('GET', `events/${b.event}/status`)).body.status === 'completed', { what: "B's event delivered" });

  const job = await asA('POST', 'replay', { status: 'completed', endpoint_id: a.endpoint });
  assert.equal(job.status, 202);
  a.job = job.body.job_id;
  await eventually(async () => (await asA('GET', `jobs/${a.job}`)).body.state === 'completed', { what: "A's replay job" });
  await receiver.waitFor(5);
});

after(async () => {
  await c?.stop();
  await receiver?.close();
});

test("B's key gets 404 for each of A's resources, on every resource route", async () => {
  const notFound: [string, string, unknown?][] = [
    ['GET', `endpoints/${a.endpoint}`],
    ['PATCH', `endpoints/${a.endpoint}`, { name: 'hijacked' }],
    ['PATCH', `endpoints/${a.endpoint}`, { url: `${receiver.url}/stolen` }],
    ['POST', `endpoints/${a.endpoint}/disable`, { reason: 'b was here' }],
    ['POST', `endpoints/${a.endpoint}/enable`, {}],
    ['POST', `endpoints/${a.endpoint}/rotate-secret`, {}],
    ['GET', `endpoints/${a.endpoint}/attempts`],
    ['DELETE', `endpoints/${a.endpoint}`],
    ['GET', `events/${a.event}`],
    ['GET', `events/${a.event}/status`],
    ['GET', `events/${a.event}/attempts`],
    ['POST', `events/${a.event}/replay`, {}],
    ['POST', `events/${a.event}/replay`, { endpoint_id: a.endpoint }],
    ['GET', `events/${a.typedEvent}`],
    ['GET', `jobs/${a.job}`],
    ['POST', `events/${a.kebab}`, { note: 'b' }], // A's custom event type is not in B's catalog
    ['GET', `n8n/workflows/${a.workflow}`],
    ['GET', `n8n/workflows/${a.workflowN8nId}`],
    ['PATCH', `n8n/workflows/${a.workflow}`, { name: 'hijacked' }],
    ['POST', `n8n/workflows/${a.workflow}/disable`, {}],
    ['POST', `n8n/workflows/${a.workflow}/enable`, {}],
    ['GET', `n8n/workflows/${a.workflow}/attempts`],
    ['DELETE', `n8n/workflows/${a.workflow}`],
    ['DELETE', `n8n/workflows/${a.workflowN8nId}`],
  ];
  for (const [method, path, body] of notFound) {
    const res = await asB(method, path, body);
    assert.equal(res.status, 404, `${method} ${path} → ${res.status} ${JSON.stringify(res.body)}`);
    assertNoLeak(`${method} ${path}`, res.body, path);
  }
});

test("B cannot write into A: naming A's organization is refused without saying whether it exists", async () => {
  const unknownOrg = '01900000-0000-7000-8000-00000000abcd';
  for (const org of [A.id, unknownOrg]) {
    const viaBody = await asB('POST', 'trigger', {
      event_type: 'user.registered',
      organization_id: org,
      data: { user_id: 'x', email: 'x@example.com', name: 'x' },
    });
    assert.equal(viaBody.status, 403);
    const viaHeader = await asB('GET', 'endpoints', undefined, { 'x-organization-id': org });
    assert.equal(viaHeader.status, 403);
    const batch = await asB('POST', 'events/batch', {
      events: [{ event_type: 'user.registered', organization_id: org, data: { user_id: 'x', email: 'x@example.com', name: 'x' } }],
    });
    assert.equal(batch.status, 403);
    // Same answer for an organization that exists and one that does not: nothing to learn.
    assert.equal(
      viaBody.body.message,
      (await asB('POST', 'trigger', { event_type: 'user.registered', organization_id: unknownOrg, data: { user_id: 'x', email: 'x@example.com', name: 'x' } }))
        .body.message,
    );
  }
  // B replaying its own event "to" A's endpoint, alone or in bulk, is a 404 as for an endpoint that
  // does not exist: the same answer but for the id B sent, so it learns nothing.
  const noEndpoint = '01900000-0000-7000-8000-00000000beef';
  for (const [path, body] of [
    [`events/${b.event}/replay`, {}],
    ['replay', { status: 'completed' }],
  ] as const) {
    const cross = await asB('POST', path, { ...body, endpoint_id: a.endpoint });
    assert.equal(cross.status, 404, `${path}: ${JSON.stringify(cross.body)}`);
    assert.equal(cross.body.details.field, 'endpoint_id');
    const missing = await asB('POST', path, { ...body, endpoint_id: noEndpoint });
    assert.equal(missing.status, 404);
    assert.deepEqual(
      { ...cross.body, message: cross.body.message.replace(a.endpoint, '<id>') },
      { ...missing.body, message: missing.body.message.replace(noEndpoint, '<id>') },
    );
  }
  // Erasing "A's user" with B's key erases in B's organization only.
  const erased = await asB('DELETE', `users/${a.user}/data`);
  assert.ok(erased.status < 500);
  assert.equal((await asA('GET', `events/${a.event}`)).status, 200);
});

test('listings show each organization only its own rows', async () => {
  const lists = [
    'endpoints',
    'events',
    'events?limit=500',
    `events?user_id=${a.user}`,
    'event-types',
    'n8n/workflows',
    `endpoints/${b.endpoint}/attempts`,
    `events/${b.event}/attempts`,
    `events/${b.event}/status`,
  ];
  for (const path of lists) {
    const res = await asB('GET', path);
    assert.equal(res.status, 200, `${path}: ${JSON.stringify(res.body)}`);
    assertNoLeak(path, res.body, path);
  }
  const endpoints = await asB('GET', 'endpoints');
  assert.deepEqual(
    endpoints.body.data.map((e: { id: string }) => e.id),
    [b.endpoint],
  );
  const events = await asB('GET', 'events');
  assert.ok(events.body.data.every((e: { organization_id: string }) => e.organization_id === B.id));
  assert.ok(events.body.data.some((e: { id: string }) => e.id === b.event));
  assert.deepEqual((await asB('GET', `events?user_id=${a.user}`)).body.data, []);
  const types = await asB('GET', 'event-types');
  assert.ok(!types.body.data.some((t: { name: string }) => t.name === a.eventType));
  assert.deepEqual((await asB('GET', 'n8n/workflows')).body.data, []);

  // And A sees its own.
  const ofA = await asA('GET', 'endpoints');
  assert.ok(ofA.body.data.some((e: { id: string }) => e.id === a.endpoint));
  assert.ok(!ofA.body.data.some((e: { id: string }) => e.id === b.endpoint));
});

test("stats figures count only the caller's organization", async () => {
  const statsB = await asB('GET', 'stats');
  assert.equal(statsB.status, 200);
  assertNoLeak('stats', statsB.body);
  assert.equal(statsB.body.last_hour.events, 1, JSON.stringify(statsB.body));
  assert.equal(statsB.body.last_hour.delivered, 1);
  const statsA = await asA('GET', 'stats');
  assert.equal(statsA.body.last_hour.events, 2);
  assert.ok(statsA.body.last_hour.delivered >= 3, JSON.stringify(statsA.body)); // 2 deliveries + the replay
  const all = await c.request('GET', 'stats');
  assert.ok(all.body.last_hour.events >= 3);
});

test("B's live stream carries none of A's activity", async () => {
  // B listens, beside A, while A triggers an event. B's stream is read until A's own has shown that
  // activity (so it had its chance to leak); the deadline only stops a hang.
  let aSawIt = false;
  let left = 2;
  let bothSubscribed = () => {};
  const subscribed = new Promise<void>((r) => (bothSubscribed = r));
  const onStream = () => void (--left === 0 && bothSubscribed());
  const watching = injectRaw(
    c,
    { method: 'GET', url: '/api/webhooks/live', headers: { authorization: `Bearer ${A.key}` } },
    {
      streamMs: 60_000,
      until: (body) => (aSawIt = body.includes('events.accepted')),
      onStream,
    },
  );
  const listening = injectRaw(
    c,
    { method: 'GET', url: '/api/webhooks/live', headers: { authorization: `Bearer ${B.key}` } },
    { streamMs: 60_000, stopWhen: watching, onStream },
  );
  await Promise.race([subscribed, listening, watching]);
  const ev = await asA('POST', 'trigger', { event_type: 'user.registered', data: { user_id: a.user, email: `${MARK_A}@example.com`, name: MARK_A } });
  assert.equal(ev.status, 202);
  const mine = await watching;
  const seen = await listening;
  assert.notEqual(seen, 'hung');
  if (seen === 'hung') return;
  if (seen.status === 404) return; // no live route in this build
  assert.equal(seen.status, 200);
  for (const s of [...secretsOfA(), ev.body.event_id]) assert.ok(!seen.body.includes(s), `live stream leaked "${s}"`);
  // A's own stream, by contrast, is not empty-handed: the same activity shows up there.
  assert.ok(mine !== 'hung' && aSawIt, 'A sees its own activity on its stream');
});

test("after everything B tried, A's resources are unchanged", async () => {
  const ep = await asA('GET', `endpoints/${a.endpoint}`);
  assert.equal(ep.status, 200);
  assert.equal(ep.body.name, `ep ${MARK_A}`);
  assert.equal(ep.body.url, `${receiver.url}/a`);
  assert.equal(ep.body.is_active, true);
  const [row] = await c.services.ledger.sql<{ previous_secret: string | null }[]>`SELECT previous_secret FROM webhook_endpoints WHERE id = ${a.endpoint}`;
  assert.equal(row?.previous_secret, null, 'secret was never rotated');
  const wf = await asA('GET', `n8n/workflows/${a.workflow}`);
  assert.equal(wf.status, 200);
  assert.equal(wf.body.name, `wf ${MARK_A}`);
  assert.equal(wf.body.is_active, true);
  assert.equal((await asA('GET', `events/${a.event}`)).status, 200);
  assert.equal((await asA('GET', `jobs/${a.job}`)).status, 200);
});

test("sweep: every route in the API description, called by B with A's ids, answers no 2xx and leaks nothing", async () => {
  const spec = c.app.swagger() as { paths: Record<string, Record<string, { security?: unknown[] }>> };
  const candidates: Record<string, string[]> = {
    id: [a.endpoint, a.event, a.typedEvent, a.workflow, a.workflowN8nId, a.job, A.id],
    keyId: [A.keyId],
    name: [a.kebab],
  };
  // Params whose value is not an organization's resource: a 2xx there is fine, as long as A is untouched.
  const unscopedParams = new Set(['user_id']);
  let calls = 0;
  for (const [template, methods] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      if (Array.isArray(op.security) && op.security.length === 0) continue; // public (health, supabase)
      const params = [...template.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
      const combos: string[] = [];
      if (params.length === 0) combos.push(template);
      else {
        let paths = [template];
        for (const p of params) {
          const values = candidates[p] ?? (unscopedParams.has(p) ? [a.user] : [a.endpoint]);
          paths = paths.flatMap((t) => values.map((v) => t.replace(`{${p}}`, encodeURIComponent(v))));
        }
        combos.push(...paths);
      }
      for (const path of combos) {
        const verb = method.toUpperCase();
        const res = await injectRaw(c, {
          method: verb,
          url: path,
          headers: { authorization: `Bearer ${B.key}` },
          ...(['POST', 'PUT', 'PATCH'].includes(verb) ? { payload: {} } : {}),
        });
        calls++;
        assert.notEqual(res, 'hung', `${verb} ${path} did not answer`);
        if (res === 'hung') continue;
        assert.ok(res.status < 500, `${verb} ${path} → ${res.status}`);
        if (params.length > 0 && !params.every((p) => unscopedParams.has(p))) {
          assert.ok(res.status >= 400, `${verb} ${path} with A's id answered ${res.status} to B: ${res.body.slice(0, 300)}`);
        }
        assertNoLeak(`${verb} ${path}`, res.body, path);
      }
    }
  }
  assert.ok(calls > 40, `swept ${calls} calls`);
  // Nothing of A's moved.
  assert.equal((await asA('GET', `endpoints/${a.endpoint}`)).body.is_active, true);
  assert.equal((await asA('GET', `n8n/workflows/${a.workflow}`)).status, 200);
  assert.equal((await asA('GET', `events/${a.event}`)).status, 200);
  assert.equal((await asA('GET', 'organizations')).status, 403);
  const keys = await c.request('GET', `organizations/${A.id}/keys`);
  assert.equal(keys.body.data[0].active, true);
});
