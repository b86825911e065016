/**
 * Redis connections. Redis holds only what processes share but need not keep (rate-limit counters,
 * live-update messages, background jobs): losing it loses no event.
 *
 * REDIS_URL may name a Redis Cluster by a few of its nodes: `redis+cluster://host:port,host:port`
 * (`rediss+cluster://` for TLS, `user:password@` as usual). Every key Carteiro writes carries the
 * `{prefix}` hash tag where keys must share a slot (BullMQ's queue), so a cluster serves as is.
 */
import { Cluster, Redis, type RedisOptions } from 'ioredis';

export function connectRedis(url: string, opts: { forBullmq?: boolean } = {}): Redis {
  const options: RedisOptions = {
    // BullMQ workers block on Redis and must never give up a command; elsewhere fail fast.
    maxRetriesPerRequest: opts.forBullmq ? null : 2,
    enableOfflineQueue: opts.forBullmq === true,
    lazyConnect: false,
    connectTimeout: 5_000,
  };
  // A Cluster has the same command interface as a single Redis (and BullMQ, rate-limiter-flexible
  // and pub/sub accept either), so callers keep the one type.
  if (isClusterUrl(url)) return connectCluster(url, options) as unknown as Redis;
  return new Redis(url, options);
}

export function isClusterUrl(url: string): boolean {
  return /^rediss?\+cluster:\/\//i.test(url);
}

/** `redis+cluster://[user:password@]host:port[,host:port…][/]` → a Cluster seeded with those nodes. */
function connectCluster(url: string, options: RedisOptions): Cluster {
  const match = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^/?#]+)/i.exec(url);
  if (!match) throw new Error('REDIS_URL: expected redis+cluster://host:port[,host:port…]');
  const [, scheme, auth, hostList] = match as unknown as [string, string, string | undefined, string];
  const nodes = hostList.split(',').map((hp) => {
    const at = hp.lastIndexOf(':');
    return at > 0 ? { host: hp.slice(0, at), port: Number(hp.slice(at + 1)) } : { host: hp, port: 6379 };
  });
  const redisOptions: RedisOptions = { ...options };
  if (auth) {
    const colon = auth.indexOf(':');
    if (colon >= 0) {
      if (colon > 0) redisOptions.username = decodeURIComponent(auth.slice(0, colon));
      redisOptions.password = decodeURIComponent(auth.slice(colon + 1));
    } else {
      redisOptions.password = decodeURIComponent(auth);
    }
  }
  if (scheme.toLowerCase() === 'rediss') redisOptions.tls = {};
  return new Cluster(nodes, {
    redisOptions,
    enableOfflineQueue: options.enableOfflineQueue ?? true,
    lazyConnect: false,
  });
}

export async function pingRedis(redis: Redis, timeoutMs: number): Promise<boolean> {
  const ping = redis.ping().then(
    () => true,
    () => false,
  );
  const timeout = new Promise<boolean>((r) => setTimeout(() => r(false), timeoutMs).unref());
  return Promise.race([ping, timeout]);
}
