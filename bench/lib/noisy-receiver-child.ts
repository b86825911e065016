// Child-process side of the noisy receivers (see noisy-receivers.ts): `count` plain node:http
// servers, each on its own loopback port (its own origin, as distinct hosts would be), all behaving
// the same way:
//
//   hang  the connection is accepted and the request read, and nothing is ever answered: the socket
//         stays open until the sender gives up (its timeout) or stop() destroys it
//   slow  200 "ok", sent slowMs after the request arrived
//
// It counts requests, answers, and sockets open now and at most, per kind, and never outlives the
// parent (IPC disconnect → exit).
import http from 'node:http';
import type { Socket } from 'node:net';
import type { NoisyChildConfig, NoisyControl, NoisyReply, NoisyStats } from './noisy-receivers.ts';

const config = JSON.parse(process.argv[2] ?? '{}') as NoisyChildConfig;
const sockets = new Set<Socket>();
const timers = new Set<NodeJS.Timeout>();
let requests = 0;
let answered = 0;
let peakOpenSockets = 0;
let connections = 0;
/** Requests per port index, to show how the load spread over the origins. */
const perServer: number[] = Array.from({ length: config.count }, () => 0);

function stats(): NoisyStats {
  let busy = 0;
  for (const n of perServer) if (n > 0) busy++;
  return {
    kind: config.kind,
    requests,
    answered,
    connections,
    openSockets: sockets.size,
    peakOpenSockets,
    serversHit: busy,
    maxPerServer: Math.max(0, ...perServer),
  };
}

function handler(index: number) {
  return (req: http.IncomingMessage, res: http.ServerResponse): void => {
    requests++;
    perServer[index] = (perServer[index] ?? 0) + 1;
    req.resume();
    if (config.kind === 'hang') return; // never answered
    const t = setTimeout(() => {
      timers.delete(t);
      if (res.destroyed) return;
      answered++;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' }).end('ok');
    }, config.slowMs);
    timers.add(t);
    res.once('close', () => {
      clearTimeout(t);
      timers.delete(t);
    });
  };
}

const servers: http.Server[] = [];
for (let i = 0; i < config.count; i++) {
  // No server-side timeouts at all: only the sender decides when to give up on a hung request.
  const server = http.createServer({ keepAliveTimeout: 120_000, headersTimeout: 0, requestTimeout: 0 }, handler(i));
  server.timeout = 0;
  server.maxRequestsPerSocket = 0;
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    if (sockets.size > peakOpenSockets) peakOpenSockets = sockets.size;
    s.once('close', () => sockets.delete(s));
  });
  servers.push(server);
}

function stop(): void {
  for (const t of timers) clearTimeout(t);
  for (const s of sockets) s.destroy();
  let open = servers.length;
  if (open === 0) process.exit(0);
  for (const srv of servers) srv.close(() => (--open === 0 ? process.exit(0) : undefined));
  setTimeout(() => process.exit(0), 2_000).unref();
}

process.on('message', (m: NoisyControl) => {
  const reply: NoisyReply = { seq: m.seq, result: m.cmd === 'stats' ? stats() : null };
  process.send?.(reply);
  if (m.cmd === 'stop') setImmediate(stop);
});
process.on('disconnect', () => process.exit(0));

await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve))));
process.send?.({ ready: true, ports: servers.map((s) => (s.address() as { port: number }).port) });
