/**
 * The one place that reads the environment. Everything else receives a `Config`.
 * Numbers carry their unit in the name; defaults are the seed's values.
 */
import { isIP } from 'node:net';
import { z } from 'zod';

const bool = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => v === 'true' || v === '1' || v === 'yes');
const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

/** What Fastify's `trustProxy` takes: trust no proxy, every proxy, or these addresses. */
export type TrustProxy = boolean | string[];
const PROXY_NAMES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function isAddressOrCidr(entry: string): boolean {
  if (PROXY_NAMES.has(entry) || isIP(entry) !== 0) return true;
  const [address, bits, extra] = entry.split('/');
  const family = isIP(address ?? '');
  if (family === 0 || extra !== undefined || !/^\d{1,3}$/.test(bits ?? '')) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * Whose X-Forwarded-For to believe for the client's address (rate limits and the audit log's "from
 * where"): `false`, `true` (any peer: only behind a proxy that overwrites the header), or addresses,
 * CIDRs and the names loopback, linklocal, uniquelocal, comma-separated.
 */
const trustProxy = z.string().transform((text, ctx): TrustProxy => {
  const v = text.trim().toLowerCase();
  if (v === 'false' || v === '0' || v === '') return false;
  if (v === 'true') return true;
  const entries = v
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean);
  const bad = entries.find((e) => !isAddressOrCidr(e));
  if (bad !== undefined) {
    ctx.addIssue({ code: 'custom', message: `"${bad}" is not an address, a CIDR or one of loopback, linklocal, uniquelocal` });
    return z.NEVER;
  }
  return entries;
});

/** Table → operation → event type, as JSON text: `{"orders": {"INSERT": "order.created"}}`. */
const supabaseEventMap = z
  .string()
  .transform((text, ctx) => {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
      return z.NEVER;
    }
  })
  .pipe(
    z.record(
      z.string().regex(/^([a-z_][a-z0-9_$]*\.)?[a-z_][a-z0-9_$]*$/i, 'keys are table or schema.table names'),
      z
        .object(
          Object.fromEntries(
            ['INSERT', 'UPDATE', 'DELETE'].map((op) => [
              op,
              z
                .string()
                .regex(/^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*){1,5}$/, 'an event type name')
                .optional(),
            ]),
          ),
        )
        .strict(),
    ),
  );
export type SupabaseEventMap = Record<string, Partial<Record<'INSERT' | 'UPDATE' | 'DELETE', string>>>;

/**
 * CARTEIRO_PORTAL_FRAME_ANCESTORS: who may embed the portal page in a frame, as the sources of CSP's
 * `frame-ancestors` (space- or comma-separated): 'self', 'none', *, a scheme (https:), or an origin
 * (https://app.example.com, https://*.example.com:8443). Each is checked, so nothing else can be
 * written into the page's Content-Security-Policy header.
 */
const FRAME_SOURCE =
  /^(?:'self'|'none'|\*|https?:|https?:\/\/(?:\*\.)?[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::(?:\d{1,5}|\*))?)$/i;
const frameAncestors = z.string().transform((text, ctx): string[] => {
  const sources = text
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((s) => (/^(self|none)$/i.test(s) ? `'${s.toLowerCase()}'` : s));
  const bad = sources.find((s) => !FRAME_SOURCE.test(s));
  if (bad !== undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `"${bad.slice(0, 80)}" is not a frame-ancestors source ('self', 'none', *, https:, or an origin such as https://app.example.com)`,
    });
    return z.NEVER;
  }
  if (sources.length === 0) {
    ctx.addIssue({ code: 'custom', message: "name at least one source ('none' to forbid framing)" });
    return z.NEVER;
  }
  if (sources.includes("'none'") && sources.length > 1) {
    ctx.addIssue({ code: 'custom', message: "'none' cannot be combined with other sources" });
    return z.NEVER;
  }
  return sources;
});

const httpUrl = z
  .string()
  .url()
  .refine((u) => /^https?:\/\//i.test(u), 'an http:// or https:// URL');

/**
 * OTEL_EXPORTER_OTLP_HEADERS as the specification writes it: `key=value` pairs, comma-separated, values
 * URL-encoded. The values are often credentials: an error names the key, never the value.
 */
const otlpHeaders = z.string().transform((text, ctx): Record<string, string> => {
  const headers: Record<string, string> = {};
  for (const pair of text.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    const key = (eq < 0 ? pair : pair.slice(0, eq)).trim();
    if (eq < 0 || !/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(key)) {
      ctx.addIssue({ code: 'custom', message: `"${key.slice(0, 40)}" is not a key=value pair with a header name as its key` });
      return z.NEVER;
    }
    try {
      headers[key.toLowerCase()] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      ctx.addIssue({ code: 'custom', message: `the value of "${key}" is not URL-encoded text` });
      return z.NEVER;
    }
  }
  return headers;
});

const EnvSchema = z.object({
  // --- HTTP API
  HOST: z.string().default('127.0.0.1'),
  PORT: int(0, 65535).default(3000),
  API_BASE_URL: z.string().url().optional(),
  CARTEIRO_BODY_LIMIT_BYTES: int(1024).default(1024 * 1024),
  /** A client must have sent its whole request (headers and body) within this time, or is cut off. */
  CARTEIRO_REQUEST_TIMEOUT_MS: int(500, 600_000).default(30_000),
  /** Every route answers within this (503 with Retry-After past it); the ingest commit has the same deadline. */
  CARTEIRO_ANSWER_DEADLINE_MS: int(1000, 600_000).default(5000),
  CARTEIRO_TRUST_PROXY: trustProxy.default(false),
  /** Requests per second each organization API key may make (0 = no limit); Redis-backed across processes. */
  CARTEIRO_INGRESS_RATE_PER_SECOND: int(0).default(100),
  /** Extra requests a key may make above that rate, per 10 s, to absorb spikes. */
  CARTEIRO_INGRESS_BURST: int(0).default(200),
  /** Whether the admin key is rate-limited too (with the same numbers). */
  CARTEIRO_INGRESS_LIMIT_ADMIN: bool.default(false),
  /** Requests without a valid key an address may make per minute before it gets 429s (0 = no limit). */
  CARTEIRO_AUTH_FAILURES_PER_MINUTE: int(0).default(100),
  /**
   * Events per second ingested for one user id (the event's user_id or data.user_id) in one
   * organization (0 = no limit); an organization sets its own default and overrides per user (docs/portal.md).
   */
  CARTEIRO_USER_EVENTS_PER_SECOND: int(0).default(0),
  /** Extra events one user may send above that rate, per 10 s. */
  CARTEIRO_USER_EVENTS_BURST: int(0).default(0),
  /** Endpoints one user may own (created through the portal, or with its user_id); organizations may set their own. */
  CARTEIRO_MAX_ENDPOINTS_PER_USER: int(0).default(20),
  /** A portal session's lifetime when its issuer names none. */
  CARTEIRO_PORTAL_SESSION_TTL_SECONDS: int(60, 86_400).default(3600),
  /** Where the portal page is served, for the `url` of a new portal session (default: API_BASE_URL, else this request's host). */
  CARTEIRO_PUBLIC_URL: z.string().url().optional(),
  /**
   * Who may show the portal page (/portal) in a frame: CSP frame-ancestors sources. Default 'self':
   * a SaaS embedding it from its own app names that app's origin (docs/portal.md).
   */
  CARTEIRO_PORTAL_FRAME_ANCESTORS: frameAncestors.default(["'self'"]),
  /**
   * Group commits an API process runs at once. Requests that arrive meanwhile share the next one, so
   * fewer concurrent commits mean bigger groups and less Postgres work per event (docs/performance.md).
   */
  CARTEIRO_INGEST_CONCURRENT_COMMITS: int(1, 64).default(2),
  /**
   * How long one event may take to validate against an organization's schema, where that schema is
   * not plain enough to run inline (src/catalog/custom-schema.ts); past it the event is refused.
   */
  CARTEIRO_SCHEMA_VALIDATION_TIMEOUT_MS: int(10, 60_000).default(250),
  /** How long compiling an organization's schema may take (at registration, and before its first event). */
  CARTEIRO_SCHEMA_COMPILE_TIMEOUT_MS: int(100, 600_000).default(3000),

  // --- The operator CLI (carteiro send, events, endpoints, tail, …): which Carteiro it talks to, with what key
  /** The API's base URL, e.g. https://hooks.example.com/api/webhooks (default: http://127.0.0.1:$PORT/api/webhooks). */
  CARTEIRO_URL: z.string().url().optional(),
  /** The key the CLI sends (default: CARTEIRO_ADMIN_KEY, then the embedded default's generated admin key). */
  CARTEIRO_API_KEY: z.string().optional(),

  // --- Ledger (Postgres). No DATABASE_URL: embedded PGlite in CARTEIRO_DATA_DIR.
  DATABASE_URL: z.string().optional(),
  CARTEIRO_DATA_DIR: z.string().default('.carteiro-data'),
  CARTEIRO_SCHEMA: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lower-case SQL identifier')
    .default('webhooks'),
  CARTEIRO_DB_POOL_SIZE: int(1, 200).default(16),

  // --- Redis (optional): cross-process rate limits, live updates, background jobs
  REDIS_URL: z.string().optional(),
  CARTEIRO_REDIS_PREFIX: z.string().default('carteiro'),

  // --- Keys and secrets
  CARTEIRO_ADMIN_KEY: z.string().min(16).optional(),
  /** Comma-separated `keyId:base64(32 bytes)`; the first encrypts, all decrypt. */
  CARTEIRO_ENCRYPTION_KEYS: z.string().optional(),
  WEBHOOK_SECRET: z.string().min(8).optional(),
  WEBHOOK_USER_AGENT: z.string().default('AgentesDeConversao-Webhook/1.0'),
  CARTEIRO_SECRET_ROTATION_OVERLAP_MS: int(0).default(24 * 3600 * 1000),

  // --- n8n
  N8N_WEBHOOK_URL: z.string().url().optional(),
  N8N_API_URL: z.string().url().optional(),
  N8N_API_KEY: z.string().optional(),
  /** Timeout of each call to n8n's API (discovery, health). */
  N8N_API_TIMEOUT_MS: int(100, 120_000).default(10_000),
  /** Discovery from n8n's API every this many ms in the processes that run jobs (0 = only on demand). */
  N8N_DISCOVERY_INTERVAL_MS: int(0).default(0),
  /** Workflows per page of GET /api/v1/workflows during discovery (n8n allows up to 250). */
  N8N_DISCOVERY_PAGE_SIZE: int(1, 250).default(100),
  /** The organization periodic discovery writes to (default: the default organization). */
  N8N_DISCOVERY_ORGANIZATION_ID: z.string().uuid().optional(),
  /** How long POST /n8n/sync waits for the delivery's result before answering 202 (0 = do not wait). */
  N8N_SYNC_WAIT_MS: int(0, 60_000).default(5_000),

  // --- Supabase Database Webhooks ingress: POST /api/webhooks/supabase (docs/triggers.md)
  /** Shared secret Supabase must send in X-Supabase-Webhook-Secret; unset = the ingress answers 404. */
  SUPABASE_WEBHOOK_SECRET: z.string().min(16).optional(),
  /** Extra or replacing table mappings over the seed's five tables (see supabaseEventMap). */
  SUPABASE_WEBHOOK_EVENT_MAP: supabaseEventMap.optional(),

  // --- Retry policy (seed: 5 retries, 30 s base, factor 2, 1 h cap, 30 s timeout)
  WEBHOOK_MAX_RETRIES: int(0, 100).default(5),
  WEBHOOK_RETRY_BASE_DELAY_MS: int(0).default(30_000),
  WEBHOOK_RETRY_BACKOFF_FACTOR: z.coerce.number().min(1).max(10).default(2),
  WEBHOOK_RETRY_MAX_DELAY_MS: int(0).default(3_600_000),
  WEBHOOK_RETRY_JITTER: z.coerce.number().min(0).max(1).default(0.1),
  WEBHOOK_TIMEOUT_MS: int(1).default(30_000),
  WEBHOOK_RESPONSE_BODY_LIMIT_BYTES: int(0).default(4096),

  // --- Worker
  CARTEIRO_WORKER_BATCH_SIZE: int(1, 5000).default(500),
  CARTEIRO_WORKER_CONCURRENCY: int(1, 10_000).default(512),
  CARTEIRO_WORKER_CONNECTIONS_PER_ORIGIN: int(1, 1024).default(64),
  CARTEIRO_POLL_INTERVAL_MS: int(5).default(250),
  CARTEIRO_LEASE_MS: int(1000).optional(),
  CARTEIRO_FLUSH_INTERVAL_MS: int(0, 1000).default(10),
  // A worker with due work that has neither claimed nor recorded for this long is stalled (default: the larger of 60 s and twice WEBHOOK_TIMEOUT_MS).
  CARTEIRO_WORKER_STALL_MS: int(1000).optional(),
  // SIGTERM: how long in-flight deliveries may run on before they are cut and recorded as failed attempts (retried).
  CARTEIRO_SHUTDOWN_GRACE_MS: int(0, 600_000).default(10_000),
  CARTEIRO_WORKER_MAX_UNRECORDED: int(1, 1_000_000).default(4000),
  /** A request unanswered this long stops counting against the worker's concurrency (it is parked). */
  CARTEIRO_WORKER_PARK_AFTER_MS: int(50, 600_000).default(250),
  /** Parked requests a worker may hold (waiting on slow or silent receivers) before their endpoints get no more work. */
  CARTEIRO_WORKER_MAX_PARKED: int(1, 1_000_000).default(10_000),
  /** Requests in flight to one endpoint, per worker, at most (each endpoint may set its own). */
  CARTEIRO_ENDPOINT_MAX_IN_FLIGHT: int(1, 1000).default(256),
  /** Where adaptive concurrency starts for an endpoint a worker has not sent to yet. */
  CARTEIRO_ENDPOINT_START_IN_FLIGHT: int(1, 1000).default(8),
  /** Failed attempts in a row that put an endpoint in the slow lane (one request in flight; 0 = never). */
  CARTEIRO_SLOW_LANE_AFTER_FAILURES: int(0).default(3),
  /** In the slow lane, at most one attempt per endpoint and worker this often, at first... */
  CARTEIRO_SLOW_LANE_INTERVAL_MS: int(0, 3_600_000).default(1000),
  /** ...the wait doubling with each further failure, up to this. */
  CARTEIRO_SLOW_LANE_MAX_INTERVAL_MS: int(0, 86_400_000).default(10_000),
  /**
   * Contention control (docs/architecture.md, "the quiet lane"): a quiet endpoint's work that waits
   * longer than this from its announcement to its claim says the ledger or the CPU is saturated, and
   * the busy endpoints' limits are halved (down to CARTEIRO_ENDPOINT_CONTENDED_FLOOR) until such waits
   * are short again. 0 = off.
   */
  CARTEIRO_QUIET_CLAIM_TARGET_MS: int(0, 60_000).default(10),
  /** The lowest limit contention control takes an endpoint to. */
  CARTEIRO_ENDPOINT_CONTENDED_FLOOR: int(1, 1000).default(32),
  /** Failed attempts in a row after which `endpoint.failing` is emitted (0 = never). */
  CARTEIRO_ENDPOINT_FAILING_AFTER_FAILURES: int(0).default(10),
  /** Connecting to a receiver may take this long (the whole exchange: WEBHOOK_TIMEOUT_MS). */
  WEBHOOK_CONNECT_TIMEOUT_MS: int(1).default(5000),
  /** Hosts the delivery client may reach even though they are private/loopback (comma-separated CIDRs). */
  CARTEIRO_ALLOW_PRIVATE_NETWORKS: z.string().default(''),

  // --- Transformations (docs/transformations.md): each run of an endpoint's code in the QuickJS sandbox
  /** How long one run may take; past it the run fails (a failed attempt, retried). */
  CARTEIRO_TRANSFORMATION_TIMEOUT_MS: int(1, 10_000).default(50),
  /** The memory one run may use, in MiB (QuickJS's own ceiling). */
  CARTEIRO_TRANSFORMATION_MEMORY_MB: int(1, 1024).default(16),
  /** The largest body a transformation may produce. */
  CARTEIRO_TRANSFORMATION_MAX_BODY_BYTES: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  /** Threads that run transformations, per process (started on first use). */
  CARTEIRO_TRANSFORMATION_THREADS: int(1, 64).default(1),

  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  CARTEIRO_LOG_FORMAT: z.enum(['auto', 'pretty', 'json']).default('auto'),
  CARTEIRO_RETENTION_DAYS: int(1).default(30),
  CARTEIRO_QUIET: bool.default(false),

  // --- Data protection (docs/security.md)
  /** How often the retention purge runs, in minutes (0 = never scheduled). */
  CARTEIRO_RETENTION_INTERVAL_MINUTES: int(0).default(60),
  /** Event-data keys sealed at rest (AES-256-GCM) wherever they appear; "none" seals nothing. */
  CARTEIRO_PII_FIELDS: z.string().default('email,phone,phone_number,name,cpf,document'),
  /** Circuit breaker: disable an endpoint after this many deliveries in a row failed all retries (0 = off). */
  CARTEIRO_CIRCUIT_BREAKER_FAILURES: int(0).default(5),
  /** Circuit breaker: disable an endpoint whose every attempt failed for this many hours (0 = off). */
  CARTEIRO_CIRCUIT_BREAKER_HOURS: z.coerce.number().min(0).default(24),
  /** An endpoint the circuit breaker disabled gets one trial delivery after this cool-off (doubling, up to 24 h; 0 = never). */
  CARTEIRO_PROBE_COOLOFF_MS: int(0).default(300_000),
  /** Where operational events (endpoint.disabled) are delivered, as a webhook from the default organization. */
  CARTEIRO_OPERATIONS_WEBHOOK_URL: z.string().url().optional(),
  /** Signing secret for the operations webhook (default: WEBHOOK_SECRET). */
  CARTEIRO_OPERATIONS_WEBHOOK_SECRET: z.string().min(8).optional(),

  // --- Metrics (docs/observability.md)
  /** A key that may read /metrics (besides the admin key); also required on the metrics listener when set. */
  CARTEIRO_METRICS_KEY: z.string().min(16).optional(),
  /** A separate listener for /metrics only (worker processes serve no API); unset = none. */
  CARTEIRO_METRICS_PORT: int(0, 65535).optional(),
  CARTEIRO_METRICS_HOST: z.string().default('127.0.0.1'),
  /** Endpoints shown by id in carteiro_endpoint_failed_attempts_in_row: the N failing most (0 = none). */
  CARTEIRO_METRICS_FAILING_ENDPOINTS: int(0, 1000).default(10),
  /** Queue and endpoint gauges are read from the ledger at most this often, however often scrapes come. */
  CARTEIRO_METRICS_LEDGER_CACHE_MS: int(0, 600_000).default(5_000),

  // --- Traces (docs/observability.md): OpenTelemetry's standard variables, off unless an endpoint is set
  /** Where OTLP/HTTP goes; traces are sent to <this>/v1/traces. */
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl.optional(),
  /** The traces URL itself, as is (wins over OTEL_EXPORTER_OTLP_ENDPOINT). */
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: httpUrl.optional(),
  /** Headers sent with every export (`key=value,…`, values URL-encoded), e.g. a vendor's API key. */
  OTEL_EXPORTER_OTLP_HEADERS: otlpHeaders.optional(),
  /** The same for traces only; on the same key these win. */
  OTEL_EXPORTER_OTLP_TRACES_HEADERS: otlpHeaders.optional(),
  /** Carteiro sends OTLP/HTTP with JSON bodies, which every OTLP/HTTP receiver takes; gRPC is refused (see tracingConfig). */
  OTEL_EXPORTER_OTLP_PROTOCOL: z.enum(['http/json', 'http/protobuf', 'grpc']).optional(),
  OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: z.enum(['http/json', 'http/protobuf', 'grpc']).optional(),
  OTEL_SERVICE_NAME: z.string().min(1).default('carteiro'),
  /** The delay between two exports of finished spans, in ms. */
  OTEL_BSP_SCHEDULE_DELAY: int(0, 600_000).default(5000),
  /** true: no traces whatever else is set. */
  OTEL_SDK_DISABLED: bool.default(false),
});

export type Env = z.infer<typeof EnvSchema>;

/** Every variable Carteiro reads (a test holds .env.example to these names). */
export const CONFIG_VARIABLES: readonly string[] = Object.keys(EnvSchema.shape);

export type RetryPolicy = {
  maxRetries: number;
  baseDelayMs: number;
  backoffFactor: number;
  maxDelayMs: number;
  jitter: number;
  timeoutMs: number;
};

export type Config = {
  http: {
    host: string;
    port: number;
    publicBaseUrl: string | undefined;
    bodyLimitBytes: number;
    requestTimeoutMs: number;
    answerDeadlineMs: number;
    trustProxy: TrustProxy;
  };
  ingress: {
    ratePerSecond: number;
    burst: number;
    limitAdmin: boolean;
    concurrentCommits: number;
    authFailuresPerMinute: number;
    schemaValidationTimeoutMs: number;
    schemaCompileTimeoutMs: number;
  };
  /** Limits per user id: the server's defaults, below an organization's own (docs/portal.md). */
  users: { eventsPerSecond: number; eventsBurst: number; maxEndpoints: number };
  portal: { sessionTtlSeconds: number; publicUrl: string | undefined; frameAncestors: string[] };
  database: { url: string | undefined; dataDir: string; schema: string; poolSize: number };
  redis: { url: string | undefined; prefix: string };
  keys: {
    adminKey: string | undefined;
    encryptionKeys: string | undefined;
    webhookSecret: string | undefined;
    rotationOverlapMs: number;
  };
  delivery: {
    userAgent: string;
    retry: RetryPolicy;
    responseBodyLimitBytes: number;
    connectionsPerOrigin: number;
    connectTimeoutMs: number;
    allowPrivateNetworks: string[];
  };
  worker: {
    batchSize: number;
    concurrency: number;
    pollIntervalMs: number;
    leaseMs: number;
    flushIntervalMs: number;
    /** Outcomes a worker may hold unrecorded (delivered, not yet written) before it stops claiming. */
    maxUnrecorded: number;
    parkAfterMs: number;
    maxParked: number;
    /** No claim and no record for this long while work is due: the worker is stalled (health, self-recovery). */
    stallMs: number;
    /** How long a claim or a record may take before it is given up and the ledger pool replaced. */
    ledgerDeadlineMs: number;
    /** On shutdown, in-flight deliveries are cut after this long and recorded as failed attempts. */
    shutdownGraceMs: number;
  };
  /** The sandbox that runs endpoints' transformations (docs/transformations.md). */
  transformations: {
    timeoutMs: number;
    memoryBytes: number;
    maxBodyBytes: number;
    threads: number;
    /** A run that waited this long for a free thread is handed back (a fraction of the lease, which it must not outlive). */
    maxWaitMs: number;
    /** A check of code given to the API (compile, `handler` defined) waits this long for a thread (within the answer deadline). */
    checkMaxWaitMs: number;
  };
  /** Per-endpoint bounds (docs/architecture.md, "Isolation"). */
  isolation: {
    maxInFlight: number;
    startInFlight: number;
    slowLaneAfterFailures: number;
    slowLaneIntervalMs: number;
    slowLaneMaxIntervalMs: number;
    failingAfterFailures: number;
    probeCooloffMs: number;
    /** Contention control: the quiet claim's latency target (0 = off) and the floor of the busiest endpoints' limits. */
    quietClaimTargetMs: number;
    contendedFloor: number;
  };
  n8n: {
    webhookUrl: string | undefined;
    apiUrl: string | undefined;
    apiKey: string | undefined;
    apiTimeoutMs: number;
    discoveryIntervalMs: number;
    discoveryPageSize: number;
    discoveryOrganizationId: string | undefined;
    syncWaitMs: number;
  };
  supabase: { webhookSecret: string | undefined; eventMap: SupabaseEventMap };
  /** LOG_LEVEL; unset: info for JSON logs, warn on a terminal (the banner says the rest). */
  logLevel: NonNullable<Env['LOG_LEVEL']>;
  /** CARTEIRO_LOG_FORMAT; auto: JSON when stdout is not a terminal, short lines for a person when it is. */
  logFormat: 'pretty' | 'json';
  retentionDays: number;
  dataProtection: { piiFields: string[]; retentionIntervalMs: number };
  circuitBreaker: { consecutiveFailures: number; failingHours: number };
  operations: { webhookUrl: string | undefined; webhookSecret: string | undefined };
  metrics: { key: string | undefined; host: string; port: number | undefined; failingEndpoints: number; ledgerCacheMs: number };
  /** OpenTelemetry traces (observability/tracing.ts); null when off (no OTLP endpoint set, or OTEL_SDK_DISABLED). */
  tracing: TracingConfig | null;
  quiet: boolean;
  /** Where the operator CLI's API commands go (CARTEIRO_URL, CARTEIRO_API_KEY). */
  client: { url: string | undefined; apiKey: string | undefined };
};

export type TracingConfig = {
  /** The full URL spans are POSTed to (OTLP/HTTP, JSON). */
  tracesUrl: string;
  /** Sent with every export; may hold credentials, so never logged. */
  headers: Record<string, string>;
  serviceName: string;
  /** How long finished spans wait to be sent together. */
  exportDelayMs: number;
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses and validates the environment once; throws ConfigError naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = EnvSchema.safeParse(cleaned);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${problems}`);
  }
  const e = parsed.data;
  // Every destination is signed; the operations endpoint has no secret to generate and show once.
  if (e.CARTEIRO_OPERATIONS_WEBHOOK_URL && !e.CARTEIRO_OPERATIONS_WEBHOOK_SECRET && !e.WEBHOOK_SECRET) {
    throw new ConfigError(
      'invalid configuration: CARTEIRO_OPERATIONS_WEBHOOK_URL needs CARTEIRO_OPERATIONS_WEBHOOK_SECRET (or WEBHOOK_SECRET) to sign its webhooks with',
    );
  }
  const logFormat = e.CARTEIRO_LOG_FORMAT === 'auto' ? (process.stdout.isTTY ? 'pretty' : 'json') : e.CARTEIRO_LOG_FORMAT;
  return {
    http: {
      host: e.HOST,
      port: e.PORT,
      publicBaseUrl: e.API_BASE_URL,
      bodyLimitBytes: e.CARTEIRO_BODY_LIMIT_BYTES,
      requestTimeoutMs: e.CARTEIRO_REQUEST_TIMEOUT_MS,
      answerDeadlineMs: e.CARTEIRO_ANSWER_DEADLINE_MS,
      trustProxy: e.CARTEIRO_TRUST_PROXY,
    },
    ingress: {
      ratePerSecond: e.CARTEIRO_INGRESS_RATE_PER_SECOND,
      burst: e.CARTEIRO_INGRESS_BURST,
      limitAdmin: e.CARTEIRO_INGRESS_LIMIT_ADMIN,
      concurrentCommits: e.CARTEIRO_INGEST_CONCURRENT_COMMITS,
      authFailuresPerMinute: e.CARTEIRO_AUTH_FAILURES_PER_MINUTE,
      schemaValidationTimeoutMs: e.CARTEIRO_SCHEMA_VALIDATION_TIMEOUT_MS,
      schemaCompileTimeoutMs: e.CARTEIRO_SCHEMA_COMPILE_TIMEOUT_MS,
    },
    users: { eventsPerSecond: e.CARTEIRO_USER_EVENTS_PER_SECOND, eventsBurst: e.CARTEIRO_USER_EVENTS_BURST, maxEndpoints: e.CARTEIRO_MAX_ENDPOINTS_PER_USER },
    portal: {
      sessionTtlSeconds: e.CARTEIRO_PORTAL_SESSION_TTL_SECONDS,
      publicUrl: e.CARTEIRO_PUBLIC_URL ?? e.API_BASE_URL,
      frameAncestors: e.CARTEIRO_PORTAL_FRAME_ANCESTORS,
    },
    database: { url: e.DATABASE_URL, dataDir: e.CARTEIRO_DATA_DIR, schema: e.CARTEIRO_SCHEMA, poolSize: e.CARTEIRO_DB_POOL_SIZE },
    redis: { url: e.REDIS_URL, prefix: e.CARTEIRO_REDIS_PREFIX },
    keys: {
      adminKey: e.CARTEIRO_ADMIN_KEY,
      encryptionKeys: e.CARTEIRO_ENCRYPTION_KEYS,
      webhookSecret: e.WEBHOOK_SECRET,
      rotationOverlapMs: e.CARTEIRO_SECRET_ROTATION_OVERLAP_MS,
    },
    delivery: {
      userAgent: e.WEBHOOK_USER_AGENT,
      retry: {
        maxRetries: e.WEBHOOK_MAX_RETRIES,
        baseDelayMs: e.WEBHOOK_RETRY_BASE_DELAY_MS,
        backoffFactor: e.WEBHOOK_RETRY_BACKOFF_FACTOR,
        maxDelayMs: e.WEBHOOK_RETRY_MAX_DELAY_MS,
        jitter: e.WEBHOOK_RETRY_JITTER,
        timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      },
      responseBodyLimitBytes: e.WEBHOOK_RESPONSE_BODY_LIMIT_BYTES,
      connectionsPerOrigin: e.CARTEIRO_WORKER_CONNECTIONS_PER_ORIGIN,
      connectTimeoutMs: Math.min(e.WEBHOOK_CONNECT_TIMEOUT_MS, e.WEBHOOK_TIMEOUT_MS),
      allowPrivateNetworks: e.CARTEIRO_ALLOW_PRIVATE_NETWORKS.split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    },
    worker: {
      batchSize: e.CARTEIRO_WORKER_BATCH_SIZE,
      concurrency: e.CARTEIRO_WORKER_CONCURRENCY,
      pollIntervalMs: e.CARTEIRO_POLL_INTERVAL_MS,
      // A lease must outlive the slowest attempt, or a healthy worker's work would be claimed twice.
      leaseMs: e.CARTEIRO_LEASE_MS ?? e.WEBHOOK_TIMEOUT_MS + 30_000,
      flushIntervalMs: e.CARTEIRO_FLUSH_INTERVAL_MS,
      maxUnrecorded: e.CARTEIRO_WORKER_MAX_UNRECORDED,
      parkAfterMs: e.CARTEIRO_WORKER_PARK_AFTER_MS,
      maxParked: e.CARTEIRO_WORKER_MAX_PARKED,
      // Longer than any attempt (a worker whose every slot waits on a slow receiver neither claims nor records).
      stallMs: workerStallMs(e.CARTEIRO_WORKER_STALL_MS, e.WEBHOOK_TIMEOUT_MS),
      // A claim or a record batch takes milliseconds to seconds; a third of the stall window is a hang, not load.
      ledgerDeadlineMs: Math.max(500, Math.floor(workerStallMs(e.CARTEIRO_WORKER_STALL_MS, e.WEBHOOK_TIMEOUT_MS) / 3)),
      shutdownGraceMs: e.CARTEIRO_SHUTDOWN_GRACE_MS,
    },
    transformations: {
      timeoutMs: e.CARTEIRO_TRANSFORMATION_TIMEOUT_MS,
      memoryBytes: e.CARTEIRO_TRANSFORMATION_MEMORY_MB * 1024 * 1024,
      maxBodyBytes: e.CARTEIRO_TRANSFORMATION_MAX_BODY_BYTES,
      threads: e.CARTEIRO_TRANSFORMATION_THREADS,
      maxWaitMs: Math.min(5_000, Math.floor((e.CARTEIRO_LEASE_MS ?? e.WEBHOOK_TIMEOUT_MS + 30_000) / 4)),
      // Checking code an API request brings waits for a thread as long as the request may take:
      // a busy sandbox (another tenant's looping code being stopped) must not refuse a valid write.
      checkMaxWaitMs: Math.max(1_000, e.CARTEIRO_ANSWER_DEADLINE_MS - 1_000),
    },
    isolation: {
      maxInFlight: e.CARTEIRO_ENDPOINT_MAX_IN_FLIGHT,
      startInFlight: Math.min(e.CARTEIRO_ENDPOINT_START_IN_FLIGHT, e.CARTEIRO_ENDPOINT_MAX_IN_FLIGHT),
      slowLaneAfterFailures: e.CARTEIRO_SLOW_LANE_AFTER_FAILURES,
      slowLaneIntervalMs: e.CARTEIRO_SLOW_LANE_INTERVAL_MS,
      // A maximum below the interval leaves the interval fixed (slowLaneHoldMs).
      slowLaneMaxIntervalMs: e.CARTEIRO_SLOW_LANE_MAX_INTERVAL_MS,
      failingAfterFailures: e.CARTEIRO_ENDPOINT_FAILING_AFTER_FAILURES,
      probeCooloffMs: e.CARTEIRO_PROBE_COOLOFF_MS,
      quietClaimTargetMs: e.CARTEIRO_QUIET_CLAIM_TARGET_MS,
      contendedFloor: e.CARTEIRO_ENDPOINT_CONTENDED_FLOOR,
    },
    n8n: {
      webhookUrl: e.N8N_WEBHOOK_URL,
      apiUrl: e.N8N_API_URL,
      apiKey: e.N8N_API_KEY,
      apiTimeoutMs: e.N8N_API_TIMEOUT_MS,
      discoveryIntervalMs: e.N8N_DISCOVERY_INTERVAL_MS,
      discoveryPageSize: e.N8N_DISCOVERY_PAGE_SIZE,
      discoveryOrganizationId: e.N8N_DISCOVERY_ORGANIZATION_ID,
      syncWaitMs: e.N8N_SYNC_WAIT_MS,
    },
    supabase: { webhookSecret: e.SUPABASE_WEBHOOK_SECRET, eventMap: (e.SUPABASE_WEBHOOK_EVENT_MAP ?? {}) as SupabaseEventMap },
    logLevel: e.LOG_LEVEL ?? (logFormat === 'json' ? 'info' : 'warn'),
    logFormat,
    retentionDays: e.CARTEIRO_RETENTION_DAYS,
    dataProtection: {
      piiFields:
        e.CARTEIRO_PII_FIELDS.trim().toLowerCase() === 'none'
          ? []
          : e.CARTEIRO_PII_FIELDS.split(',')
              .map((s) => s.trim())
              .filter(Boolean),
      retentionIntervalMs: e.CARTEIRO_RETENTION_INTERVAL_MINUTES * 60_000,
    },
    circuitBreaker: { consecutiveFailures: e.CARTEIRO_CIRCUIT_BREAKER_FAILURES, failingHours: e.CARTEIRO_CIRCUIT_BREAKER_HOURS },
    operations: { webhookUrl: e.CARTEIRO_OPERATIONS_WEBHOOK_URL, webhookSecret: e.CARTEIRO_OPERATIONS_WEBHOOK_SECRET },
    metrics: {
      key: e.CARTEIRO_METRICS_KEY,
      host: e.CARTEIRO_METRICS_HOST,
      port: e.CARTEIRO_METRICS_PORT,
      failingEndpoints: e.CARTEIRO_METRICS_FAILING_ENDPOINTS,
      ledgerCacheMs: e.CARTEIRO_METRICS_LEDGER_CACHE_MS,
    },
    tracing: tracingConfig(e),
    quiet: e.CARTEIRO_QUIET,
    client: { url: e.CARTEIRO_URL, apiKey: e.CARTEIRO_API_KEY },
  };
}

function workerStallMs(configured: number | undefined, webhookTimeoutMs: number): number {
  return configured ?? Math.max(60_000, 2 * webhookTimeoutMs);
}

/**
 * The standard OpenTelemetry variables: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is the traces URL as is;
 * OTEL_EXPORTER_OTLP_ENDPOINT is a base that the specification extends with v1/traces.
 */
function tracingConfig(e: Env): TracingConfig | null {
  if (e.OTEL_SDK_DISABLED) return null;
  const tracesUrl =
    e.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT ??
    (e.OTEL_EXPORTER_OTLP_ENDPOINT === undefined ? undefined : `${e.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`);
  if (tracesUrl === undefined) return null;
  // A collector's gRPC port (4317) cannot take what this exporter sends: say so at start rather than
  // fail every export later. http/protobuf is accepted: an OTLP/HTTP receiver takes JSON as well.
  if ((e.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? e.OTEL_EXPORTER_OTLP_PROTOCOL) === 'grpc') {
    throw new ConfigError(
      "invalid configuration: OTEL_EXPORTER_OTLP_PROTOCOL: Carteiro exports traces over OTLP/HTTP (JSON), not gRPC; point the endpoint at the collector's HTTP port (4318) and set http/json, or unset the protocol",
    );
  }
  return {
    tracesUrl,
    headers: { ...e.OTEL_EXPORTER_OTLP_HEADERS, ...e.OTEL_EXPORTER_OTLP_TRACES_HEADERS },
    serviceName: e.OTEL_SERVICE_NAME,
    exportDelayMs: e.OTEL_BSP_SCHEDULE_DELAY,
  };
}
