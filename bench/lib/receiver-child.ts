// Child-process side of the benchmark receiver (see receiver.ts for the API).
// It runs in its own process so that its CPU cost is not charged to the code
// under test and its event loop is not delayed by it.
//
// Hot path per request: one clock read, one Math.random() when failures are
// injected, a Set lookup for the webhook-id and, unless countOnly, one
// JSON.parse of the body to read data.sent_at_ms. Everything else (sorting
// for percentiles) happens only when stats are asked for.
import http from 'node:http';
import { SampleBuffer } from './stats.ts';
import type { ControlReply, ControlRequest, ReceiverChildConfig, ReceiverStats } from './receiver.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as ReceiverChildConfig;

const clock = (): number => performance.timeOrigin + performance.now();

let failureRate = config.failureRate ?? 0;
let requests = 0;
let acknowledged = 0;
let failuresInjected = 0;
let duplicates = 0;
let missingId = 0;
let parseErrors = 0;
let firstReceiveMs: number | null = null;
let lastReceiveMs: number | null = null;
let seen = new Set<string>();
const latencies = new SampleBuffer(65_536, config.maxLatencySamples ?? 10_000_000);

function reset(): void {
  requests = acknowledged = failuresInjected = duplicates = missingId = parseErrors = 0;
  firstReceiveMs = lastReceiveMs = null;
  seen = new Set();
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
function acknowledge(id: string | string[] | undefined): void {
  acknowledged++;
  if (typeof id !== 'string') {
    missingId++;
    return;
  }
  if (seen.has(id)) duplicates++;
  else seen.add(id);
}

function readSentAt(body: Buffer): number | undefined {
  try {
    const env = JSON.parse(body.toString('utf8')) as { data?: { sent_at_ms?: unknown } };
    const sent = env?.data?.sent_at_ms;
    return typeof sent === 'number' ? sent : undefined;
  } catch {
    parseErrors++;
    return undefined;
  }
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

  const id = req.headers['webhook-id'];
  if (config.countOnly) {
    // Ceiling mode: drain without buffering or parsing.
    req.resume();
    req.once('end', () => {
      acknowledge(id);
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
    if (body !== undefined) {
      const sent = readSentAt(body);
      if (sent !== undefined) latencies.push(t - sent);
    }
    acknowledge(id);
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
