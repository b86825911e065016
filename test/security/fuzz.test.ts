// Fuzz: thousands of malformed, oversized, wrongly-typed and hostile requests against every route the
// API has (read from its OpenAPI description, so routes added later are fuzzed too), plus odd methods
// and odd paths. Every answer must be a 4xx (or a 2xx for a harmless read), never a 5xx; the process
// must not crash; no event may be stored; no prototype may be polluted; and afterwards the service
// still answers a normal request normally.
//
// Bounded: at most MAX_REQUESTS requests and BUDGET_MS of sending. The generator is seeded
// (FUZZ_SEED=… to replay a run); the seed is printed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, TEST_ADMIN_KEY, type TestCarteiro } from '../support/carteiro.ts';
import { createOrgWithKey, injectRaw, type TestOrg } from './tenancy-helpers.ts';

const MAX_REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 6000);
const BUDGET_MS = Number(process.env.FUZZ_BUDGET_MS ?? 60_000);
/** An answer slower than this counts as a failure (the request is abandoned, not awaited). */
const REQUEST_TIMEOUT_MS = 5_000;
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
const VALID_DATA = { user_id: 'fuzz-user', email: 'fuzz@example.com', name: 'Fuzz' };

/** mulberry32: small, seeded, good enough to pick cases. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(SEED);
const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)] as T;

const nestedArray = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const nestedObject = (depth: number, leaf = '1') => '{"a":'.repeat(depth) + leaf + '}'.repeat(depth);

/** Raw bodies: each is broken or hostile in some way, whatever the route. */
const HOSTILE_BODIES: { name: string; body: string | Buffer; contentType?: string }[] = [
  // malformed JSON
  { name: 'truncated object', body: '{"event_type":"user.registered","data":{' },
  { name: 'truncated string', body: '{"name":"abc' },
  { name: 'trailing garbage', body: '{"name":"x"}}}garbage' },
  { name: 'single quotes', body: "{'name':'x'}" },
  { name: 'comments', body: '{/* c */"name":"x"}' },
  { name: 'NaN', body: '{"limit":NaN}' },
  { name: 'bare word', body: 'undefined' },
  { name: 'lone comma', body: ',' },
  { name: 'empty', body: '' },
  { name: 'whitespace', body: '   \n\t ' },
  { name: 'BOM then JSON', body: '\ufeff{"name":"x"}' },
  { name: 'json null', body: 'null' },
  { name: 'json number', body: '42' },
  { name: 'json string', body: '"just a string"' },
  { name: 'json array', body: '[1,2,3]' },
  { name: 'json true', body: 'true' },
  // bad UTF-8 and odd unicode
  {
    name: 'invalid utf-8 bytes',
    body: Buffer.concat([
      Buffer.from('{"event_type":"user.registered","data":{"name":"'),
      Buffer.from([0xff, 0xfe, 0xc3, 0x28, 0xa0, 0xa1]),
      Buffer.from('","user_id":"u","email":"e@x.io"}}'),
    ]),
  },
  { name: 'overlong utf-8', body: Buffer.concat([Buffer.from('{"name":"'), Buffer.from([0xc0, 0xaf, 0xe0, 0x80, 0xaf]), Buffer.from('"}')]) },
  {
    name: 'truncated utf-8 sequence',
    body: Buffer.concat([
      Buffer.from('{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"'),
      Buffer.from([0xe2, 0x82]),
      Buffer.from('"}}'),
    ]),
  },
  { name: 'lone surrogate escape', body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"\\ud800"}}' },
  { name: 'NUL escape', body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"a\\u0000b"}}' },
  { name: 'NUL in key', body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n","k\\u0000":1}}' },
  { name: 'raw NUL byte', body: Buffer.concat([Buffer.from('{"name":"a'), Buffer.from([0]), Buffer.from('b"}')]) },
  { name: 'utf-16 body', body: Buffer.from('{"name":"x"}', 'utf16le'), contentType: 'application/json; charset=utf-16' },
  // deep nesting
  { name: 'deep array 10k', body: nestedArray(10_000) },
  { name: 'deep object 10k', body: nestedObject(10_000) },
  { name: 'deep data 10k', body: `{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n","x":${nestedObject(10_000)}}}` },
  { name: 'deep data 200', body: `{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n","x":${nestedArray(200)}}}` },
  { name: 'deep batch', body: `{"events":[{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n","x":${nestedObject(5_000)}}}]}` },
  // huge numbers
  { name: 'number 1e400 in data', body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n","amount":1e400}}' },
  { name: 'number -1e400 in data', body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n","amount":-1e400}}' },
  { name: 'huge integer as limit', body: '{"limit":123456789012345678901234567890,"overlap_seconds":1e400,"rate_limit_per_second":1e300}' },
  { name: 'huge exponent', body: '{"name":1e999999999}' },
  { name: '1000-digit number', body: `{"overlap_seconds":${'9'.repeat(1000)}}` },
  { name: 'priority number', body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n"},"priority":1e308}' },
  // prototype pollution
  { name: '__proto__ top', body: '{"__proto__":{"polluted":"yes"},"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n"}}' },
  { name: '__proto__ in data', body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n","__proto__":{"polluted":"yes"}}}' },
  { name: 'constructor.prototype top', body: '{"constructor":{"prototype":{"polluted":"yes"}},"name":"x","url":"http://127.0.0.1:9/x"}' },
  {
    name: 'constructor.prototype in data',
    body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n","constructor":{"prototype":{"polluted":"yes"}}}}',
  },
  { name: '__proto__ in metadata', body: '{"name":"x","url":"http://127.0.0.1:9/x","metadata":{"__proto__":{"polluted":"yes"}}}' },
  {
    name: '__proto__ deep',
    body: `{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n","a":{"b":{"c":{"__proto__":{"polluted":"yes"}}}}}}`,
  },
  {
    name: '__proto__ escaped',
    body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n","\\u005f_proto__":{"polluted":"yes"}}}',
  },
  {
    name: '__proto__ in batch',
    body: '{"events":[{"__proto__":{"polluted":"yes"},"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n"}}]}',
  },
  // wrong types and unknown fields
  { name: 'data as string', body: '{"event_type":"user.registered","data":"{\\"user_id\\":\\"u\\"}"}' },
  { name: 'data as array', body: '{"event_type":"user.registered","data":[1,2]}' },
  { name: 'data null', body: '{"event_type":"user.registered","data":null}' },
  { name: 'event_type number', body: '{"event_type":42,"data":{}}' },
  { name: 'event_type array', body: '{"event_type":["user.registered"],"data":{}}' },
  { name: 'event_type object', body: '{"event_type":{"$ne":null},"data":{}}' },
  { name: 'unknown top-level field', body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n"},"sneaky":true}' },
  {
    name: 'organization_id not uuid',
    body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n"},"organization_id":"\' OR 1=1 --"}',
  },
  { name: 'sql in event_type', body: '{"event_type":"user.registered\'; DROP TABLE webhook_events; --","data":{}}' },
  { name: 'events not array', body: '{"events":{"0":{"event_type":"user.registered","data":{}}}}' },
  { name: 'events empty', body: '{"events":[]}' },
  { name: 'too many events', body: JSON.stringify({ events: Array.from({ length: 1001 }, () => ({ event_type: 'no.such.type', data: {} })) }) },
  {
    name: 'mixed valid and invalid batch',
    body: JSON.stringify({
      events: [
        { event_type: 'user.registered', data: VALID_DATA },
        { event_type: 'user.registered', data: 'x' },
      ],
    }),
  },
  { name: 'unknown event type', body: '{"event_type":"zz.unknown.type","data":{}}' },
  { name: 'schema violation', body: '{"event_type":"user.registered","data":{"user_id":12}}' },
  { name: 'url javascript', body: '{"name":"x","url":"javascript:alert(1)"}' },
  { name: 'url file', body: '{"name":"x","url":"file:///etc/passwd","events":["*"]}' },
  { name: 'events filter hostile', body: '{"name":"x","url":"http://127.0.0.1:9/x","events":["../../*","%",""]}' },
  { name: 'rate limit negative', body: '{"name":"x","url":"http://127.0.0.1:9/x","rate_limit_per_second":-1}' },
  { name: 'rate limit float', body: '{"name":"x","url":"http://127.0.0.1:9/x","rate_limit_per_second":1.5}' },
  { name: 'bool as string', body: '{"name":"x","url":"http://127.0.0.1:9/x","is_active":"true"}' },
  { name: 'name huge', body: JSON.stringify({ name: 'n'.repeat(100_000), url: 'http://127.0.0.1:9/x' }) },
  {
    name: 'custom type ReDoS-ish schema',
    body: JSON.stringify({ name: 'fuzz.redos', schema: { type: 'object', properties: { a: { type: 'string', pattern: '(a+)+$' } } }, extra: 1 }),
  },
  { name: 'custom type invalid schema', body: JSON.stringify({ name: 'fuzz.bad', schema: { type: 'no-such-type' }, unknown: true }) },
  { name: 'sync_type hostile', body: '{"sync_type":"../../etc","data":{"__proto__":{}}}' },
  { name: 'replay status bogus', body: '{"status":"everything","since":"yesterday"}' },
  { name: 'replay dates out of range', body: '{"status":"failed","since":"-271821-04-20T00:00:00Z","until":"+275760-09-13T00:00:00Z","sneaky":1}' },
  // huge strings (under the body limit) and over it
  { name: 'huge string 900KB', body: JSON.stringify({ event_type: 'user.registered', data: { ...VALID_DATA, blob: 'x'.repeat(900_000) }, sneaky: 1 }) },
  { name: 'oversized 2MB', body: JSON.stringify({ event_type: 'user.registered', data: { ...VALID_DATA, blob: 'x'.repeat(2_000_000) } }) },
  {
    name: 'many keys',
    body: JSON.stringify({ event_type: 'user.registered', data: Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i])), sneaky: 1 }),
  },
  // odd content types
  { name: 'form encoded', body: 'event_type=user.registered&data=x', contentType: 'application/x-www-form-urlencoded' },
  { name: 'text/plain JSON', body: '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n"}}', contentType: 'text/plain' },
  { name: 'multipart', body: '--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n', contentType: 'multipart/form-data; boundary=b' },
  { name: 'xml', body: '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>', contentType: 'application/xml' },
  { name: 'octet-stream', body: Buffer.from([0, 1, 2, 3, 255]), contentType: 'application/octet-stream' },
  { name: 'json with odd params', body: '{"name":"x"}', contentType: 'application/json; charset=latin1; boundary=x' },
  { name: 'json uppercase', body: '{"name":"x","url":"ftp://x"}', contentType: 'APPLICATION/JSON' },
  { name: 'vendor json', body: '{"name":"x"}', contentType: 'application/vnd.api+json' },
  { name: 'garbage content type', body: '{"name":"x"}', contentType: ';;;===' },
  { name: 'huge content type', body: '{"name":"x"}', contentType: `application/json; x=${'a'.repeat(8000)}` },
];

const ODD_METHODS = ['PUT', 'OPTIONS', 'TRACE', 'PROPFIND', 'PATCH', 'DELETE', 'POST', 'GET', 'HEAD', 'SEARCH'] as const;

/** Hostile replacements for path parameters and query strings. */
const HOSTILE_SEGMENTS = [
  'not-a-uuid',
  '00000000-0000-0000-0000-000000000000',
  '%00',
  '..%2F..%2Fetc%2Fpasswd',
  '%ZZ',
  '%',
  '%C0%AF',
  '%FF%FE',
  'a'.repeat(5000),
  encodeURIComponent('\u{1F4A9}'.repeat(50)),
  "'%20OR%201=1--",
  '%3Cscript%3E',
  '-1',
  '1e400',
  '__proto__',
  'constructor',
  '01900000-0000-7000-8000-00000000000g',
  'user%00null',
  '%ED%A0%80',
];
const HOSTILE_QUERIES = [
  'limit=1e400',
  'limit=-1',
  'limit=0',
  'limit=99999999999999999999',
  'limit=abc',
  'limit=1&limit=2',
  'limit[]=1',
  'limit=%00',
  'cursor=not-a-uuid',
  'cursor=%FF',
  'since=yesterday',
  'since=-271821-04-20T00:00:00Z',
  'until=%2B275760-09-13T00:00:00.000Z',
  'since=99999-01-01',
  'status=everything',
  'event_type=%00',
  'user_id=%00',
  `event_type=${'x'.repeat(3000)}`,
  '__proto__[polluted]=yes',
  'constructor[prototype][polluted]=yes',
  'sneaky=1',
  '%ZZ=1',
  'a=%',
  'action=%00',
  'target_id=%00',
  'organization_id=nope',
  'key_id=%00',
  'actor=root',
  `q=${'&'.repeat(2000)}`,
];

/** Header variations: auth and tenancy headers gone wrong. */
const HOSTILE_HEADERS: Record<string, string>[] = [
  {},
  { 'x-organization-id': 'not-a-uuid' },
  { 'x-organization-id': '01900000-0000-7000-8000-0000000fffff' },
  { 'idempotency-key': 'k'.repeat(500) },
  { 'idempotency-key': '' },
  { authorization: 'Basic YWRtaW46YWRtaW4=' },
  { authorization: `Bearer ${'x'.repeat(5000)}` },
  { authorization: 'Bearer' },
  { authorization: `Bearer ${TEST_ADMIN_KEY} extra` },
  { authorization: 'Bearer ck_live_' + 'A'.repeat(43) },
  { 'content-length': '999999999' },
  { 'x-supabase-webhook-secret': 'wrong' },
  { accept: 'application/xml' },
  { 'content-encoding': 'gzip' },
  { 'transfer-encoding': 'chunked' },
];

let c: TestCarteiro;
let org: TestOrg;
let eventsBefore = 0;
const ids = { endpoint: '', event: '', workflow: '' };

before(async () => {
  // Limits off: this suite checks how hostile input is handled, so it must reach the handlers
  // (the limits have suites of their own: ingress-limit, auth-failures).
  c = await startCarteiro({ env: { CARTEIRO_INGRESS_RATE_PER_SECOND: '0', CARTEIRO_AUTH_FAILURES_PER_MINUTE: '0' } });
  org = await createOrgWithKey(c, 'Fuzzed');
  const ep = await c.request('POST', 'endpoints', { name: 'fuzz target', url: 'http://127.0.0.1:9/fuzz', events: ['*'] });
  assert.equal(ep.status, 201);
  ids.endpoint = ep.body.id;
  const ev = await c.request('POST', 'trigger', { event_type: 'user.registered', data: VALID_DATA });
  assert.equal(ev.status, 202);
  ids.event = ev.body.event_id;
  eventsBefore = await countEvents();
});
after(() => c?.stop());

/**
 * Events requests stored. Not Carteiro's own operational events (event_source 'system'): the fuzz
 * target's endpoint never answers, and when its failures pass the circuit breaker's threshold during
 * the run (sooner or later, with the machine's speed) it records one of those.
 */
async function countEvents(): Promise<number> {
  // POST /endpoints/:id/test stores a webhook.test event for any well-formed request by design (even
  // with no body), and the circuit breaker stores its own operational events: neither is hostile
  // input getting through.
  const [row] = await c.services.ledger.sql<
    { n: number }[]
  >`SELECT count(*)::int AS n FROM webhook_events WHERE event_type <> 'webhook.test' AND event_source <> 'system'`;
  return row?.n ?? 0;
}

type Route = { method: string; template: string };
function routesOf(app: TestCarteiro['app']): Route[] {
  const spec = app.swagger() as { paths: Record<string, Record<string, unknown>> };
  const routes: Route[] = [];
  for (const [template, methods] of Object.entries(spec.paths)) {
    for (const method of Object.keys(methods)) routes.push({ method: method.toUpperCase(), template: template.replace(/\{(\w+)\}/g, ':$1') });
  }
  routes.push({ method: 'GET', template: '/api/webhooks/openapi.json' });
  return routes;
}

/** A concrete path for a route, with real ids (so the handler runs) or hostile ones. */
function pathFor(template: string, hostile: boolean): string {
  return template.replace(/:(\w+)/g, (_, name: string) => {
    if (hostile) return pick(HOSTILE_SEGMENTS);
    if (name === 'keyId') return org.keyId;
    if (name === 'name') return 'user-registered';
    if (name === 'user_id') return 'fuzz-nobody';
    if (template.includes('/organizations/')) return org.id;
    if (template.includes('/events/')) return ids.event;
    return ids.endpoint;
  });
}

test(`fuzz: hostile requests to every route get no 5xx, store no event, pollute nothing (seed ${SEED})`, { timeout: BUDGET_MS + 120_000 }, async (t) => {
  t.diagnostic(`seed ${SEED}; replay with FUZZ_SEED=${SEED}`);
  const routes = routesOf(c.app);
  assert.ok(routes.length >= 20, `found ${routes.length} routes`);
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  let sent = 0;
  let refusedByClient = 0;
  const started = Date.now();

  async function send(method: string, url: string, body: string | Buffer | undefined, headers: Record<string, string>, label: string): Promise<void> {
    if (sent >= MAX_REQUESTS || Date.now() - started > BUDGET_MS) return;
    sent++;
    let res;
    try {
      const first = await injectRaw(c, { method, url, headers, ...(body === undefined ? {} : { payload: body }) }, { timeoutMs: REQUEST_TIMEOUT_MS });
      if (first === 'hung') {
        failures.push(`${label}: no answer in ${REQUEST_TIMEOUT_MS} ms`);
        return;
      }
      res = first;
    } catch (err) {
      // light-my-request refuses some requests itself (e.g. an unsupported method): nothing reached the app.
      refusedByClient++;
      if (!/method|header|invalid/i.test(String((err as Error).message))) failures.push(`${label}: inject threw ${(err as Error).message}`);
      return;
    }
    statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    if (res.status >= 500) failures.push(`${label} → ${res.status} ${res.body.slice(0, 200)}`);
  }

  const auths = [`Bearer ${TEST_ADMIN_KEY}`, `Bearer ${org.key}`];
  // 1. Every route × every hostile body, with a real path and with the admin or an organization key.
  for (const route of routes) {
    for (const hb of HOSTILE_BODIES) {
      // Real ids here, so no DELETE: deleting the fuzz target (or revoking the key in use) would leave
      // the rest of the run poking at 404s.
      const method = ['GET', 'HEAD', 'DELETE'].includes(route.method)
        ? pick(['POST', 'PATCH', ...(route.method === 'DELETE' ? [] : [route.method])])
        : route.method;
      const headers: Record<string, string> = { authorization: pick(auths), 'content-type': hb.contentType ?? 'application/json' };
      await send(method, pathFor(route.template, false), hb.body, headers, `${method} ${route.template} [${hb.name}]`);
    }
  }
  // 2. Every route with hostile path segments, query strings, headers and methods, at random.
  while (sent < MAX_REQUESTS && Date.now() - started < BUDGET_MS) {
    const route = pick(routes);
    const method = random() < 0.2 ? pick(ODD_METHODS) : route.method;
    const hostilePath = route.template.includes(':') && (method === 'DELETE' || random() < 0.6);
    let url = pathFor(route.template, hostilePath);
    if (random() < 0.6) url += `?${pick(HOSTILE_QUERIES)}${random() < 0.3 ? `&${pick(HOSTILE_QUERIES)}` : ''}`;
    if (random() < 0.05) url = url.replace('/api/webhooks/', pick(['/api/webhooks//', '/api/webhooks/./', '/API/WEBHOOKS/', '/api/webhooks/%2e%2e/']));
    const hb = random() < 0.7 ? pick(HOSTILE_BODIES) : undefined;
    const headers: Record<string, string> = { authorization: pick([...auths, ...auths, 'Bearer nope']), ...pick(HOSTILE_HEADERS) };
    if (hb && !['GET', 'HEAD'].includes(method)) headers['content-type'] ??= hb.contentType ?? 'application/json';
    await send(
      method,
      url,
      hb && !['GET', 'HEAD'].includes(method) ? hb.body : undefined,
      headers,
      `${method} ${url.slice(0, 120)} [${hb?.name ?? 'no body'}] ${JSON.stringify(headers).slice(0, 120)}`,
    );
  }

  const elapsed = Date.now() - started;
  t.diagnostic(
    `${sent} requests in ${elapsed} ms over ${routes.length} routes (${refusedByClient} refused by the inject client); statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((x, y) => x[0] - y[0])))}`,
  );
  assert.deepEqual(failures.slice(0, 30), [], `${failures.length} failures`);
  assert.ok(sent >= Math.min(MAX_REQUESTS, 2000), `only ${sent} requests were sent in the budget`);

  // No event stored, nothing polluted.
  assert.equal(await countEvents(), eventsBefore, 'a hostile request stored an event');
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined);

  // Still answering normally.
  const health = await c.app.inject({ method: 'GET', url: '/api/webhooks/health' });
  assert.equal(health.statusCode, 200, health.body);
  const ok = await c.request('POST', 'trigger', { event_type: 'user.registered', data: VALID_DATA });
  assert.equal(ok.status, 202, JSON.stringify(ok.body));
  assert.equal(await countEvents(), eventsBefore + 1);
  const read = await c.request('GET', `events/${ok.body.event_id}`);
  assert.equal(read.status, 200);
  assert.deepEqual(read.body.data, VALID_DATA);
});
