// Receivers that misbehave, for the isolation section of the bench and the noisy-neighbour phase of
// chaos: `count` endpoints' worth, each on its own loopback port (its own origin).
//
//   hang    accept the connection and the request, never answer (sockets closed only by the sender's
//           timeout, or by stop())
//   slow    answer 200 after slowMs (5 s in the bench)
//   refuse  nothing listens: ports that were bound, then closed, so a connect is refused at once
//
// hang and slow run in one child process (noisy-receiver-child.ts: one node:http server per port),
// so their CPU is not charged to the bench or to Carteiro; refuse needs no process. Stopped by pid.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { freePort } from './carteiro.ts';
import { node24Path } from './receiver.ts';

export type NoisyKind = 'hang' | 'slow' | 'refuse';

export type NoisyStats = {
  kind: NoisyKind;
  /** Requests that arrived (all of them, for refuse: 0, nothing is there to count). */
  requests: number;
  /** slow: requests answered 200. */
  answered: number;
  /** TCP connections accepted. */
  connections: number;
  openSockets: number;
  peakOpenSockets: number;
  /** Ports (endpoints) that got at least one request, and the most any one port got. */
  serversHit: number;
  maxPerServer: number;
};

/** @internal shared with noisy-receiver-child.ts */
export type NoisyChildConfig = { kind: 'hang' | 'slow'; count: number; slowMs: number };
/** @internal */
export type NoisyControl = { seq: number; cmd: 'stats' | 'stop' };
/** @internal */
export type NoisyReply = { seq: number; result: NoisyStats | null };

export type NoisyReceivers = {
  kind: NoisyKind;
  /** One delivery URL per endpoint, each on its own port. */
  urls: string[];
  /** The child's pid (hang, slow with count > 0), else null. */
  pid: number | null;
  stats(): Promise<NoisyStats>;
  /** Destroys every open socket, closes the servers, and waits for the child to exit. */
  stop(): Promise<void>;
};

const EMPTY = (kind: NoisyKind): NoisyStats => ({
  kind,
  requests: 0,
  answered: 0,
  connections: 0,
  openSockets: 0,
  peakOpenSockets: 0,
  serversHit: 0,
  maxPerServer: 0,
});

/** Ports nothing listens on: each bound once and closed (distinct from one another). */
export async function refusingPorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let tries = 0; ports.size < count && tries < count * 20; tries++) ports.add(await freePort());
  if (ports.size < count) throw new Error(`found only ${ports.size} of ${count} free ports`);
  return [...ports];
}

export async function startNoisyReceivers(
  kind: NoisyKind,
  count: number,
  o: { slowMs?: number; path?: string; startTimeoutMs?: number } = {},
): Promise<NoisyReceivers> {
  const path = o.path ?? '/hook';
  if (kind === 'refuse' || count === 0) {
    const ports = kind === 'refuse' ? await refusingPorts(count) : [];
    return { kind, urls: ports.map((p) => `http://127.0.0.1:${p}${path}`), pid: null, stats: async () => EMPTY(kind), stop: async () => {} };
  }
  const config: NoisyChildConfig = { kind, count, slowMs: o.slowMs ?? 5_000 };
  const child: ChildProcess = fork(fileURLToPath(new URL('./noisy-receiver-child.ts', import.meta.url)), [JSON.stringify(config)], {
    execPath: node24Path(),
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const ports = await new Promise<number[]>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`noisy receivers (${kind} × ${count}) did not start within ${o.startTimeoutMs ?? 15_000} ms`));
    }, o.startTimeoutMs ?? 15_000);
    child.on('message', function ready(m: { ready?: boolean; ports?: number[] }) {
      if (!m.ready || !m.ports) return;
      clearTimeout(timer);
      child.off('message', ready);
      resolve(m.ports);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`noisy receivers exited during start-up (code ${code})`));
    });
  });
  if (child.pid === undefined) throw new Error('noisy receivers have no pid');
  let seq = 0;
  const pending = new Map<number, (r: NoisyStats | null) => void>();
  child.on('message', (m: NoisyReply) => {
    const p = pending.get(m.seq);
    if (p) {
      pending.delete(m.seq);
      p(m.result);
    }
  });
  const call = (cmd: NoisyControl['cmd']): Promise<NoisyStats | null> =>
    new Promise((resolve, reject) => {
      if (child.exitCode !== null || !child.connected) return reject(new Error('noisy receivers are not running'));
      const s = ++seq;
      const timer = setTimeout(() => {
        pending.delete(s);
        reject(new Error(`noisy receivers: '${cmd}' timed out`));
      }, 10_000);
      pending.set(s, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      child.send({ seq: s, cmd } satisfies NoisyControl);
    });
  return {
    kind,
    urls: ports.map((p) => `http://127.0.0.1:${p}${path}`),
    pid: child.pid,
    stats: async () => (await call('stats')) ?? EMPTY(kind),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      await call('stop').catch(() => null);
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}
