/**
 * Ids are normalised once, at the edge: a UUID in upper case (the UUID check accepts it) in a body,
 * a header, a path or a query is the same id as in lower case. And the group commit stores exactly
 * what it acknowledges: no committed event is inserted a second time, nothing committed is answered
 * with a 5xx, and a batch is all or nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, type TestCarteiro } from '../support/carteiro.ts';
import { createOrgWithKey, withKey, type TestOrg } from '../security/tenancy-helpers.ts';
import { PRIORITY, type NewEvent } from '../../src/ledger/events.ts';

describe('ingestion with upper-case organization ids and reused idempotency keys', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro({ env: { CARTEIRO_INGRESS_RATE_PER_SECOND: '0' } });
  });
  after(async () => c.stop());

  const storedIds = async (orgId: string): Promise<string[]> =>
    (await c.services.ledger.sql<{ id: string }[]>`SELECT id FROM webhook_events WHERE organization_id = ${orgId} ORDER BY id`).map((r) => r.id);

  test('concurrent groups with conflicting keys and upper-case organization ids store exactly the accepted events', async () => {
    const org: TestOrg = await createOrgWithKey(c, 'Shouting');
    const ORG = org.id.toUpperCase();
    const asOrg = withKey(c, org.key);
    const event = (i: number) => ({ event_type: 'agent.created', data: { agent_id: `a${i}` } });
    const requests = Array.from({ length: 120 }, (_, i) => {
      switch (i % 4) {
        case 0:
          return c.request('POST', 'trigger', { ...event(i), organization_id: ORG, idempotency_key: `k${i % 5}` });
        case 1:
          return c.request('POST', 'trigger', event(i), { 'x-organization-id': ORG, 'idempotency-key': `k${i % 5}` });
        // Innocent neighbours in the same commit groups: no key, so a second insert would be a second event.
        case 2:
          return asOrg('POST', 'trigger', event(i));
        default:
          return c.request(
            'POST',
            'events/batch',
            {
              events: [{ ...event(i), idempotency_key: `b${i % 3}` }, { ...event(i + 1000), idempotency_key: `b${i % 3}` }, event(i + 2000)],
            },
            { 'x-organization-id': ORG },
          );
      }
    });
    const answers = await Promise.all(requests);
    for (const a of answers) assert.equal(a.status, 202, JSON.stringify(a.body));
    const accepted = new Set<string>();
    for (const a of answers) for (const e of a.body.events ?? [a.body]) accepted.add(e.event_id);
    const stored = await storedIds(org.id);
    assert.deepEqual(stored, [...accepted].sort(), 'the events stored are exactly the events acknowledged');
    // 5 + 3 keys, and one event per keyless request or batch entry.
    assert.equal(stored.length, 5 + 3 + 30 + 30);
  });

  test('a batch with two events sharing a key is treated like two requests with that key: one event, both answers name it', async () => {
    const org = await createOrgWithKey(c, 'Batchy');
    const res = await c.request('POST', 'events/batch', {
      events: [
        { event_type: 'agent.created', data: { agent_id: 'x' }, idempotency_key: 'same', organization_id: org.id.toUpperCase() },
        { event_type: 'agent.created', data: { agent_id: 'y' }, idempotency_key: 'same', organization_id: org.id.toUpperCase() },
      ],
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.events[0].event_id, res.body.events[1].event_id);
    assert.deepEqual(
      res.body.events.map((e: { duplicate: boolean }) => e.duplicate),
      [false, true],
    );
    assert.deepEqual(await storedIds(org.id), [res.body.events[0].event_id]);
  });

  test('an Idempotency-Key header on a batch is refused (400 naming it) rather than ignored, and nothing is stored', async () => {
    const org = await createOrgWithKey(c, 'Retrier');
    const body = { events: [{ event_type: 'agent.created', data: { agent_id: 'r1' } }] };
    const res = await c.request('POST', 'events/batch', body, { 'x-organization-id': org.id, 'idempotency-key': 'batch-retry-1' });
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.equal(res.body.details.field, 'headers.idempotency-key');
    assert.deepEqual(await storedIds(org.id), []);
  });

  test('the group commit stores each event once even when the ledger is handed an id in upper case', async () => {
    const org = await createOrgWithKey(c, 'Direct');
    const ev = (key: string | null, n: number): NewEvent => ({
      organizationId: org.id.toUpperCase(),
      eventType: 'agent.created',
      eventSource: 'api',
      tableName: null,
      recordId: null,
      userId: null,
      dataJson: JSON.stringify({ agent_id: `d${n}` }),
      priority: PRIORITY.normal,
      idempotencyKey: key,
    });
    const settled = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => c.services.intake.submitMany([ev(i % 2 ? `dk${i % 3}` : null, i)])));
    const ok = settled.filter((s) => s.status === 'fulfilled').flatMap((s) => s.value);
    assert.equal(ok.length, 40, JSON.stringify(settled.filter((s) => s.status === 'rejected').map((s) => String(s.reason))));
    assert.deepEqual(await storedIds(org.id), [...new Set(ok.map((r) => r.id))].sort());
    assert.equal(new Set(ok.map((r) => r.id)).size, 20 + 3);
  });

  test('every UUID input is the same id in either case: headers, bodies, paths and queries', async () => {
    const org = await createOrgWithKey(c, 'Cased');
    const asOrg = withKey(c, org.key);
    const ORG = org.id.toUpperCase();
    // An organization key naming its own organization, in upper case, is not another organization.
    const viaBody = await asOrg('POST', 'trigger', { event_type: 'agent.created', data: { agent_id: 'c1' }, organization_id: ORG });
    assert.equal(viaBody.status, 202, JSON.stringify(viaBody.body));
    const viaHeader = await asOrg('POST', 'trigger', { event_type: 'agent.created', data: { agent_id: 'c2' } }, { 'x-organization-id': ORG });
    assert.equal(viaHeader.status, 202, JSON.stringify(viaHeader.body));
    const mixed = await c.request('POST', 'events/batch', {
      events: [
        { event_type: 'agent.created', data: { agent_id: 'c3' }, organization_id: ORG },
        { event_type: 'agent.created', data: { agent_id: 'c4' }, organization_id: org.id },
      ],
    });
    assert.equal(mixed.status, 202, JSON.stringify(mixed.body));

    const ep = await asOrg('POST', 'endpoints', { name: 'cased', url: 'http://127.0.0.1:9/hook' });
    assert.equal(ep.status, 201);
    const patched = await asOrg('PATCH', `endpoints/${ep.body.id.toUpperCase()}`, { name: 'renamed' });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    const audit = await c.request('GET', `audit-log?organization_id=${ORG}&action=endpoints.update`);
    assert.equal(audit.status, 200);
    assert.deepEqual(
      audit.body.data.map((e: { target_id: string }) => e.target_id),
      [ep.body.id],
      'the audit log names the endpoint by its one id',
    );
  });
});
