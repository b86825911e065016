/**
 * Carteiro on a Redis Cluster: three `redis-server --cluster-enabled yes` masters started here on
 * free loopback ports, joined with `redis-cli --cluster create`, and REDIS_URL as
 * `redis+cluster://host:port,…`. The background-job queue (BullMQ, its keys under the `{prefix}`
 * hash tag, so in one slot) runs a bulk replay to completion, and the live-update bus goes through
 * the cluster's pub/sub. The ledger is whatever the suite runs on (embedded or DATABASE_URL).
 * Skips, saying why, when redis-server or redis-cli is missing or cannot run a cluster.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { Cluster } from 'ioredis';
import { startCarteiro, createEndpoint, eventually, trigger, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { redisServerVersion, startRedisServer, type OwnRedis } from '../../bench/lib/redis-server.ts';

const NODES = 3;

function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free port P whose cluster-bus port P + 10000 is free too. */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const p = 20_000 + Math.floor(Math.random() * 35_000);
    if (taken.has(p) || taken.has(p + 10_000)) continue;
    if ((await canListen(p)) && (await canListen(p + 10_000))) {
      taken.add(p).add(p + 10_000);
      return p;
    }
  }
  throw new Error('no free port pair for a cluster node');
}

function whyNot(): string | false {
  if (!redisServerVersion()) return 'redis-server is not installed';
  if (spawnSync('redis-cli', ['--version']).status !== 0) return 'redis-cli is not installed';
  return false;
}

const skip = whyNot();

describe('Redis Cluster', { skip }, () => {
  const nodes: OwnRedis[] = [];
  let clusterUrl = '';
  let c: TestCarteiro;
  let receiver: TestReceiver;
  let client: Cluster | null = null;
  let clusterSkip: string | false = false;

  /** Keys matching `pattern` on each master of the cluster. */
  const keysPerMaster = async (pattern: string): Promise<string[][]> => Promise.all((client as Cluster).nodes('master').map((n) => n.keys(pattern)));

  before(async () => {
    const taken = new Set<number>();
    for (let i = 0; i < NODES; i++) {
      const port = await clusterPort(taken);
      try {
        nodes.push(
          await startRedisServer(port, {
            extraArgs: ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '5000'],
          }),
        );
      } catch (err) {
        clusterSkip = `redis-server cannot run in cluster mode here: ${(err as Error).message.split('\n')[0]}`;
        return;
      }
    }
    const create = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '0', '--cluster-yes'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed: ${create.stderr || create.stdout}`);
    // Every node must agree the cluster is up (all 16384 slots served) before clients use it.
    await eventually(
      () => nodes.every((n) => /cluster_state:ok/.test(spawnSync('redis-cli', ['-p', String(n.port), 'cluster', 'info'], { encoding: 'utf8' }).stdout)),
      {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: 'cluster_state:ok on every node',
      },
    );
    clusterUrl = `redis+cluster://${nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
    receiver = await startReceiver();
    c = await startCarteiro({ env: { REDIS_URL: clusterUrl } });
    client = new Cluster(
      nodes.map((n) => ({ host: '127.0.0.1', port: n.port })),
      { lazyConnect: false },
    );
    await eventually(() => client?.status === 'ready', { what: 'cluster client ready' });
  });

  after(async () => {
    client?.disconnect();
    await c?.stop();
    await receiver?.close();
    // Each node by its own pid.
    await Promise.all(nodes.map((n) => n.stop()));
  });

  test('the Carteiro instance is on the cluster, and /health sees it', async (t) => {
    if (clusterSkip) return t.skip(clusterSkip);
    assert.equal(c.config.redis.url, clusterUrl);
    assert.equal((c.services.redis as unknown as { isCluster?: boolean }).isCluster, true);
    const health = await eventually(
      async () => {
        const h = await c.request('GET', '/api/webhooks/health');
        return h.body?.services?.redis === 'healthy' ? h.body : null;
      },
      { what: 'redis healthy in /health' },
    );
    assert.equal(health.services.redis, 'healthy');
  });

  test('a rate-limited endpoint is paced through the cluster (egress limiter)', async (t) => {
    if (clusterSkip) return t.skip(clusterSkip);
    const paced = await startReceiver();
    try {
      await createEndpoint(c, { url: `${paced.url}/paced`, events: ['agent.updated'], rate_limit_per_second: 5 });
      for (let i = 0; i < 6; i++) await trigger(c, { event_type: 'agent.updated', data: { agent_id: `paced-${i}`, name: 'Agente' } });
      const hits = await paced.waitFor(6);
      assert.equal(new Set(hits.map((h) => h.headers['webhook-id'])).size, 6);
      // The limiter counted in the cluster (its slot counters live a second or two).
      const counters = (await keysPerMaster(`*${c.config.database.schema}:egress*`)).flat();
      assert.ok(counters.length > 0, 'egress counters in the cluster');
    } finally {
      await paced.close();
    }
  });

  test('a bulk-replay job runs to completion on the cluster queue', async (t) => {
    if (clusterSkip) return t.skip(clusterSkip);
    await createEndpoint(c, { url: `${receiver.url}/hook`, events: ['agent.created'] });
    const eventId = await trigger(c, { event_type: 'agent.created', data: { agent_id: 'cluster-1', name: 'Agente' } });
    await receiver.waitFor(1);
    await eventually(async () => (await c.request('GET', `events/${eventId}/status`)).body.status === 'completed', { what: 'event completed' });

    const res = await c.request('POST', 'replay', { status: 'completed', event_type: 'agent.created' });
    assert.equal(res.status, 202);
    const jobId = res.body.job_id as string;
    const job = await eventually(
      async () => {
        const j = await c.request('GET', `jobs/${jobId}`);
        return j.body.state === 'completed' || j.body.state === 'failed' ? j.body : null;
      },
      { what: `job ${jobId} finished`, intervalMs: 100 },
    );
    assert.equal(job.state, 'completed', `job error: ${job.error}`);
    assert.deepEqual(job.result, { events: 1, dispatches: 1 });
    // The replay re-delivers the event under the same webhook-id.
    const hits = await receiver.waitFor(2);
    assert.equal(hits[1]?.headers['webhook-id'], eventId);

    // The queue's keys all hash to one slot, so they live on exactly one master.
    const holding = (await keysPerMaster(`{carteiro:${c.config.database.schema}}*`)).filter((keys) => keys.length > 0);
    assert.equal(holding.length, 1, `queue keys spread over ${holding.length} nodes`);
    assert.ok(
      (holding[0] ?? []).some((k) => k.includes('carteiro-jobs')),
      'BullMQ keys under the hash tag',
    );
  });

  test('live updates travel through the cluster pub/sub', async (t) => {
    if (clusterSkip) return t.skip(clusterSkip);
    const got: unknown[] = [];
    const off = c.services.liveBus.subscribe((m) => {
      if (m.type === 'cluster.ping') got.push(m);
    });
    try {
      // The subscription is made once the subscriber connection is ready: publish until one arrives.
      await eventually(
        () => {
          c.services.liveBus.publish({ type: 'cluster.ping', n: got.length });
          return got.length > 0;
        },
        { what: 'a live message through the cluster', intervalMs: 100 },
      );
    } finally {
      off();
    }
  });
});
