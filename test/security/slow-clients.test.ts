// Over a real socket: a client that stalls or trickles its request is cut off at the request
// deadline (CARTEIRO_REQUEST_TIMEOUT_MS), oversized headers get 431 and an oversized body 413 before
// it is read, and the server keeps serving everyone else throughout.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
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
    socket.on('data', (d) => { reply += d.toString('latin1'); });
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
    timer = setInterval(() => { if (!s.destroyed) s.write(`X-Slow-${i++}: a\r\n`); }, 150);
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
    s.write(`POST /api/webhooks/trigger HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${5 * 1024 * 1024}\r\nConnection: close\r\n\r\n{`);
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
