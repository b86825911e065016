/**
 * The API description tells the truth: the document is valid OpenAPI, every operation has a summary,
 * its auth and its error envelope, and every route's real answers (a success and an error each, from
 * real requests) match the schema documented for their status code.
 *
 * The response schemas are open (additionalProperties: true), so a field a handler returns that the
 * description lacks still reaches the client; here every object is closed before validating, so such
 * a field fails this test instead of going undocumented.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Ajv, type ValidateFunction } from 'ajv';
import { Validator } from '@seriousme/openapi-schema-validator';
import { startCarteiro, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { startFakeN8n, type FakeN8n } from '../n8n-fake/fake-n8n.ts';

type Json = Record<string, any>;
const PREFIX = '/api/webhooks';
const SUPABASE_SECRET = 'supabase-shared-secret-for-tests';

/** Every object that lists its properties, closed; shared schemas ($ref) inlined. */
function closed(schema: unknown, components: Json): unknown {
  if (Array.isArray(schema)) return schema.map((s) => closed(s, components));
  if (!schema || typeof schema !== 'object') return schema;
  const s = schema as Json;
  if (typeof s.$ref === 'string') return closed(components[s.$ref.replace('#/components/schemas/', '')], components);
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'examples' || k === 'example') continue;
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Json).map(([p, ps]) => [p, closed(ps, components)])) : closed(v, components);
  }
  if (s.type === 'object' && s.properties && s.additionalProperties === true) out.additionalProperties = false;
  return out;
}

describe('the API description', () => {
  let c: TestCarteiro;
  let receiver: TestReceiver;
  let fake: FakeN8n;
  let doc: Json;
  let orgKey: string;
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addFormat('date-time', (v: string) => !Number.isNaN(Date.parse(v)) && /^\d{4}-\d\d-\d\dT/.test(v));
  const validators = new Map<string, ValidateFunction>();
  /** "GET /events/{id}" → the kinds of answer seen for it. */
  const seen = new Map<string, Set<'success' | 'error'>>();

  before(async () => {
    fake = await startFakeN8n();
    receiver = await startReceiver();
    c = await startCarteiro({
      env: { SUPABASE_WEBHOOK_SECRET: SUPABASE_SECRET, N8N_WEBHOOK_URL: fake.url, N8N_API_URL: `${fake.url}/api/v1`, N8N_API_KEY: fake.apiKey },
    });
    doc = (await c.request('GET', 'openapi.json')).body;
    const org = (await c.request('POST', 'organizations', { name: 'Other' })).body;
    orgKey = (await c.request('POST', `organizations/${org.id}/keys`, { name: 'k' })).body.key;
  });
  after(async () => {
    await c?.stop();
    await receiver?.close();
    await fake?.close();
  });

  function validatorFor(op: string, status: number): ValidateFunction | null {
    const [method, path] = op.split(' ') as [string, string];
    const operation = doc.paths[`${PREFIX}${path}`]?.[method.toLowerCase()];
    assert.ok(operation, `${op} is not in the document`);
    const response = operation.responses[String(status)];
    assert.ok(response, `${op} answered ${status}, which it does not document`);
    if (status === 204) return null;
    const schema = response.content?.['application/json']?.schema;
    assert.ok(schema, `${op} ${status} documents no JSON schema`);
    const key = `${op} ${status}`;
    if (!validators.has(key)) validators.set(key, ajv.compile(closed(schema, doc.components.schemas) as Json));
    return validators.get(key) as ValidateFunction;
  }

  /** A real request to `op` (as documented: "GET /events/{id}") at `url`, expected to answer `status` with its documented shape. */
  async function call(op: string, url: string, status: number, body?: unknown, headers?: Record<string, string>): Promise<any> {
    const [method] = op.split(' ') as [string];
    const res = await c.request(method, url, body, headers);
    assert.equal(res.status, status, `${op} (${url}): ${JSON.stringify(res.body)}`);
    const validate = validatorFor(op, status);
    if (validate) assert.ok(validate(res.body), `${op} ${status} does not match its schema: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(res.body)}`);
    if (!seen.has(op)) seen.set(op, new Set());
    seen.get(op)?.add(status < 400 ? 'success' : 'error');
    return res.body;
  }
  const asOrg = () => ({ authorization: `Bearer ${orgKey}` });
  const missing = randomUUID();

  test('the document is valid OpenAPI 3.1, and every operation has a summary, auth and the error envelope', async () => {
    const result = await new Validator().validate(doc as never);
    assert.ok(result.valid, JSON.stringify(result.errors, null, 1));
    assert.equal(doc.openapi, '3.1.0');
    assert.ok(doc.components.schemas.ErrorEnvelope, 'the shared error envelope is a named component');
    for (const [path, item] of Object.entries<Json>(doc.paths)) {
      for (const [method, op] of Object.entries<Json>(item)) {
        const name = `${method.toUpperCase()} ${path}`;
        assert.ok(op.summary, `${name} has no summary`);
        assert.ok(Array.isArray(op.security), `${name} does not state its auth`);
        const codes = Object.keys(op.responses);
        assert.ok(
          codes.some((s) => /^2\d\d$/.test(s)),
          `${name} documents no success`,
        );
        assert.ok(!codes.includes('default'), `${name} still has a default response`);
        for (const code of codes.filter((s) => Number(s) >= 400 && !(path.endsWith('/health') && s === '503'))) {
          assert.equal(op.responses[code].content['application/json'].schema.$ref, '#/components/schemas/ErrorEnvelope', `${name} ${code}`);
        }
        if (op.security.length) assert.ok(codes.includes('401'), `${name} needs a key but documents no 401`);
      }
    }
  });

  test('events: real answers match their schemas', async () => {
    const endpoint = await call('POST /endpoints', 'endpoints', 201, { name: 'docs', url: `${receiver.url}/hook`, events: ['*'], max_in_flight: 4 });
    for (const field of ['secret', 'health', 'max_in_flight', 'failed_attempts_in_row', 'next_probe_at']) assert.ok(field in endpoint, `endpoint has ${field}`);
    await call('POST /trigger', 'trigger', 400, { event_type: 'agent.created' });
    const accepted = await call('POST /trigger', 'trigger', 202, {
      event_type: 'agent.created',
      data: { agent_id: 'a1', name: 'Assistente de Vendas', user_id: 'u1' },
      user_id: 'u1',
    });
    await call('POST /events/batch', 'events/batch', 400, { events: [] });
    await call('POST /events/batch', 'events/batch', 202, { events: [{ event_type: 'agent.created', data: { agent_id: 'a2', name: 'B' } }] });
    await call('POST /events/{name}', 'events/no-such-type', 404, {});
    await call('POST /events/{name}', 'events/user-registered', 202, { user_id: 'test-user-123', email: 'test@example.com', name: 'Test User' });
    await receiver.waitFor(3);
    const id = accepted.event_id as string;
    // The delivery is recorded just after the receiver answers.
    let status: Json = {};
    for (let i = 0; i < 100 && status.status !== 'completed'; i++) {
      status = await call('GET /events/{id}/status', `events/${id}/status`, 200);
      if (status.status !== 'completed') await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status.deliveries.length, 1, 'status has deliveries');
    await call('GET /events/{id}/status', `events/${missing}/status`, 404);
    await call('GET /events', 'events?limit=5', 200);
    await call('GET /events', 'events?status=bogus', 400);
    const event = await call('GET /events/{id}', `events/${id}`, 200);
    assert.deepEqual(event.data, { agent_id: 'a1', name: 'Assistente de Vendas', user_id: 'u1' });
    await call('GET /events/{id}', `events/${missing}`, 404);
    const attempts = await call('GET /events/{id}/attempts', `events/${id}/attempts`, 200);
    assert.equal(attempts.data.length, 1);
    await call('GET /events/{id}/attempts', `events/${missing}/attempts`, 404);
    await call('POST /events/{id}/replay', `events/${id}/replay`, 202, {});
    await call('POST /events/{id}/replay', `events/${missing}/replay`, 404, {});
    await call('GET /stats', 'stats', 200);
    await call('GET /stats', 'stats', 401, undefined, { authorization: 'Bearer ck_not_a_key_at_all_0000000000' });
    await call('GET /health', '/api/webhooks/health', 200);
  });

  test('endpoints: real answers match their schemas', async () => {
    await call('POST /endpoints', 'endpoints', 400, { name: 'no url' });
    const e = await call('POST /endpoints', 'endpoints', 201, { name: 'second', url: `${receiver.url}/second`, events: ['user.*'] });
    await call('GET /endpoints', 'endpoints', 200);
    await call('GET /endpoints', 'endpoints?limit=0', 400);
    await call('GET /endpoints/{id}', `endpoints/${e.id}`, 200);
    await call('GET /endpoints/{id}', `endpoints/${missing}`, 404);
    await call('PATCH /endpoints/{id}', `endpoints/${e.id}`, 200, { description: 'changed', metadata: { team: 'growth' } });
    await call('PATCH /endpoints/{id}', `endpoints/${missing}`, 404, { description: 'x' });
    await call('POST /endpoints/{id}/disable', `endpoints/${e.id}/disable`, 200, { reason: 'maintenance' });
    await call('POST /endpoints/{id}/disable', `endpoints/${missing}/disable`, 404, {});
    await call('POST /endpoints/{id}/enable', `endpoints/${e.id}/enable`, 200, {});
    await call('POST /endpoints/{id}/enable', `endpoints/${missing}/enable`, 404, {});
    await call('POST /endpoints/{id}/recover', `endpoints/${e.id}/recover`, 200, { since: new Date(Date.now() - 3_600_000).toISOString() });
    await call('POST /endpoints/{id}/recover', `endpoints/${e.id}/recover`, 400, { since: 'yesterday-ish' });
    await call('POST /endpoints/{id}/recover/preview', `endpoints/${e.id}/recover/preview`, 200, { since: new Date(Date.now() - 3_600_000).toISOString() });
    await call('POST /endpoints/{id}/recover/preview', `endpoints/${missing}/recover/preview`, 404, { since: new Date().toISOString() });
    await call('POST /endpoints/{id}/test', `endpoints/${e.id}/test`, 202, { message: 'hello' });
    await call('POST /endpoints/{id}/test', `endpoints/${missing}/test`, 404, {});
    const rotated = await call('POST /endpoints/{id}/rotate-secret', `endpoints/${e.id}/rotate-secret`, 200, { overlap_seconds: 60 });
    assert.ok(rotated.secret && rotated.previous_secret_expires_at, 'a rotation shows the new secret and the overlap');
    await call('POST /endpoints/{id}/rotate-secret', `endpoints/${missing}/rotate-secret`, 404, {});
    await call('POST /endpoints/{id}/transformation/preview', `endpoints/${e.id}/transformation/preview`, 200, {
      event_type: 'user.registered',
      data: { user_id: 'u1' },
    });
    await call('POST /endpoints/{id}/transformation/preview', `endpoints/${e.id}/transformation/preview`, 422, {
      event_type: 'user.registered',
      data: {},
      transformation: 'function handler(w) { throw new Error("no") }',
    });
    await call('POST /endpoints/{id}/transformation/preview', `endpoints/${missing}/transformation/preview`, 404, { event_type: 'user.registered', data: {} });
    const shaped = await call('PATCH /endpoints/{id}', `endpoints/${e.id}`, 200, { template: 'slack' });
    assert.equal(shaped.template, 'slack');
    await call('PATCH /endpoints/{id}', `endpoints/${e.id}`, 422, { transformation: 'function handler(' });
    const cancelled = await call('POST /endpoints/{id}/transformation/preview', `endpoints/${e.id}/transformation/preview`, 200, {
      event_type: 'user.registered',
      data: {},
      transformation: 'function handler(w) { w.cancel = true; return w; }',
    });
    assert.equal(cancelled.request, null);
    const templates = await call('GET /transformation-templates', 'transformation-templates', 200);
    assert.ok(templates.data.some((t: Json) => t.name === 'telegram' && t.options[0].name === 'chat_id'));
    await call('GET /transformation-templates', 'transformation-templates', 401, undefined, { authorization: 'Bearer ck_not_a_key_at_all_0000000003' });
    await call('GET /endpoints/{id}/attempts', `endpoints/${e.id}/attempts`, 200);
    await call('GET /endpoints/{id}/attempts', `endpoints/${missing}/attempts`, 404);
    await call('DELETE /endpoints/{id}', `endpoints/${e.id}`, 204);
    await call('DELETE /endpoints/{id}', `endpoints/${e.id}`, 404);
  });

  test('catalog, replay jobs and erasure: real answers match their schemas', async () => {
    const types = await call('GET /event-types', 'event-types', 200);
    assert.ok(types.data.some((t: Json) => t.name === 'user.registered' && t.schema && t.builtin === true));
    await call('GET /event-types', 'event-types', 401, undefined, { authorization: 'Bearer ck_not_a_key_at_all_0000000001' });
    await call('POST /event-types', 'event-types', 201, { name: 'invoice.paid', schema: { type: 'object' }, priority: 'high' });
    await call('POST /event-types', 'event-types', 409, { name: 'user.registered' });
    const job = await call('POST /replay', 'replay', 202, { status: 'completed' });
    await call('POST /replay', 'replay', 404, { endpoint_id: missing });
    await call('GET /jobs/{id}', `jobs/${job.job_id}`, 200);
    await call('GET /jobs/{id}', `jobs/${missing}`, 404);
    await call('DELETE /users/{user_id}/data', 'users/u1/data', 200);
    await call('DELETE /users/{user_id}/data', 'users/u1/data', 400, undefined, { 'x-organization-id': 'not-a-uuid' });
  });

  test('organizations, keys and the audit log: real answers match their schemas', async () => {
    const org = await call('POST /organizations', 'organizations', 201, { name: 'Acme' });
    await call('POST /organizations', 'organizations', 403, { name: 'Nope' }, asOrg());
    await call('GET /organizations', 'organizations', 200);
    await call('GET /organizations', 'organizations', 403, undefined, asOrg());
    await call('GET /organizations/{id}', `organizations/${org.id}`, 200);
    await call('GET /organizations/{id}', `organizations/${missing}`, 404);
    const key = await call('POST /organizations/{id}/keys', `organizations/${org.id}/keys`, 201, { name: 'backend' });
    assert.match(key.key, /\S{20,}/, 'the new key is shown');
    await call('POST /organizations/{id}/keys', `organizations/${missing}/keys`, 404, {});
    await call('GET /organizations/{id}/keys', `organizations/${org.id}/keys`, 200);
    await call('GET /organizations/{id}/keys', `organizations/${missing}/keys`, 404);
    await call('DELETE /organizations/{id}/keys/{keyId}', `organizations/${org.id}/keys/${key.id}`, 200);
    await call('DELETE /organizations/{id}/keys/{keyId}', `organizations/${org.id}/keys/${missing}`, 404);
    const audit = await call('GET /audit-log', 'audit-log?limit=10', 200);
    assert.ok(audit.data.length > 0);
    await call('GET /audit-log', 'audit-log', 403, undefined, asOrg());
    await call('GET /live', 'live', 401, undefined, { authorization: 'Bearer ck_not_a_key_at_all_0000000002' });
  });

  test('Supabase ingress: real answers match their schemas', async () => {
    const secret = { 'x-supabase-webhook-secret': SUPABASE_SECRET };
    const insert = {
      type: 'INSERT',
      table: 'users',
      schema: 'public',
      record: { id: randomUUID(), email: 'maria@example.com', name: 'Maria Oliveira' },
      old_record: null,
    };
    await call('POST /supabase', 'supabase', 202, insert, secret);
    const same = { id: randomUUID(), user_id: randomUUID(), provider: 'x', is_active: true };
    await call('POST /supabase', 'supabase', 200, { type: 'UPDATE', table: 'external_integrations', schema: 'public', record: same, old_record: same }, secret);
    await call('POST /supabase', 'supabase', 401, insert, { 'x-supabase-webhook-secret': 'wrong-secret-wrong-secret' });
  });

  test('n8n: real answers match their schemas', async () => {
    const w = await call('POST /n8n/workflows', 'n8n/workflows', 201, {
      workflow_id: 'wf-docs',
      name: 'Docs',
      webhook_url: `${receiver.url}/webhook/docs-sync`,
      generate_secret: true,
    });
    assert.ok(w.secret, 'a generated secret is shown once');
    await call('POST /n8n/workflows', 'n8n/workflows', 400, { workflow_id: 'wf-x' });
    await call('GET /n8n/workflows', 'n8n/workflows', 200);
    await call('GET /n8n/workflows', 'n8n/workflows?limit=0', 400);
    await call('GET /n8n/workflows/{id}', `n8n/workflows/${w.id}`, 200);
    await call('GET /n8n/workflows/{id}', 'n8n/workflows/wf-docs', 200);
    await call('GET /n8n/workflows/{id}', `n8n/workflows/${missing}`, 404);
    await call('PATCH /n8n/workflows/{id}', `n8n/workflows/${w.id}`, 200, { name: 'Docs sync' });
    await call('PATCH /n8n/workflows/{id}', `n8n/workflows/${missing}`, 404, { name: 'x' });
    await call('POST /n8n/workflows/{id}/disable', `n8n/workflows/${w.id}/disable`, 200, {});
    await call('POST /n8n/workflows/{id}/disable', `n8n/workflows/${missing}/disable`, 404, {});
    await call('POST /n8n/workflows/{id}/enable', `n8n/workflows/${w.id}/enable`, 200, {});
    await call('POST /n8n/workflows/{id}/enable', `n8n/workflows/${missing}/enable`, 404, {});
    const rotated = await call('POST /n8n/workflows/{id}/rotate-secret', `n8n/workflows/${w.id}/rotate-secret`, 200, {});
    assert.ok(rotated.secret);
    await call('POST /n8n/workflows/{id}/rotate-secret', `n8n/workflows/${missing}/rotate-secret`, 404, {});
    const synced = await call('POST /n8n/sync', 'n8n/sync', 200, {
      sync_type: 'docs-sync',
      data: { user_id: 'test-123', email: 'test@example.com' },
      wait_ms: 10_000,
    });
    assert.equal(synced.status, 'delivered');
    await call('POST /n8n/sync', 'n8n/sync', 404, { sync_type: 'no-such-path', data: {} });
    await call('GET /n8n/workflows/{id}/attempts', `n8n/workflows/${w.id}/attempts`, 200);
    await call('GET /n8n/workflows/{id}/attempts', `n8n/workflows/${missing}/attempts`, 404);
    await call('POST /n8n/workflows/seed', 'n8n/workflows/seed', 200, {});
    await call('POST /n8n/workflows/seed', 'n8n/workflows/seed', 403, {}, asOrg());
    await call('POST /n8n/discover', 'n8n/discover', 200, {});
    await call('POST /n8n/discover', 'n8n/discover', 403, {}, asOrg());
    await call('DELETE /n8n/workflows/{id}', `n8n/workflows/${w.id}`, 204);
    await call('DELETE /n8n/workflows/{id}', `n8n/workflows/${w.id}`, 404);
  });

  test('portal sessions, the portal and limits per user: real answers match their schemas', async () => {
    await call('POST /portal/sessions', 'portal/sessions', 400, { scope: 'manage' });
    const session = await call('POST /portal/sessions', 'portal/sessions', 201, { user_id: 'docs-user', scope: 'manage' });
    const reader = await call('POST /portal/sessions', 'portal/sessions', 201, { user_id: 'docs-user' });
    await call('POST /portal/sessions', 'portal/sessions', 201, { user_id: 'docs-user', theme: { mode: 'dark', primary_color: '#0f766e' } });
    await call('POST /portal/sessions', 'portal/sessions', 422, { user_id: 'docs-user', theme: { primary_color: 'teal' } });
    await call('GET /portal/sessions', 'portal/sessions?user_id=docs-user', 200);
    await call('GET /portal/sessions', 'portal/sessions?limit=0', 400);
    const as = { authorization: `Bearer ${session.token}` };
    const asReader = { authorization: `Bearer ${reader.token}` };

    await call('GET /portal/session', 'portal/session', 200, undefined, as);
    await call('GET /portal/session', 'portal/session', 403, undefined, asOrg());
    await call('GET /portal/event-types', 'portal/event-types', 200, undefined, as);
    await call('GET /portal/event-types', 'portal/event-types', 403);
    await call('GET /portal/transformation-templates', 'portal/transformation-templates', 200, undefined, asReader);
    await call('GET /portal/transformation-templates', 'portal/transformation-templates', 403);
    const e = await call('POST /portal/endpoints', 'portal/endpoints', 201, { name: 'docs', url: `${receiver.url}/portal`, events: ['*'] }, as);
    await call('POST /portal/endpoints', 'portal/endpoints', 403, { name: 'docs', url: `${receiver.url}/portal` }, asReader);
    await call('GET /portal/endpoints', 'portal/endpoints', 200, undefined, as);
    await call('GET /portal/endpoints', 'portal/endpoints?limit=0', 400, undefined, as);
    await call('GET /portal/endpoints/{id}', `portal/endpoints/${e.id}`, 200, undefined, as);
    await call('GET /portal/endpoints/{id}', `portal/endpoints/${missing}`, 404, undefined, as);
    await call('PATCH /portal/endpoints/{id}', `portal/endpoints/${e.id}`, 200, { description: 'mine' }, as);
    await call('PATCH /portal/endpoints/{id}', `portal/endpoints/${missing}`, 404, { description: 'x' }, as);
    await call('POST /portal/endpoints/{id}/disable', `portal/endpoints/${e.id}/disable`, 200, {}, as);
    await call('POST /portal/endpoints/{id}/disable', `portal/endpoints/${missing}/disable`, 404, {}, as);
    await call('POST /portal/endpoints/{id}/enable', `portal/endpoints/${e.id}/enable`, 200, {}, as);
    await call('POST /portal/endpoints/{id}/enable', `portal/endpoints/${missing}/enable`, 404, {}, as);
    await call('POST /portal/endpoints/{id}/rotate-secret', `portal/endpoints/${e.id}/rotate-secret`, 200, {}, as);
    await call('POST /portal/endpoints/{id}/rotate-secret', `portal/endpoints/${missing}/rotate-secret`, 404, {}, as);
    const sent = await call('POST /portal/endpoints/{id}/test', `portal/endpoints/${e.id}/test`, 202, {}, as);
    await call('POST /portal/endpoints/{id}/test', `portal/endpoints/${missing}/test`, 404, {}, as);
    await call('POST /portal/endpoints/{id}/recover', `portal/endpoints/${e.id}/recover`, 200, { since: '2025-01-15T00:00:00Z' }, as);
    await call('POST /portal/endpoints/{id}/recover', `portal/endpoints/${missing}/recover`, 404, { since: '2025-01-15T00:00:00Z' }, as);
    let delivery: Json | undefined;
    for (let i = 0; i < 400 && delivery?.status !== 'succeeded'; i++) {
      delivery = (await call('GET /portal/deliveries', `portal/deliveries?event_id=${sent.event_id}`, 200, undefined, as)).data[0];
      if (delivery?.status !== 'succeeded') await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(delivery?.status, 'succeeded');
    await call('GET /portal/deliveries', 'portal/deliveries?status=bogus', 400, undefined, as);
    await call('GET /portal/deliveries/{id}', `portal/deliveries/${delivery.id}`, 200, undefined, as);
    await call('GET /portal/deliveries/{id}', `portal/deliveries/${missing}`, 404, undefined, as);
    await call('GET /portal/deliveries/{id}/attempts', `portal/deliveries/${delivery.id}/attempts`, 200, undefined, as);
    await call('GET /portal/deliveries/{id}/attempts', `portal/deliveries/${missing}/attempts`, 404, undefined, as);
    await call('GET /portal/endpoints/{id}/attempts', `portal/endpoints/${e.id}/attempts`, 200, undefined, as);
    await call('GET /portal/endpoints/{id}/attempts', `portal/endpoints/${missing}/attempts`, 404, undefined, as);
    await call('POST /portal/deliveries/{id}/replay', `portal/deliveries/${delivery.id}/replay`, 202, {}, as);
    await call('POST /portal/deliveries/{id}/replay', `portal/deliveries/${missing}/replay`, 404, {}, as);
    await call('DELETE /portal/endpoints/{id}', `portal/endpoints/${e.id}`, 204, undefined, as);
    await call('DELETE /portal/endpoints/{id}', `portal/endpoints/${e.id}`, 404, undefined, as);
    await call('DELETE /portal/sessions/{id}', `portal/sessions/${session.id}`, 200);
    await call('DELETE /portal/sessions/{id}', `portal/sessions/${missing}`, 404);

    await call('GET /user-limits', 'user-limits', 200);
    await call('GET /user-limits', 'user-limits', 401, undefined, { authorization: 'Bearer ck_not_a_key_at_all_0000000000' });
    await call('PATCH /user-limits', 'user-limits', 200, { max_endpoints_per_user: 10 });
    await call('PATCH /user-limits', 'user-limits', 400, { max_endpoints_per_user: -1 });
    await call('PUT /user-limits/users/{user_id}', 'user-limits/users/docs-user', 200, { events_per_second: 100 });
    await call('PUT /user-limits/users/{user_id}', 'user-limits/users/docs-user', 400, {});
    await call('GET /user-limits/users/{user_id}', 'user-limits/users/docs-user', 200);
    await call('GET /user-limits/users/{user_id}', 'user-limits/users/docs-user', 403, undefined, { authorization: `Bearer ${reader.token}` });
    await call('DELETE /user-limits/users/{user_id}', 'user-limits/users/docs-user', 204);
    await call('DELETE /user-limits/users/{user_id}', 'user-limits/users/docs-user', 404);
  });

  test('every documented operation was exercised, with a success and an error', () => {
    // /health has no error a request can cause; /live's success is a stream, not JSON.
    const exempt: Record<string, 'success' | 'error'> = { 'GET /health': 'error', 'GET /live': 'success' };
    const gaps: string[] = [];
    for (const [path, item] of Object.entries<Json>(doc.paths)) {
      for (const method of Object.keys(item)) {
        const op = `${method.toUpperCase()} ${path.slice(PREFIX.length)}`;
        for (const kind of ['success', 'error'] as const) if (exempt[op] !== kind && !seen.get(op)?.has(kind)) gaps.push(`${op}: no ${kind}`);
      }
    }
    assert.deepEqual(gaps, []);
  });

  test('/docs serves the interactive description, and / leads to it and to the dashboard', async () => {
    const docs = await c.app.inject({ method: 'GET', url: '/docs/' });
    assert.equal(docs.statusCode, 200);
    assert.match(docs.headers['content-type'] as string, /text\/html/);
    const index = await c.app.inject({ method: 'GET', url: '/' });
    assert.equal(index.statusCode, 200);
    assert.equal(index.json().docs, '/docs');
    assert.equal(index.json().dashboard, '/dashboard');
    const browser = await c.app.inject({ method: 'GET', url: '/', headers: { accept: 'text/html' } });
    assert.equal(browser.statusCode, 302);
    assert.equal(browser.headers.location, '/dashboard');
  });
});
