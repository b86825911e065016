// The "raw ceiling": how fast this machine can push signed ~1 KB webhook
// envelopes into the benchmark receiver with nothing in between — no queue,
// no database. Every other figure is reported as a fraction of this one.
//
// A bare undici Pool with keep-alive, one request in flight per connection
// (no pipelining, as a webhook dispatcher would do), and the same per-request
// work a dispatcher does: build the envelope, sign it twice, POST, drain.
import { Pool } from 'undici';
import { envelopeBody } from './envelope.ts';
import { createSigner } from './sign.ts';
import { summarize, type LatencySummary } from './stats.ts';

export interface CeilingOptions {
  /** Receiver delivery URL. */
  url: string;
  /** Measured requests (after warm-up). Default 50,000. */
  count?: number;
  /** Pool connections = requests in flight. Default 64. */
  connections?: number;
  /** Approximate serialized envelope size. Default 1024. */
  payloadBytes?: number;
  /** Hard stop for the measured phase; the result says if it was hit. Default 30 s. */
  durationLimitMs?: number;
  /** Unmeasured requests first, to open sockets and warm the JIT. Default 2,000. */
  warmupRequests?: number;
  secret?: string;
}

export interface CeilingResult {
  requestsPerSecond: number;
  /** Client-side round-trip latency, ms. */
  p50: number;
  p99: number;
  latencyMs: LatencySummary;
  /** Requests completed in the measured phase (any outcome). */
  completed: number;
  ok: number;
  non2xx: number;
  errors: number;
  elapsedMs: number;
  timedOut: boolean;
  connections: number;
  bodyBytes: number;
  /** CPU the client process spent per request in the measured phase (user + system), µs. */
  clientCpuUsPerRequest: number;
}

export async function measureCeiling(opts: CeilingOptions): Promise<CeilingResult> {
  const count = opts.count ?? 50_000;
  const connections = opts.connections ?? 64;
  const payloadBytes = opts.payloadBytes ?? 1024;
  const durationLimitMs = opts.durationLimitMs ?? 30_000;
  const warmup = opts.warmupRequests ?? 2_000;

  const target = new URL(opts.url);
  const path = target.pathname + target.search;
  const signer = createSigner(opts.secret);
  const pool = new Pool(target.origin, {
    connections,
    pipelining: 1,
    keepAliveTimeout: 60_000,
    keepAliveMaxTimeout: 600_000,
  });
  const runId = `${process.pid.toString(36)}${Date.now().toString(36)}`;
  let seq = 0;

  async function send(): Promise<number> {
    const id = `msg_ceil_${runId}_${seq++}`;
    const body = envelopeBody(id, payloadBytes);
    const res = await pool.request({ method: 'POST', path, headers: signer.headers(id, body), body });
    await res.body.dump();
    return res.statusCode;
  }

  /** Run `n` requests across `connections` loops, stopping at the deadline. */
  async function phase(n: number, deadline: number, record: Float64Array | null) {
    let issued = 0;
    let done = 0;
    let ok = 0;
    let non2xx = 0;
    let errors = 0;
    const loop = async (): Promise<void> => {
      while (issued < n && performance.now() < deadline) {
        issued++;
        const t0 = performance.now();
        try {
          const status = await send();
          if (status >= 200 && status < 300) ok++;
          else non2xx++;
        } catch {
          errors++;
        }
        if (record) record[done] = performance.now() - t0;
        done++;
      }
    };
    await Promise.all(Array.from({ length: connections }, loop));
    return { done, ok, non2xx, errors };
  }

  try {
    if (warmup > 0) await phase(warmup, performance.now() + Math.min(10_000, durationLimitMs), null);
    const latencies = new Float64Array(count);
    const start = performance.now();
    const cpuBefore = process.cpuUsage();
    const deadline = start + durationLimitMs;
    const r = await phase(count, deadline, latencies);
    const elapsedMs = performance.now() - start;
    const cpu = process.cpuUsage(cpuBefore);
    const latencyMs = summarize(latencies.subarray(0, r.done));
    return {
      requestsPerSecond: (r.done / elapsedMs) * 1000,
      p50: latencyMs.p50,
      p99: latencyMs.p99,
      latencyMs,
      completed: r.done,
      ok: r.ok,
      non2xx: r.non2xx,
      errors: r.errors,
      elapsedMs,
      timedOut: r.done < count,
      connections,
      bodyBytes: Buffer.byteLength(envelopeBody('msg_ceil_size_probe', payloadBytes)),
      clientCpuUsPerRequest: r.done ? (cpu.user + cpu.system) / r.done : 0,
    };
  } finally {
    await pool.close();
  }
}
