/**
 * Test harness: a real Carteiro (real Postgres + Redis when DATABASE_URL / REDIS_URL are set, as in
 * CI; embedded PGlite otherwise), each instance in its own schema so test files never see each
 * other's rows. An embedded instance gets its own data folder instead, copied from a migrated
 * template (pglite-template.ts), so it does not boot and migrate a new PGlite database itself.
 * Requests go through Fastify's inject (no socket) unless `listen` is asked for.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import postgres from 'postgres';
import { Redis } from 'ioredis';
import pino from 'pino';
import { loadConfig, type Config } from '../../src/config/config.ts';
import { compose } from '../../src/runtime/compose.ts';
import { TEMPLATE_SCHEMA, copyTemplateInto } from './pglite-template.ts';
import { buildApp } from '../../src/api/app.ts';
import type { Role, Services } from '../../src/runtime/services.ts';

export const DATABASE_URL = process.env.DATABASE_URL || undefined;
export const REDIS_URL = process.env.REDIS_URL || undefined;
export const BACKEND = DATABASE_URL ? 'postgres' : 'pglite';
export const TEST_ADMIN_KEY = 'ck_admin_test_key_0123456789abcdef';
export const TEST_ENCRYPTION_KEYS = `t1:${Buffer.alloc(32, 7).toString('base64')}`;

let announced = false;
function announce(): void {
  if (announced) return;
  announced = true;
  console.log(`# ledger: ${BACKEND}${DATABASE_URL ? '' : ' (embedded; set DATABASE_URL for Postgres)'}, redis: ${REDIS_URL ? 'on' : 'off'}`);
}

/** Fast retry policy so retry paths run in milliseconds. */
export const FAST_RETRY_ENV = {
  WEBHOOK_MAX_RETRIES: '3',
  WEBHOOK_RETRY_BASE_DELAY_MS: '40',
  WEBHOOK_RETRY_BACKOFF_FACTOR: '2',
  WEBHOOK_RETRY_MAX_DELAY_MS: '1000',
  // The slow lane's wait for a failing endpoint doubles up to this: no longer than a retry's.
  CARTEIRO_SLOW_LANE_MAX_INTERVAL_MS: '1000',
  WEBHOOK_RETRY_JITTER: '0',
  WEBHOOK_TIMEOUT_MS: '2000',
  CARTEIRO_POLL_INTERVAL_MS: '50',
  CARTEIRO_LEASE_MS: '4000',
};

export function uniqueSchema(prefix = 't'): string {
  return `${prefix}_${randomBytes(5).toString('hex')}`;
}

/**
 * A ledger for several instances in turn (a restart test): a data folder to pass as `dataDir` (on
 * embedded PGlite, a copy of the migrated template) and the schema to pass with it. The caller
 * removes the folder.
 */
export function restartableLedger(prefix = 't'): { dataDir: string; schema: string } {
  const dataDir = mkdtempSync(join(tmpdir(), `carteiro-${prefix}-`));
  if (DATABASE_URL || REDIS_URL) return { dataDir, schema: uniqueSchema(prefix) };
  copyTemplateInto(dataDir);
  return { dataDir, schema: TEMPLATE_SCHEMA };
}

export type TestEnvOptions = { env?: Record<string, string>; embedded?: boolean; schema?: string; dataDir?: string };

/** The environment a test instance runs with (also handed to spawned worker processes). */
export function testEnv(opts: TestEnvOptions = {}): Record<string, string> {
  const postgresLedger = !opts.embedded && !!DATABASE_URL;
  const withRedis = !opts.embedded && !!REDIS_URL;
  // A fresh embedded folder starts as a copy of the migrated template (see pglite-template.ts). Its
  // schema name is fixed, so not with Redis, whose keys are named after the schema and shared by all.
  const fromTemplate = !postgresLedger && !opts.dataDir && !withRedis && (opts.schema ?? TEMPLATE_SCHEMA) === TEMPLATE_SCHEMA;
  const env: Record<string, string> = {
    ...FAST_RETRY_ENV,
    CARTEIRO_SCHEMA: opts.schema ?? (fromTemplate ? TEMPLATE_SCHEMA : uniqueSchema()),
    CARTEIRO_ADMIN_KEY: TEST_ADMIN_KEY,
    CARTEIRO_ENCRYPTION_KEYS: TEST_ENCRYPTION_KEYS,
    WEBHOOK_SECRET: 'seed-webhook-secret-for-tests',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    CARTEIRO_QUIET: 'true',
    CARTEIRO_ALLOW_PRIVATE_NETWORKS: '127.0.0.0/8,::1/128',
    // No repeating retention schedule per test instance: each would leave its scheduler keys in Redis.
    CARTEIRO_RETENTION_INTERVAL_MINUTES: '0',
  };
  if (postgresLedger) env.DATABASE_URL = DATABASE_URL as string;
  else {
    env.CARTEIRO_DATA_DIR = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'carteiro-test-'));
    if (fromTemplate) copyTemplateInto(env.CARTEIRO_DATA_DIR);
  }
  if (withRedis) env.REDIS_URL = REDIS_URL as string;
  return { ...env, ...opts.env };
}

export type TestCarteiro = {
  services: Services;
  app: FastifyInstance;
  config: Config;
  env: Record<string, string>;
  /** Set when started with listen: true. */
  url: string | null;
  request<T = any>(
    method: string,
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: T; headers: Record<string, unknown> }>;
  stop(opts?: { keepSchema?: boolean }): Promise<void>;
};

export async function startCarteiro(opts: TestEnvOptions & { role?: Role; listen?: boolean } = {}): Promise<TestCarteiro> {
  announce();
  const env = testEnv(opts);
  const config = loadConfig(env);
  const composed = await compose(config, opts.role ?? 'all', { log: pino({ level: env.LOG_LEVEL as pino.Level }) });
  const app = await buildApp(composed.services);
  let url: string | null = null;
  if (opts.listen) {
    await app.listen({ host: '127.0.0.1', port: 0 });
    const addr = app.server.address();
    url = typeof addr === 'object' && addr ? `http://127.0.0.1:${addr.port}` : null;
  } else {
    await app.ready();
  }
  return {
    services: composed.services,
    app,
    config,
    env,
    url,
    async request(method, path, body, headers = {}) {
      const res = await app.inject({
        method: method as 'GET',
        url: path.startsWith('/') ? path : `/api/webhooks/${path}`,
        headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...headers },
        ...(body === undefined
          ? {}
          : typeof body === 'string'
            ? { payload: body, headers: { 'content-type': 'application/json', authorization: `Bearer ${TEST_ADMIN_KEY}`, ...headers } }
            : { payload: body as object }),
      });
      let parsed: unknown = res.body;
      try {
        parsed = res.body ? JSON.parse(res.body) : null;
      } catch {
        /* not JSON: keep the text */
      }
      return { status: res.statusCode, body: parsed as never, headers: res.headers };
    },
    async stop({ keepSchema = false } = {}) {
      await app.close();
      await composed.dispose();
      if (!keepSchema) await dropSchema(env);
      if (env.CARTEIRO_DATA_DIR && !opts.dataDir) rmSync(env.CARTEIRO_DATA_DIR, { recursive: true, force: true });
    },
  };
}

export async function dropSchema(env: Record<string, string>): Promise<void> {
  await dropRedisKeys(env);
  if (!env.DATABASE_URL) return;
  const sql = postgres(env.DATABASE_URL, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`DROP SCHEMA IF EXISTS "${env.CARTEIRO_SCHEMA}" CASCADE`);
  } finally {
    await sql.end();
  }
}

/** The instance's keys in Redis (its job queue, limits, live bus), which would otherwise outlive every run. */
async function dropRedisKeys(env: Record<string, string>): Promise<void> {
  const url = env.REDIS_URL ?? REDIS_URL;
  if (!url || url.startsWith('redis+cluster:')) return;
  const redis = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await redis.connect();
    const prefix = `${env.CARTEIRO_REDIS_PREFIX ?? 'carteiro'}:${env.CARTEIRO_SCHEMA}`;
    for (const pattern of [`{${prefix}}*`, `${prefix}:*`]) {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
        if (keys.length) await redis.del(...keys);
        cursor = next;
      } while (cursor !== '0');
    }
  } catch {
    /* best effort: a test's own checks have already run */
  } finally {
    redis.disconnect();
  }
}

/**
 * Polls until `check` returns a truthy value or the time runs out. The default deadline is generous:
 * it only stops a hang, and a busy machine must not fail a test that would pass on an idle one.
 */
export type Truthy<T> = Exclude<T, null | undefined | false | 0 | ''>;

export const HANG_TIMEOUT_MS = 60_000;

// The deadline is read from the monotonic clock: a test may mock Date (see catalog.test.ts).
export async function eventually<T>(check: () => Promise<T> | T, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<Truthy<T>> {
  const deadline = performance.now() + (opts.timeoutMs ?? HANG_TIMEOUT_MS);
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as Truthy<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (performance.now() > deadline)
      throw new Error(`timed out waiting for ${opts.what ?? 'condition'}; last: ${last instanceof Error ? last.message : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 25));
  }
}

export async function createEndpoint(c: TestCarteiro, body: Record<string, unknown>): Promise<{ id: string; secret: string; [k: string]: unknown }> {
  const res = await c.request('POST', 'endpoints', { name: 'test', ...body });
  if (res.status !== 201) throw new Error(`endpoint creation failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

export async function trigger(c: TestCarteiro, body: Record<string, unknown>, headers?: Record<string, string>): Promise<string> {
  const res = await c.request('POST', 'trigger', body, headers);
  if (res.status !== 202) throw new Error(`trigger failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.event_id;
}

export type SettledLedger = { dispatches: number; attempts: number; byStatus: Record<string, number> };

/**
 * Waits until the ledger has nothing left to send: no dispatch pending or in flight (fan-out happens
 * in the same statement as the event's insert, so every accepted event already has its dispatches).
 * Then the attempt counts are final and no further request can go out, so a test can assert that
 * nothing extra arrived instead of sleeping "long enough" for a wrong one to show up. `endpointId` and
 * `eventIds` narrow it to some dispatches.
 */
export async function settled(c: Pick<TestCarteiro, 'services'>, opts: { endpointId?: string; eventIds?: string[] } = {}): Promise<SettledLedger> {
  const sql = c.services.ledger.sql;
  return eventually(
    async () => {
      const rows = await sql<{ status: string; n: number; attempts: number }[]>`
      SELECT status, count(*)::int AS n, coalesce(sum(attempts), 0)::int AS attempts
        FROM webhook_dispatches
       WHERE (${opts.endpointId ?? null}::uuid IS NULL OR webhook_endpoint_id = ${opts.endpointId ?? null}::uuid)
         AND (${opts.eventIds ?? null}::uuid[] IS NULL OR webhook_event_id = ANY(${opts.eventIds ?? null}::uuid[]))
       GROUP BY status`;
      const byStatus = Object.fromEntries(rows.map((r) => [r.status, r.n]));
      if (byStatus.pending || byStatus.in_flight) return null;
      return { dispatches: rows.reduce((n, r) => n + r.n, 0), attempts: rows.reduce((n, r) => n + r.attempts, 0), byStatus };
    },
    { what: 'every dispatch to settle (none pending or in flight)' },
  );
}
