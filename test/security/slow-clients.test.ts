// Over a real socket: a client that stalls or trickles its request is cut off at the request
// deadline (CARTEIRO_REQUEST_TIMEOUT_MS), oversized headers get 431 and an oversized body 413 before
// it is read, and the server keeps serving everyone else throughout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { startCarteiro, TEST_ADMIN_KEY, type TestCarteiro } from '../support/carteiro.ts';

const DEADLINE_MS = 1_000;
let c: TestCarteiro;
let port = 0;

before(async () => {
  c = await startCarteiro({ listen: true, env: { CARTEIRO_REQUEST_TIMEOUT_MS: String(DEADLINE_MS), CARTEIRO_INGRESS_RATE_PER_SECOND: '0' } });
  port = Number(new URL(c.url as string).port);
});
after(() => c?.stop());

/** Opens a socket, runs `drive` on it, and resolves with what the server sent and when it closed. */
function converse(drive: (s: Socket) => void, maxMs = 10_000): Promise<{ reply: string; closedAfterMs: number }> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    const guard = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server kept the connection open for ${maxMs} ms; got ${JSON.stringify(reply.slice(0, 200))}`));
    }, maxMs);
    socket.on('data', (d) => {
      reply += d.toString('latin1');
    });
    socket.on('error', () => {}); // a reset is also a close
    socket.on('close', () => {
      clearTimeout(guard);
      resolve({ reply, closedAfterMs: Date.now() - started });
    });
    socket.on('connect', () => drive(socket));
  });
}

const auth = `Authorization: Bearer ${TEST_ADMIN_KEY}\r\n`;

test('a client that stops halfway through its body is cut off at the deadline', async () => {
  const { reply, closedAfterMs } = await converse((s) => {
    s.write(`POST /api/webhooks/trigger HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"event_type":`);
  });
  assert.ok(closedAfterMs >= DEADLINE_MS * 0.8 && closedAfterMs < DEADLINE_MS + 4_000, `closed after ${closedAfterMs} ms`);
  if (reply) assert.match(reply, /^HTTP\/1\.1 408/);
});

test('a client that trickles its headers (slowloris) is cut off at the deadline', async () => {
  let timer: NodeJS.Timeout | undefined;
  const { closedAfterMs } = await converse((s) => {
    s.write('GET /api/webhooks/stats HTTP/1.1\r\nHost: x\r\n');
    let i = 0;
    timer = setInterval(() => {
      if (!s.destroyed) s.write(`X-Slow-${i++}: a\r\n`);
    }, 150);
  });
  clearInterval(timer);
  assert.ok(closedAfterMs < DEADLINE_MS + 4_000, `closed after ${closedAfterMs} ms`);
});

test('headers past 16 KiB are refused with 431', async () => {
  const { reply } = await converse((s) => {
    s.write(`GET /api/webhooks/stats HTTP/1.1\r\nHost: x\r\n${auth}X-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`);
  });
  assert.match(reply, /^HTTP\/1\.1 431/);
});

test('a body announced larger than the limit is refused with 413 before it is sent', async () => {
  const { reply } = await converse((s) => {
    s.write(
      `POST /api/webhooks/trigger HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${5 * 1024 * 1024}\r\nConnection: close\r\n\r\n{`,
    );
  });
  assert.match(reply, /^HTTP\/1\.1 413/);
});

test('meanwhile, and afterwards, normal requests are served', async () => {
  const stalled = converse((s) => s.write(`POST /api/webhooks/trigger HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 50\r\n\r\n{`));
  const res = await fetch(`${c.url}/api/webhooks/stats`, { headers: { authorization: `Bearer ${TEST_ADMIN_KEY}` } });
  assert.equal(res.status, 200);
  await res.arrayBuffer();
  await stalled;
  const after = await fetch(`${c.url}/api/webhooks/health`);
  assert.equal(after.status, 200);
  await after.arrayBuffer();
});

/** A 5 MB JSON-looking body, five times the limit. */
const FIVE_MB = Buffer.alloc(5 * 1024 * 1024, 'a');

/** Sends FIVE_MB with node's http client; resolves with the status and body it read, or rejects with the socket error. */
function postWithHttp(headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${c.url}/api/webhooks/trigger`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json', 'content-length': String(FIVE_MB.length), ...headers },
    });
    req.on('response', (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    if (headers.expect) req.on('continue', () => req.end(FIVE_MB));
    else req.end(FIVE_MB);
  });
}

test('a 5 MB body gets a 413 the client can read, with fetch and with the http client, every time', async () => {
  for (let i = 0; i < 10; i++) {
    const res = await fetch(`${c.url}/api/webhooks/trigger`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, 'content-type': 'application/json' },
      body: FIVE_MB,
    });
    assert.equal(res.status, 413, `fetch, try ${i + 1}`);
    assert.match(await res.text(), /too large/);
    const viaHttp = await postWithHttp();
    assert.equal(viaHttp.status, 413, `http client, try ${i + 1}`);
    assert.equal(JSON.parse(viaHttp.body).details.field, 'body');
  }
  const after = await fetch(`${c.url}/api/webhooks/health`);
  assert.equal(after.status, 200);
  await after.arrayBuffer();
});

test('with Expect: 100-continue an oversized body is answered 413 instead of 100 Continue', async () => {
  const { reply } = await converse((s) => {
    s.write(
      `POST /api/webhooks/trigger HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${FIVE_MB.length}\r\nExpect: 100-continue\r\n\r\n`,
    );
  });
  assert.match(reply, /^HTTP\/1\.1 413/, reply.slice(0, 100));
  assert.doesNotMatch(reply, /100 Continue/);
  assert.match(reply, /too large/);
  for (let i = 0; i < 3; i++) assert.equal((await postWithHttp({ expect: '100-continue' })).status, 413);
  // A body within the limit still gets its 100 Continue and is served.
  const { reply: small } = await converse((s) => {
    const body = '{"event_type":"user.registered","data":{"user_id":"u","email":"e@x.io","name":"n"}}';
    s.write(
      `POST /api/webhooks/trigger HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
    );
    s.once('data', () => s.write(body));
  });
  assert.match(small, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 202/);
});

test('after its 413 the server reads the rest of an oversized body and closes cleanly, without a reset', async () => {
  const outcome = await new Promise<{ reply: string; error: string | null; sent: number }>((resolve) => {
    const s = connect(port, '127.0.0.1');
    let reply = '';
    let error: string | null = null;
    let sent = 0;
    let sending = false;
    // Keeps sending the body after the 413 has arrived, as a client that writes before it reads does.
    const sendRest = async () => {
      const chunk = FIVE_MB.subarray(0, 64 * 1024);
      while (sent < FIVE_MB.length && !s.destroyed) {
        const n = Math.min(chunk.length, FIVE_MB.length - sent);
        sent += n;
        if (!s.write(chunk.subarray(0, n)))
          await new Promise((r) => {
            s.once('drain', r);
            s.once('close', r);
          });
      }
    };
    s.on('data', (d) => {
      reply += d.toString('latin1');
      if (!sending && reply.includes('\r\n\r\n')) {
        sending = true;
        void sendRest();
      }
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      error = err.code ?? err.message;
    });
    s.on('close', () => resolve({ reply, error, sent }));
    s.on('connect', () => {
      s.write(`POST /api/webhooks/trigger HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${FIVE_MB.length}\r\n\r\n`);
      s.write(FIVE_MB.subarray(0, 1024));
      sent = 1024;
    });
  });
  assert.match(outcome.reply, /^HTTP\/1\.1 413/);
  assert.match(outcome.reply, /connection: close/i);
  assert.equal(outcome.error, null, `the connection failed with ${outcome.error} after ${outcome.sent} bytes`);
  assert.equal(outcome.sent, FIVE_MB.length);
});
