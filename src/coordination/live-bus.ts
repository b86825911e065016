/**
 * Live updates (delivery outcomes, new events) for the dashboard's stream. Across processes through
 * Redis pub/sub when REDIS_URL is set, in-process otherwise. Fire-and-forget by design: a missed
 * message only delays a dashboard refresh.
 */
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { connectRedis } from './redis.ts';

export type LiveMessage = { type: string; organization_id?: string | null; [k: string]: unknown };

export type LiveBus = {
  publish(message: LiveMessage): void;
  subscribe(fn: (message: LiveMessage) => void): () => void;
  close(): Promise<void>;
};

export function createLocalLiveBus(): LiveBus {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  return {
    publish: (m) => void emitter.emit('m', m),
    subscribe(fn) {
      emitter.on('m', fn);
      return () => emitter.off('m', fn);
    },
    close: async () => void emitter.removeAllListeners(),
  };
}

export function createRedisLiveBus(publisher: Redis, url: string, channel: string): LiveBus {
  const local = createLocalLiveBus();
  let subscriber: Redis | null = null;
  return {
    publish(m) {
      publisher.publish(channel, JSON.stringify(m)).catch(() => {});
    },
    subscribe(fn) {
      if (!subscriber) {
        subscriber = connectRedis(url);
        // connectRedis has no offline queue: a SUBSCRIBE sent before the connection is ready fails
        // at once. Subscribe on every 'ready' (first connect and reconnects; repeating it is harmless).
        const sub = subscriber;
        sub.on('ready', () => void sub.subscribe(channel).catch(() => {}));
        sub.on('error', () => {});
        subscriber.on('message', (_c: string, raw: string) => {
          try {
            local.publish(JSON.parse(raw) as LiveMessage);
          } catch {
            /* a malformed message is dropped: nothing depends on it */
          }
        });
      }
      const off = local.subscribe(fn);
      return () => {
        off();
      };
    },
    async close() {
      await local.close();
      if (subscriber) subscriber.disconnect();
    },
  };
}
