/**
 * POSTs signed webhooks with undici. One Agent keeps a pool of keep-alive connections per origin
 * (measured here: a pooled undici client does 5-7x the requests per CPU second of global fetch).
 * Redirects are never followed: a receiver answering 3xx has not received the webhook.
 */
import { Agent, type Dispatcher } from 'undici';

export type SendResult =
  | { kind: 'response'; statusCode: number; body: string; durationMs: number; retryAfter: string | undefined }
  | { kind: 'network-error'; error: string; durationMs: number };

export type HttpSenderOptions = {
  connectionsPerOrigin: number;
  timeoutMs: number;
  /** Connecting may take this long, within timeoutMs: an unreachable host fails fast. */
  connectTimeoutMs?: number;
  responseBodyLimitBytes: number;
  /** Hook for connect-time checks (the SSRF guard): undici's `connect` options. */
  connect?: Agent.Options['connect'];
};

export type HttpSender = {
  /**
   * `body` as sent: a Buffer is the encoded bytes (the worker signs exactly those). `headers` is the
   * request's own object (content-type and content-length are set on it rather than on a copy), or
   * a function that makes it when the request is handed to a connection: signatures made then carry
   * that moment's timestamp and secrets, however long the request waited behind its origin's others.
   */
  post(url: string, body: string | Buffer, headers: Record<string, string> | (() => Record<string, string>), opts?: PostOptions): Promise<SendResult>;
  /**
   * Cuts every request in flight or queued for a connection, now and from now on: each ends as a
   * network error `reason` (a failed attempt, retried by policy). For shutdown, so that requests to
   * receivers that hang end at a deadline and are recorded before the ledger closes.
   */
  cancelAll(reason: string): void;
  close(): Promise<void>;
};

export type PostOptions = {
  /**
   * Who the request is for (the endpoint): requests waiting for one origin's connections are served
   * round-robin across these, so one endpoint's queue never holds up another's at a shared origin.
   */
  queueKey?: string;
  /**
   * The endpoint's own deadline for the whole exchange (its `timeout_ms`), at most the sender's
   * timeoutMs: undici's per-phase timeouts are set to that, so a shorter deadline is this one alone.
   */
  timeoutMs?: number;
};

/** The abort reason of a cancelled request (told apart from its timeout). */
const CANCELLED = new DOMException('cancelled', 'AbortError');

type Target = { origin: string; path: string } | null;
const TARGET_CACHE_LIMIT = 10_000;

export function createHttpSender(opts: HttpSenderOptions): HttpSender {
  const agent = new Agent({
    connections: opts.connectionsPerOrigin,
    keepAliveTimeout: 30_000,
    headersTimeout: opts.timeoutMs,
    bodyTimeout: opts.timeoutMs,
    // Connecting is part of the attempt, with a deadline of its own: a host that never answers the
    // handshake fails in seconds rather than holding its slot for the whole exchange's timeout.
    connect:
      typeof opts.connect === 'function' ? opts.connect : { timeout: Math.min(opts.connectTimeoutMs ?? opts.timeoutMs, opts.timeoutMs), ...opts.connect },
  });
  const lanes = createOriginLanes(opts.connectionsPerOrigin);
  const inFlight = new Set<AbortController>();
  let cancelled: string | null = null;

  // Every delivery to an endpoint has the same URL: parse it once, not once per request.
  const targets = new Map<string, Target>();
  function target(url: string): Target {
    let t = targets.get(url);
    if (t === undefined) {
      try {
        const parsed = new URL(url);
        t = { origin: parsed.origin, path: parsed.pathname + parsed.search };
      } catch {
        t = null;
      }
      if (targets.size >= TARGET_CACHE_LIMIT) targets.clear();
      targets.set(url, t);
    }
    return t;
  }

  async function post(
    url: string,
    body: string | Buffer,
    makeHeaders: Record<string, string> | (() => Record<string, string>),
    postOpts?: PostOptions,
  ): Promise<SendResult> {
    const t = target(url);
    if (!t) return { kind: 'network-error', error: 'invalid URL', durationMs: 0 };
    // The attempt (its deadline, its duration) starts when a connection is free for it: time spent
    // queued behind the origin's other requests is ours, not the receiver's (measured before: most
    // attempts logged as timeouts at a slow receiver had never been sent).
    if (cancelled) return { kind: 'network-error', error: cancelled, durationMs: 0 };
    const queued = lanes.enter(t.origin, postOpts?.queueKey ?? '');
    if (queued) await queued;
    if (cancelled) {
      lanes.leave(t.origin);
      return { kind: 'network-error', error: cancelled, durationMs: 0 };
    }
    let headers: Record<string, string>;
    try {
      headers = typeof makeHeaders === 'function' ? makeHeaders() : makeHeaders;
    } catch (err) {
      lanes.leave(t.origin);
      throw err;
    }
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.length);
    const started = performance.now();
    const elapsed = () => Math.round(performance.now() - started);
    // One deadline for the whole exchange (a receiver that trickles its body never trips undici's
    // per-chunk timeouts). Not AbortSignal.timeout(): its timer outlives the request by the full
    // timeout, so a worker at thousands of deliveries/s kept ~timeout × rate timers alive (measured:
    // 21k Timeout/WeakRef pairs in a heap snapshot mid-drain, the live set growing with the drain).
    const timeoutMs = postOpts?.timeoutMs !== undefined ? Math.min(postOpts.timeoutMs, opts.timeoutMs) : opts.timeoutMs;
    const deadline = new AbortController();
    const timer = setTimeout(() => deadline.abort(new DOMException(`timeout after ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
    inFlight.add(deadline);
    try {
      const res = await agent.request({
        origin: t.origin,
        path: t.path,
        method: 'POST',
        headers,
        body,
        signal: deadline.signal,
      });
      const text = await readBounded(res.body, opts.responseBodyLimitBytes);
      const retryAfter = res.headers['retry-after'];
      return {
        kind: 'response',
        statusCode: res.statusCode,
        body: text,
        durationMs: elapsed(),
        retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
      };
    } catch (err) {
      if (cancelled && deadline.signal.aborted && deadline.signal.reason === CANCELLED)
        return { kind: 'network-error', error: cancelled, durationMs: elapsed() };
      return { kind: 'network-error', error: describeNetworkError(err, timeoutMs), durationMs: elapsed() };
    } finally {
      inFlight.delete(deadline);
      clearTimeout(timer);
      lanes.leave(t.origin);
    }
  }

  function cancelAll(reason: string): void {
    cancelled = reason;
    for (const c of inFlight) c.abort(CANCELLED);
  }

  return { post, cancelAll, close: () => agent.close() };
}

/**
 * At most `width` requests per origin are handed to undici (one per pooled connection); the rest
 * wait here. Waiting requests are kept per queue key (the endpoint) and a freed place goes to the
 * keys in turn, each key's own requests in arrival order: endpoints of different tenants often share
 * an origin (an n8n or Zapier host, a chat service), and one of them with hundreds of requests queued
 * must not put the others' behind them. `enter` returns null when a place is free at once (no
 * promise, no microtask: the common case), else a promise that resolves when one is handed over by
 * `leave`.
 */
function createOriginLanes(width: number) {
  type Lane = { active: number; waiting: number; queues: Map<string, (() => void)[]> };
  const lanes = new Map<string, Lane>();
  return {
    enter(origin: string, key: string): Promise<void> | null {
      let lane = lanes.get(origin);
      if (!lane) lanes.set(origin, (lane = { active: 0, waiting: 0, queues: new Map() }));
      if (lane.active < width) {
        lane.active++;
        return null;
      }
      let queue = lane.queues.get(key);
      if (!queue) lane.queues.set(key, (queue = []));
      lane.waiting++;
      const q = queue;
      return new Promise<void>((resolve) => q.push(resolve));
    },
    leave(origin: string): void {
      const lane = lanes.get(origin);
      if (!lane) return;
      if (lane.waiting > 0) {
        // The key first in the map is served, then moved to the back: round-robin in O(1).
        const [key, queue] = lane.queues.entries().next().value as [string, (() => void)[]];
        const next = queue.shift() as () => void;
        lane.queues.delete(key);
        if (queue.length) lane.queues.set(key, queue);
        lane.waiting--;
        next(); // the place passes straight to that request
      } else if (--lane.active === 0) lanes.delete(origin);
    },
  };
}

/** Keeps the first `limit` bytes of a response body; stops reading past that. */
async function readBounded(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    const buf = chunk as Buffer;
    if (size < limit) chunks.push(buf.subarray(0, limit - size));
    size += buf.length;
    if (size >= limit) break;
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return size > limit ? `${text}…[truncated ${size - limit}+ bytes]` : text;
}

function describeNetworkError(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; code?: string; message?: string; cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError' || e?.code === 'UND_ERR_HEADERS_TIMEOUT' || e?.code === 'UND_ERR_BODY_TIMEOUT') {
    return `timeout after ${timeoutMs} ms`;
  }
  const code = e?.code ?? e?.cause?.code;
  // undici asserts some protocol invariants (a status of at least 100, an Upgrade header with 101):
  // what the attempt log shows the endpoint's owner is what the receiver did, not the assertion.
  if (code === 'ERR_ASSERTION') return 'invalid HTTP response: the receiver broke the protocol (an impossible status or upgrade)';
  const message = e?.cause?.message ?? e?.message ?? String(err);
  return code ? `${code}: ${message}` : message;
}
