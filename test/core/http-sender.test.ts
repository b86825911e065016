/**
 * The HTTP sender's deadline (one timeout for the whole exchange, cleared as soon as the exchange ends)
 * and the response body it keeps for the attempt log (whole up to the limit, cut beyond it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { connect, createServer as createNetServer, type AddressInfo } from 'node:net';
import { spawn } from 'node:child_process';
import { createHttpSender } from '../../src/delivery/http-sender.ts';

describe('http sender: deadline and response bodies', () => {
  let server: Server;
  let base: string;
  const trickles = new Set<NodeJS.Timeout>();

  before(async () => {
    server = createServer((req, res) => {
      req.resume();
      if (req.url === '/trickle') {
        // Headers at once, then a byte every 50 ms for ever: never idle long enough for a per-chunk timeout.
        res.writeHead(200, { 'content-type': 'text/plain' });
        const t = setInterval(() => res.write('.'), 50);
        trickles.add(t);
        res.on('close', () => {
          clearInterval(t);
          trickles.delete(t);
        });
        return;
      }
      if (req.url === '/declared') {
        const body = 'd'.repeat(3000);
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': String(body.length) }).end(body);
        return;
      }
      if (req.url === '/chunked') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        for (let i = 0; i < 30; i++) res.write('c'.repeat(100));
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    trickles.forEach(clearInterval);
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  test('a receiver that trickles its body forever is cut off at the deadline', async () => {
    const sender = createHttpSender({ connectionsPerOrigin: 2, timeoutMs: 400, responseBodyLimitBytes: 1024 });
    try {
      const result = await sender.post(`${base}/trickle`, '{}', {});
      assert.equal(result.kind, 'network-error');
      assert.match(result.kind === 'network-error' ? result.error : '', /timeout after 400 ms/);
      assert.ok(result.durationMs >= 350 && result.durationMs < 10_000, `took ${result.durationMs} ms`); // cut off, not read for ever
    } finally {
      await sender.close();
    }
  });

  test('a response body is kept whole up to the limit and cut beyond it, declared or chunked', async () => {
    const sender = createHttpSender({ connectionsPerOrigin: 2, timeoutMs: 5_000, responseBodyLimitBytes: 1024 });
    try {
      const small = await sender.post(`${base}/ok`, '{}', {});
      assert.equal(small.kind === 'response' && small.body, 'ok');
      for (const path of ['/declared', '/chunked']) {
        const big = await sender.post(`${base}${path}`, '{}', {});
        assert.equal(big.kind, 'response', path);
        const body = big.kind === 'response' ? big.body : '';
        assert.equal(body.slice(0, 1024), (path === '/declared' ? 'd' : 'c').repeat(1024), path);
        assert.match(body.slice(1024), /^…\[truncated \d+\+ bytes\]$/, path);
      }
      const whole = createHttpSender({ connectionsPerOrigin: 2, timeoutMs: 5_000, responseBodyLimitBytes: 3000 });
      const exact = await whole.post(`${base}/declared`, '{}', {});
      assert.equal(exact.kind === 'response' && exact.body, 'd'.repeat(3000), 'a declared length equal to the limit is kept whole');
      await whole.close();
    } finally {
      await sender.close();
    }
  });

  test('a finished request leaves no deadline timer behind', async () => {
    const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const sender = createHttpSender({ connectionsPerOrigin: 4, timeoutMs: 60_000, responseBodyLimitBytes: 1024 });
    try {
      const before = timers();
      const results = await Promise.all(Array.from({ length: 50 }, () => sender.post(`${base}/ok`, '{}', {})));
      assert.ok(results.every((r) => r.kind === 'response' && r.statusCode === 200));
      // A deadline still armed after its request ended would keep a process alive for the full timeout.
      assert.ok(timers() < before + 50, `${timers() - before} timers still armed after 50 finished requests`);
    } finally {
      await sender.close();
    }
  });
});

describe('http sender: an attempt is the time on the wire', () => {
  test("requests queued behind an origin's busy connections are not timed until they are sent", async (t) => {
    const answered: number[] = [];
    const slow = createServer((req, res) => {
      req.resume();
      setTimeout(() => {
        answered.push(Date.now());
        res.end('ok');
      }, 600);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => slow.close(() => r())));
    // One connection, a 1.5 s deadline, three at once: the third waits 1.2 s for the connection, so
    // timed from the call it would fail (1.8 s); each exchange alone leaves a busy machine 900 ms.
    const sender = createHttpSender({ connectionsPerOrigin: 1, timeoutMs: 1_500, responseBodyLimitBytes: 100 });
    t.after(() => sender.close());
    const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/slow`;
    const results = await Promise.all([0, 1, 2].map((i) => sender.post(url, `{"n":${i}}`, {})));
    assert.deepEqual(
      results.map((r) => r.kind === 'response' && r.statusCode),
      [200, 200, 200],
      JSON.stringify(results),
    );
    // Timed from the call, the second and third would take 1.2 s and 1.8 s.
    for (const r of results) assert.ok(r.durationMs >= 550 && r.durationMs < 1_200, `duration ${r.durationMs} ms is the exchange's own`);
    assert.equal(answered.length, 3);
  });

  test('connecting counts against the deadline: a receiver that never accepts fails at the timeout, not at 10 s', { timeout: 30_000 }, async (t) => {
    // A listening socket that never accepts, its backlog filled, so further connection attempts get
    // no answer (Node accepts every connection itself, hence a small Python listener).
    const holder = spawn('python3', [
      '-c',
      'import socket,sys,time\ns=socket.socket()\ns.bind(("127.0.0.1",0))\ns.listen(0)\nprint(s.getsockname()[1],flush=True)\ntime.sleep(60)',
    ]);
    t.after(() => {
      holder.kill('SIGKILL');
    });
    const port = await new Promise<number>((resolve, reject) => {
      holder.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim())));
      holder.once('error', reject);
    });
    const fillers = Array.from({ length: 4 }, () => connect(port, '127.0.0.1').on('error', () => {}));
    t.after(() => {
      for (const f of fillers) f.destroy();
    });
    // The backlog is full once one filler is in it (listen(0)); the others' attempts go unanswered.
    while (!fillers.some((f) => !f.connecting)) await new Promise((r) => setTimeout(r, 10));
    const sender = createHttpSender({ connectionsPerOrigin: 1, timeoutMs: 1_000, responseBodyLimitBytes: 100 });
    t.after(() => sender.close());
    const started = Date.now();
    const result = await sender.post(`http://127.0.0.1:${port}/x`, '{}', {});
    const took = Date.now() - started;
    assert.equal(result.kind, 'network-error', JSON.stringify(result));
    assert.ok(took < 8_000, `gave up after ${took} ms`); // at the 1 s deadline, with room for a busy machine
  });
});

describe('http sender: protocol violations', () => {
  test('a status under 100 is recorded as what the receiver did, not as an internal assertion', async (t) => {
    const raw = createNetServer((socket) => {
      socket.once('data', () => socket.end('HTTP/1.1 000 Nothing\r\ncontent-length: 0\r\n\r\n'));
      socket.on('error', () => {});
    });
    await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => raw.close(() => r())));
    const sender = createHttpSender({ connectionsPerOrigin: 1, timeoutMs: 2_000, responseBodyLimitBytes: 100 });
    t.after(() => sender.close());
    const result = await sender.post(`http://127.0.0.1:${(raw.address() as AddressInfo).port}/`, '{}', {});
    assert.equal(result.kind, 'network-error', JSON.stringify(result));
    assert.match((result as { error: string }).error, /^invalid HTTP response/);
    assert.doesNotMatch((result as { error: string }).error, /assert|ERR_ASSERTION/);
  });
});

describe('http sender: headers made when the request is sent', () => {
  test('a request queued behind its origin gets its headers (signature, timestamp) when a connection takes it', async (t) => {
    const seen: string[] = [];
    const slow = createServer((req, res) => {
      seen.push(String(req.headers['x-made-at']));
      req.resume();
      setTimeout(() => res.end('ok'), 300);
    });
    await new Promise<void>((r) => slow.listen(0, '127.0.0.1', r));
    t.after(() => new Promise<void>((r) => slow.close(() => r())));
    const sender = createHttpSender({ connectionsPerOrigin: 1, timeoutMs: 2_000, responseBodyLimitBytes: 100 });
    t.after(() => sender.close());
    const url = `http://127.0.0.1:${(slow.address() as AddressInfo).port}/`;
    const asked = Date.now();
    const made = () => ({ 'x-made-at': String(Date.now()) });
    const results = await Promise.all([sender.post(url, '{}', made), sender.post(url, '{}', made)]);
    assert.deepEqual(
      results.map((r) => r.kind),
      ['response', 'response'],
    );
    const [first, second] = seen.map(Number) as [number, number];
    assert.ok(second - asked >= 250 && first - asked < second - asked, 'the first is made at once, before the connection frees');
    assert.ok(second - first >= 250, `the second is made when the connection is free (${second - first} ms later)`);
  });
});
