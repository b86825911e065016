/**
 * A real HTTP receiver on loopback that records every request (exact body bytes and headers) and
 * answers with whatever the test scripts: status codes, delays, connection resets.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { verifySeedSignature } from '../../src/delivery/signature.ts';

export type Received = { path: string; headers: Record<string, string>; body: string; at: number };
export type Reply = { status?: number; delayMs?: number; reset?: boolean; headers?: Record<string, string>; body?: string };
export type Responder = (req: Received, index: number) => Reply | Promise<Reply>;

export type TestReceiver = {
  url: string;
  received: Received[];
  respond(responder: Responder): void;
  /** Resolves once `count` requests arrived; the deadline (60 s by default) only stops a hang. */
  waitFor(count: number, timeoutMs?: number): Promise<Received[]>;
  close(): Promise<void>;
};

export async function startReceiver(responder: Responder = () => ({ status: 200 })): Promise<TestReceiver> {
  let current = responder;
  const received: Received[] = [];
  const waiters: { count: number; resolve: () => void }[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const entry: Received = {
        path: req.url ?? '/',
        headers: req.headers as Record<string, string>,
        body: Buffer.concat(chunks).toString('utf8'),
        at: Date.now(),
      };
      const index = received.length;
      received.push(entry);
      for (const w of waiters.filter((w) => received.length >= w.count)) w.resolve();
      const reply = await current(entry, index);
      if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
      if (reply.reset) {
        req.socket.destroy();
        return;
      }
      res.writeHead(reply.status ?? 200, { 'content-type': 'text/plain', ...reply.headers });
      res.end(reply.body ?? 'ok');
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    respond(r) {
      current = r;
    },
    waitFor(count, timeoutMs = 60_000) {
      if (received.length >= count) return Promise.resolve(received);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`receiver got ${received.length} of ${count} requests in ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          count,
          resolve: () => {
            clearTimeout(t);
            resolve(received);
          },
        });
      });
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The seed's verify function (X-Webhook-Signature over "{timestamp}.{body}"). */
export function verifiesWithSeed(secret: string, r: Received, header = 'x-webhook-signature'): boolean {
  const sig = r.headers[header];
  const ts = r.headers['x-webhook-timestamp'];
  return typeof sig === 'string' && typeof ts === 'string' && verifySeedSignature(secret, ts, r.body, sig);
}

/** Verification with the public `standardwebhooks` package, as a receiver would do it. */
export function verifiesWithStandardWebhooks(secret: string, r: Received): boolean {
  try {
    new Webhook(secret).verify(r.body, {
      'webhook-id': r.headers['webhook-id'] as string,
      'webhook-timestamp': r.headers['webhook-timestamp'] as string,
      'webhook-signature': r.headers['webhook-signature'] as string,
    });
    return true;
  } catch {
    return false;
  }
}

/** The most requests that fell inside any one-second span. */
export function maxInAnySecond(times: number[]): number {
  const sorted = [...times].sort((x, y) => x - y);
  let best = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while ((sorted[i] as number) - (sorted[j] as number) >= 1000) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

/**
 * A receiver that takes every request and answers none of them until released. `open` counts the
 * requests it holds whose connection is still open (a sender that gives up closes it).
 */
export async function startHangingReceiver() {
  const held: ServerResponse[] = [];
  const received: string[] = [];
  let open = 0;
  let maxOpen = 0;
  let answer: number | null = null;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received.push(String(req.headers['webhook-id']));
      if (answer !== null) return void res.writeHead(answer).end('ok');
      open++;
      maxOpen = Math.max(maxOpen, open);
      res.on('close', () => open--);
      held.push(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    get open() {
      return open;
    },
    get maxOpen() {
      return maxOpen;
    },
    resetMax() {
      maxOpen = open;
    },
    /** Answers what it holds, and everything from now on, with `status`. */
    release(status = 200) {
      answer = status;
      for (const res of held.splice(0)) if (!res.writableEnded && !res.destroyed) res.writeHead(status).end('ok');
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
