// Child-process side of the benchmark receiver (see receiver.ts for the API).
// It runs in its own process so that its CPU cost is not charged to the code
// under test and its event loop is not delayed by it.
//
// Hot path per request: one clock read, one Math.random() when failures are
// injected, a Set lookup for the (path, webhook-id) pair and, unless countOnly,
// one JSON.parse of the body to read data.sent_at_ms (and data.seq). Everything
// else (sorting for percentiles) happens only when stats are asked for.
//
// Uniqueness is per (request path, webhook-id): with fan-out, one event is sent
// to several endpoints under the same webhook-id, and benchmarks give each
// endpoint its own path on this one receiver.
//
// Flapping (chaos): besides plain 500s, a fraction of requests can be reset
// (socket destroyed), hung (no answer for hangMs, then destroyed) or answered
// 200 with a body dribbled over slowMs. A request only counts as acknowledged
// once its 200 response has been written out completely.
import http from 'node:http';
import { SampleBuffer } from './stats.ts';
import type { ControlReply, ControlRequest, FlapConfig, ReceiverChildConfig, ReceiverStats } from './receiver.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as ReceiverChildConfig;

const clock = (): number => performance.timeOrigin + performance.now();

let failureRate = config.failureRate ?? 0;
let flap: Required<FlapConfig> = normalizeFlap(config.flap);
let requests = 0;
let resets = 0;
let hangs = 0;
let slowBodies = 0;
let seqConflicts = 0;
/** data.seq → the first webhook-id acknowledged for it, and when (only when bodies carry a seq). */
let seqIds = new Map<number, string>();
let seqAt = new Map<number, number>();
let acknowledged = 0;
let failuresInjected = 0;
let duplicates = 0;
let missingId = 0;
let parseErrors = 0;
let firstReceiveMs: number | null = null;
let lastReceiveMs: number | null = null;
let seen = new Set<string>();
const latencies = new SampleBuffer(65_536, config.maxLatencySamples ?? 10_000_000);

function normalizeFlap(f: FlapConfig | undefined): Required<FlapConfig> {
  const p = (v: number | undefined) => Math.min(1, Math.max(0, v ?? 0));
  return {
    resetRate: p(f?.resetRate),
    hangRate: p(f?.hangRate),
    hangMs: f?.hangMs ?? 10_000,
    slowRate: p(f?.slowRate),
    slowMs: f?.slowMs ?? 500,
  };
}

function reset(): void {
  requests = acknowledged = failuresInjected = duplicates = missingId = parseErrors = 0;
  resets = hangs = slowBodies = seqConflicts = 0;
  firstReceiveMs = lastReceiveMs = null;
  seen = new Set();
  seqIds = new Map();
  seqAt = new Map();
  latencies.clear();
}

function stats(): ReceiverStats {
  return {
    requests,
    acknowledged,
    failuresInjected,
    uniqueIds: seen.size,
    duplicates,
    missingId,
    parseErrors,
    latencyMs: latencies.summary(),
    latencyDropped: latencies.dropped,
    firstReceiveMs,
    lastReceiveMs,
    failureRate,
    countOnly: config.countOnly === true,
    resets,
    hangs,
    slowBodies,
    seqConflicts,
  };
}

function control(req: ControlRequest): ControlReply['result'] {
  switch (req.cmd) {
    case 'stats':
      return stats();
    case 'reset':
      reset();
      return null;
    case 'failureRate':
      failureRate = Math.min(1, Math.max(0, req.value ?? 0));
      return null;
    case 'flap':
      flap = normalizeFlap(req.value);
      return null;
    case 'ids':
      return [...seen];
    case 'seqs':
      return [...seqAt];
    case 'stop':
      // Reply first, then leave: the parent waits for 'exit' anyway.
      setImmediate(() => {
        server.closeAllConnections();
        server.close(() => process.exit(0));
      });
      return null;
  }
}

const OK_HEADERS = { 'content-type': 'text/plain', 'content-length': '2' };
const FAIL_HEADERS = { 'content-type': 'text/plain', 'content-length': '14' };

// Only 2xx deliveries count towards unique/duplicate: a 500 we injected is
// expected to be retried with the same webhook-id, and that is not a duplicate.
function acknowledge(path: string, id: string | string[] | undefined, seq: number | undefined): void {
  acknowledged++;
  if (typeof id !== 'string') {
    missingId++;
    return;
  }
  const key = `${path} ${id}`;
  if (seen.has(key)) duplicates++;
  else seen.add(key);
  if (seq !== undefined) {
    // The same event (seq) under a different webhook-id is a real duplicate, not an at-least-once retry.
    // (Fan-out sends one event to several paths under one webhook-id: compare the id alone.)
    const first = seqIds.get(seq);
    if (first === undefined) {
      seqIds.set(seq, id);
      seqAt.set(seq, clock());
    } else if (first !== id) seqConflicts++;
  }
}

function readBody(body: Buffer): { sent?: number; seq?: number } {
  try {
    const env = JSON.parse(body.toString('utf8')) as { data?: { sent_at_ms?: unknown; seq?: unknown } };
    const sent = env?.data?.sent_at_ms;
    const seq = env?.data?.seq;
    return {
      ...(typeof sent === 'number' ? { sent } : {}),
      ...(typeof seq === 'number' ? { seq } : {}),
    };
  } catch {
    parseErrors++;
    return {};
  }
}

/** Decides a flapping misbehaviour for this request, or null to answer normally. */
function misbehave(): 'reset' | 'hang' | 'slow' | null {
  if (flap.resetRate === 0 && flap.hangRate === 0 && flap.slowRate === 0) return null;
  const r = Math.random();
  if (r < flap.resetRate) return 'reset';
  if (r < flap.resetRate + flap.hangRate) return 'hang';
  if (r < flap.resetRate + flap.hangRate + flap.slowRate) return 'slow';
  return null;
}

function onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
  const url = req.url ?? '/';
  if (url.startsWith('/__')) return httpControl(url, req, res);

  const t = clock();
  requests++;
  if (firstReceiveMs === null) firstReceiveMs = t;
  lastReceiveMs = t;

  if (failureRate > 0 && Math.random() < failureRate) {
    failuresInjected++;
    req.resume();
    res.writeHead(500, FAIL_HEADERS).end('injected error');
    return;
  }
  const path = url;
  const odd = misbehave();
  if (odd === 'reset') {
    resets++;
    req.socket.destroy();
    return;
  }
  if (odd === 'hang') {
    hangs++;
    req.resume();
    const timer = setTimeout(() => req.socket.destroy(), flap.hangMs);
    req.socket.once('close', () => clearTimeout(timer));
    return;
  }

  const id = req.headers['webhook-id'];
  if (config.countOnly) {
    // Ceiling mode: drain without buffering or parsing.
    req.resume();
    req.once('end', () => {
      acknowledge(path, id, undefined);
      res.writeHead(200, OK_HEADERS).end('ok');
    });
    return;
  }

  // A ~1 KB body nearly always arrives as a single chunk; avoid concat then.
  let first: Buffer | undefined;
  let rest: Buffer[] | undefined;
  req.on('data', (chunk: Buffer) => {
    if (first === undefined) first = chunk;
    else (rest ??= [first]).push(chunk);
  });
  req.once('end', () => {
    const body = rest ? Buffer.concat(rest) : first;
    const parsed = body !== undefined ? readBody(body) : {};
    if (odd === 'slow') {
      // 200 at once, then the body a byte at a time: acknowledged only if it all goes out.
      slowBodies++;
      res.writeHead(200, OK_HEADERS);
      res.write('o');
      const timer = setTimeout(() => res.end('k'), flap.slowMs);
      res.once('finish', () => {
        if (parsed.sent !== undefined) latencies.push(t - parsed.sent);
        acknowledge(path, id, parsed.seq);
      });
      res.once('close', () => clearTimeout(timer));
      return;
    }
    if (parsed.sent !== undefined) latencies.push(t - parsed.sent);
    acknowledge(path, id, parsed.seq);
    res.writeHead(200, OK_HEADERS).end('ok');
  });
}

// Same control commands over HTTP, for code that only knows the receiver's URL
// (GET /__stats, POST /__reset, POST /__failure-rate?p=0.1).
function httpControl(url: string, req: http.IncomingMessage, res: http.ServerResponse): void {
  req.resume();
  const parsed = new URL(url, 'http://127.0.0.1');
  let result: ControlReply['result'];
  if (parsed.pathname === '/__stats') result = control({ seq: 0, cmd: 'stats' });
  else if (parsed.pathname === '/__reset' && req.method === 'POST') result = control({ seq: 0, cmd: 'reset' });
  else if (parsed.pathname === '/__failure-rate' && req.method === 'POST')
    result = control({ seq: 0, cmd: 'failureRate', value: Number(parsed.searchParams.get('p') ?? 0) });
  else {
    res.writeHead(404).end();
    return;
  }
  const body = JSON.stringify(result);
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
}

// Long keep-alive so client pools keep their sockets between benchmark phases
// (Node's 5 s default would make idle pools reconnect, or race a close).
const server = http.createServer({ keepAliveTimeout: 65_000, headersTimeout: 70_000 }, onRequest);
server.maxRequestsPerSocket = 0;

process.on('message', (msg: ControlRequest) => {
  const reply: ControlReply = { seq: msg.seq, result: control(msg) };
  process.send?.(reply);
});
// Never outlive the parent: if the IPC channel closes, exit.
process.on('disconnect', () => process.exit(0));

server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  process.send?.({ ready: true, port });
});
