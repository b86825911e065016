/**
 * Several worker processes on one ledger, and workers killed mid-delivery: every accepted event is
 * delivered, duplicates only ever carry the same webhook-id, and no attempt is made twice.
 * Needs a real Postgres (separate processes cannot share an embedded database).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startCarteiro, createEndpoint, eventually, settled, DATABASE_URL, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithSeed, type TestReceiver } from '../support/receiver.ts';
import { spawnCarteiro, type CarteiroProcess } from '../support/processes.ts';

const skip = DATABASE_URL ? false : 'needs DATABASE_URL (separate worker processes share a real Postgres)';

async function ingest(c: TestCarteiro, n: number, prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 500) {
    const events = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({
      event_type: 'conversation.message.added',
      data: { conversation_id: `${prefix}-${i + j}`, content: 'olá' },
    }));
    const res = await c.request('POST', 'events/batch', { events });
    assert.equal(res.status, 202);
    ids.push(...res.body.events.map((e: { event_id: string }) => e.event_id));
  }
  return ids;
}

function delivered(receiver: TestReceiver): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of receiver.received) counts.set(r.headers['webhook-id'] as string, (counts.get(r.headers['webhook-id'] as string) ?? 0) + 1);
  return counts;
}

describe('worker processes', { skip }, () => {
  let c: TestCarteiro;
  const procs: CarteiroProcess[] = [];
  before(async () => {
    // The API only: deliveries are made by the spawned worker processes.
    c = await startCarteiro({ role: 'api', env: { CARTEIRO_LEASE_MS: '1500', CARTEIRO_POLL_INTERVAL_MS: '100' } });
  });
  after(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await c.stop();
  });

  test('a worker killed with SIGKILL mid-delivery loses nothing: another one finishes the work', async (t) => {
    const receiver = await startReceiver(() => ({ status: 200, delayMs: 5 }));
    t.after(() => receiver.close());
    const ep = await createEndpoint(c, { url: receiver.url, events: ['conversation.message.added'] });
    const ids = await ingest(c, 1500, 'kill');

    const first = spawnCarteiro('worker', { ...c.env, CARTEIRO_WORKER_CONCURRENCY: '64' });
    procs.push(first);
    await eventually(() => receiver.received.length >= 200, { what: 'the first worker to be mid-run' });
    assert.ok(receiver.received.length < ids.length, 'killed before it finished');
    await first.kill('SIGKILL');
    const second = spawnCarteiro('worker', { ...c.env });
    procs.push(second);

    await eventually(() => ids.every((id) => delivered(receiver).has(id)), { what: 'every event delivered' });
    const counts = delivered(receiver);
    const duplicates = [...counts.values()].reduce((a, n) => a + n - 1, 0);
    t.diagnostic(`delivered ${counts.size} unique, ${duplicates} duplicates (same webhook-id)`);
    assert.equal(counts.size, ids.length);
    assert.ok(receiver.received.every((r) => verifiesWithSeed(ep.secret, r)));
    // The ledger agrees: every dispatch succeeded (in-flight ones of the dead worker were re-claimed after its lease).
    const rows = await eventually(
      async () => {
        const r = await c.services.ledger.sql<{ status: string; n: number }[]>`
        SELECT status, count(*)::int AS n FROM webhook_dispatches GROUP BY status`;
        return r.length === 1 && r[0]?.status === 'succeeded' ? r : null;
      },
      { what: 'all dispatches succeeded' },
    );
    assert.equal(rows[0]?.n, ids.length);
    await second.kill('SIGTERM');
  });

  test('two workers on one ledger never deliver the same attempt twice', async (t) => {
    const receiver = await startReceiver();
    t.after(() => receiver.close());
    await c.services.ledger.sql`UPDATE webhook_endpoints SET is_active = false`;
    await createEndpoint(c, { url: receiver.url, events: ['conversation.message.added'] });
    // Leases that outlive any flush: with the file's 1.5 s lease (chosen for the kill test above) a
    // machine busy with other suites let a batch's lease run out before its outcomes were recorded,
    // and the other worker rightly re-sent it (seen once: 252 re-sends). That is the at-least-once
    // path, not the claim exclusivity this test is about.
    const env = { ...c.env, CARTEIRO_LEASE_MS: '30000' };
    const workers = [spawnCarteiro('worker', env), spawnCarteiro('worker', env)];
    procs.push(...workers);
    const ids = await ingest(c, 2000, 'pair');
    await eventually(() => receiver.received.length >= ids.length, { what: 'all delivered' });
    // Every dispatch settled: a second send of any of them would have happened by now.
    assert.equal((await settled(c, { eventIds: ids })).attempts, ids.length, 'one attempt per event');
    const counts = delivered(receiver);
    assert.equal(counts.size, ids.length);
    assert.equal(receiver.received.length, ids.length, 'no event was sent twice');
    const [dup] = await c.services.ledger.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM (
        SELECT dispatch_id, attempt_number FROM webhook_deliveries GROUP BY 1, 2 HAVING count(*) > 1) d`;
    assert.equal(dup?.n, 0);
    await Promise.all(workers.map((w) => w.kill('SIGTERM')));
    const exits = workers.map((w) => w.child.exitCode);
    assert.deepEqual(exits, [0, 0], 'SIGTERM shuts a worker down cleanly');
  });
});
