// Benchmark webhook receiver, run in its own child process.
//
//   const rx = await startReceiver();
//   ... POST deliveries to rx.url ...
//   const s = await rx.stats();
//   await rx.stop();
//
// The child (receiver-child.ts) is a plain node:http server on 127.0.0.1:0
// answering 200 "ok" (or 500 for a configurable fraction). It counts requests
// and unique/duplicate webhook-ids, and measures latency as its receive time
// minus data.sent_at_ms from the JSON envelope {id, type, timestamp, data}.
// Control goes over the fork IPC channel so it never competes with the
// measured HTTP traffic; the same commands exist as HTTP routes (/__stats,
// /__reset, /__failure-rate) for code that only holds the URL.
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import type { LatencySummary } from './stats.ts';

/** Chaos: fractions (0..1) of requests that are reset, hung past the sender's timeout, or answered slowly. */
export interface FlapConfig {
  /** Socket destroyed without an answer (the sender sees ECONNRESET / socket closed). */
  resetRate?: number;
  /** No answer for hangMs, then the socket is destroyed. */
  hangRate?: number;
  hangMs?: number;
  /** 200 whose body takes slowMs to finish; acknowledged only if it is written out completely. */
  slowRate?: number;
  slowMs?: number;
}

export interface ReceiverOptions {
  /** Fraction (0..1) of deliveries answered with 500. Default 0. */
  failureRate?: number;
  /** Resets, hangs and slow bodies (chaos). Default none. */
  flap?: FlapConfig;
  /** Count requests without reading the body (no latency figures): for ceiling runs. */
  countOnly?: boolean;
  /** Cap on stored latency samples (8 bytes each). Default 10 million. */
  maxLatencySamples?: number;
  /** How long to wait for the child to listen. Default 10 s. */
  startTimeoutMs?: number;
}

export interface ReceiverStats {
  /** Every delivery request, including injected failures. */
  requests: number;
  /** Requests answered 200. */
  acknowledged: number;
  failuresInjected: number;
  /** Distinct (request path, webhook-id) pairs among acknowledged requests. */
  uniqueIds: number;
  /** Acknowledged requests whose (path, webhook-id) had already been acknowledged. */
  duplicates: number;
  /** Acknowledged requests without a webhook-id header. */
  missingId: number;
  parseErrors: number;
  /** receive time − data.sent_at_ms, over acknowledged requests that carry it. */
  latencyMs: LatencySummary;
  latencyDropped: number;
  /** Epoch ms (performance.timeOrigin + performance.now()) of first/last request. */
  firstReceiveMs: number | null;
  lastReceiveMs: number | null;
  failureRate: number;
  countOnly: boolean;
  /** Flapping: requests reset, hung, and answered with a slow body. */
  resets: number;
  hangs: number;
  slowBodies: number;
  /** Acknowledged bodies whose data.seq had already arrived under another webhook-id (a real duplicate event). */
  seqConflicts: number;
}

export interface ReceiverHandle {
  /** Delivery URL, e.g. http://127.0.0.1:40123/webhook */
  url: string;
  pid: number;
  stats(): Promise<ReceiverStats>;
  reset(): Promise<void>;
  setFailureRate(p: number): Promise<void>;
  setFlap(f: FlapConfig): Promise<void>;
  /** Every acknowledged (path, webhook-id) pair, as "path id". */
  ids(): Promise<string[]>;
  /** [data.seq, epoch ms of its first acknowledgement] for every acknowledged body that carried a seq. */
  seqs(): Promise<[number, number][]>;
  stop(): Promise<void>;
}

/** @internal shared with receiver-child.ts */
export type ReceiverChildConfig = Pick<ReceiverOptions, 'failureRate' | 'countOnly' | 'maxLatencySamples' | 'flap'>;
/** @internal */
export type ControlCommand = { cmd: 'stats' | 'reset' | 'stop' | 'ids' | 'seqs' } | { cmd: 'failureRate'; value: number } | { cmd: 'flap'; value: FlapConfig };
/** @internal */
export type ControlRequest = ControlCommand & { seq: number };
/** @internal */
export interface ControlReply {
  seq: number;
  result: ReceiverStats | string[] | [number, number][] | null;
}

const CONTROL_TIMEOUT_MS = 10_000;

/**
 * A Node that strips types (>= 24 here). The parent normally already runs on
 * the provisioned Node 24; fall back to the devDependency's binary otherwise.
 */
export function node24Path(): string {
  const major = Number(process.versions.node.split('.')[0]);
  if (major >= 24) return process.execPath;
  const local = fileURLToPath(new URL('../../node_modules/node/bin/node', import.meta.url));
  if (existsSync(local)) return local;
  throw new Error(`Node >= 24 required to run the receiver (found ${process.version})`);
}

export async function startReceiver(opts: ReceiverOptions = {}): Promise<ReceiverHandle> {
  const config: ReceiverChildConfig = {
    failureRate: opts.failureRate ?? 0,
    countOnly: opts.countOnly ?? false,
    maxLatencySamples: opts.maxLatencySamples ?? 10_000_000,
    ...(opts.flap ? { flap: opts.flap } : {}),
  };
  const child = fork(fileURLToPath(new URL('./receiver-child.ts', import.meta.url)), [JSON.stringify(config)], {
    execPath: node24Path(),
    execArgv: [], // do not inherit e.g. --test or --inspect from the parent
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await waitReady(child, opts.startTimeoutMs ?? 10_000);

  let seq = 0;
  const pending = new Map<number, { resolve: (r: ControlReply['result']) => void; reject: (e: Error) => void }>();
  child.on('message', (m: ControlReply) => {
    const p = pending.get(m.seq);
    if (p) {
      pending.delete(m.seq);
      p.resolve(m.result);
    }
  });
  child.once('exit', (code, signal) => {
    for (const p of pending.values()) p.reject(new Error(`receiver exited (code ${code}, signal ${signal})`));
    pending.clear();
  });

  function call(req: ControlCommand): Promise<ControlReply['result']> {
    if (child.exitCode !== null || !child.connected) return Promise.reject(new Error('receiver is not running'));
    const s = ++seq;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(s);
        reject(new Error(`receiver control '${req.cmd}' timed out`));
      }, CONTROL_TIMEOUT_MS);
      pending.set(s, {
        resolve: (r) => (clearTimeout(timer), resolve(r)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      const msg: ControlRequest = { ...req, seq: s };
      child.send(msg);
    });
  }

  const pid = child.pid;
  if (pid === undefined) throw new Error('receiver has no pid');

  return {
    url: `http://127.0.0.1:${port}/webhook`,
    pid,
    stats: async () => (await call({ cmd: 'stats' })) as ReceiverStats,
    reset: async () => void (await call({ cmd: 'reset' })),
    setFailureRate: async (p: number) => void (await call({ cmd: 'failureRate', value: p })),
    setFlap: async (f: FlapConfig) => void (await call({ cmd: 'flap', value: f })),
    ids: async () => (await call({ cmd: 'ids' })) as string[],
    seqs: async () => (await call({ cmd: 'seqs' })) as [number, number][],
    stop: () => stopChild(child, call),
  };
}

function waitReady(child: ChildProcess, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`receiver did not start within ${timeoutMs} ms`));
    }, timeoutMs);
    const onMessage = (m: { ready?: boolean; port?: number }): void => {
      if (m.ready && m.port) {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        resolve(m.port);
      }
    };
    const onExit = (code: number | null): void => {
      clearTimeout(timer);
      reject(new Error(`receiver exited during startup (code ${code})`));
    };
    child.on('message', onMessage);
    child.once('exit', onExit);
  });
}

/** Ask politely, then SIGKILL this child (by its own handle/pid) if it lingers. */
async function stopChild(child: ChildProcess, call: (r: { cmd: 'stop' }) => Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await call({ cmd: 'stop' }).catch(() => undefined);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

// --- HTTP control, for callers that only have the delivery URL ---------------

function controlUrl(receiverUrl: string, path: string): string {
  return new URL(path, receiverUrl).toString();
}

export async function fetchReceiverStats(receiverUrl: string): Promise<ReceiverStats> {
  const res = await request(controlUrl(receiverUrl, '/__stats'), { headersTimeout: CONTROL_TIMEOUT_MS });
  return (await res.body.json()) as ReceiverStats;
}

export async function resetReceiver(receiverUrl: string): Promise<void> {
  const res = await request(controlUrl(receiverUrl, '/__reset'), { method: 'POST', headersTimeout: CONTROL_TIMEOUT_MS });
  await res.body.dump();
}
