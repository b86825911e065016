/**
 * Opens the ledger: real Postgres from DATABASE_URL, or embedded PGlite served on a unix socket
 * in the data folder, so both run the very same postgres.js queries.
 *
 * PGlite is one backend: every socket connection shares its session, and concurrent extended-protocol
 * exchanges from several connections can clobber each other's unnamed portal ("portal \"\" does not
 * exist", seen here). So the embedded pool is ONE postgres.js connection, which pipelines queries and
 * serialises transactions; PGlite executes one statement at a time anyway.
 *
 * Wake-ups are always `pg_notify` in SQL. On Postgres they arrive through postgres.js' dedicated
 * LISTEN connection. PGlite has one backend shared by all socket connections, so a notification is
 * written into the stream of whichever connection commits it; there the pool's `onnotify` catches it.
 */
import { mkdirSync, rmSync, existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import { lockDataFolder } from './data-folder-lock.ts';
import type { Config } from '../config/config.ts';
import { swappableSql } from './swappable-sql.ts';
import { withTimeout } from '../util/timeout.ts';

export type Sql = postgres.Sql<{}>;
export type TxSql = postgres.TransactionSql<{}>;

export type Ledger = {
  sql: Sql;
  schema: string;
  embedded: boolean;
  /** Calls `onNotify` for every notification on `channel`; resolves once listening. */
  listen(channel: string, onNotify: (payload: string) => void): Promise<void>;
  /**
   * Replaces the connection pool with a fresh one (Postgres only; the embedded ledger has no
   * server to lose). The old pool's sockets are destroyed, so a transaction still open on them rolls
   * back, and its queries fail instead of hanging; listeners are moved to the new pool. Resolves
   * false when it did nothing (embedded, closed, or another reconnect is under way).
   */
  reconnect(reason: string): Promise<boolean>;
  close(): Promise<void>;
};

type NotifyHandlers = Map<string, Set<(payload: string) => void>>;

const COMMON_OPTIONS = {
  onnotice: () => {},
  transform: { undefined: null },
} as const;

/**
 * postgres.js 3.4.9 can send a transaction's BEGIN without reserving the connection when BEGIN is the
 * query that fills a connection's pipeline (porsager/postgres#1189, fix proposed in #1218): unrelated
 * queries then run inside the open transaction, and with one connection (embedded mode) an
 * acknowledged write could be rolled back with someone else's transaction. Until a release fixes it,
 * `begin` runs on `sql.reserve()`, which only ever takes an idle connection before anything is sent.
 */
function withSafeTransactions(sql: Sql): Sql {
  let ended = false;
  const end = sql.end.bind(sql);
  (sql as unknown as { end: typeof end }).end = (options) => {
    ended = true;
    return end(options);
  };
  const begin = async (...args: unknown[]) => {
    // reserve() would queue after end() and make the pool reconnect for ever.
    if (ended) throw new Error('the ledger connection is closed');
    const fn = args[args.length - 1] as (tx: Sql) => unknown;
    const mode = typeof args[0] === 'string' && args.length > 1 ? ` ${(args[0] as string).replace(/[^a-z ]/gi, '')}` : '';
    const tx = await sql.reserve();
    try {
      await tx.unsafe(`BEGIN${mode}`);
      try {
        const result = await fn(tx as unknown as Sql);
        await tx.unsafe('COMMIT');
        return result;
      } catch (err) {
        await tx.unsafe('ROLLBACK').catch(() => {});
        throw err;
      }
    } finally {
      tx.release();
    }
  };
  (sql as unknown as { begin: typeof begin }).begin = begin;
  return sql;
}

export async function openLedger(config: Config, opts: { poolSize?: number; applicationName?: string } = {}): Promise<Ledger> {
  const max = opts.poolSize ?? config.database.poolSize;
  const schema = config.database.schema;
  if (config.database.url) return openPostgres(config.database.url, schema, max, opts.applicationName ?? 'carteiro');
  return openEmbedded(config.database.dataDir, schema);
}

/**
 * Postgres 14+ can check, while a statement runs or waits for a lock, that its client is still
 * connected. Without it, a backend whose client gave up (a pool replaced after a deadline) went on
 * waiting for a lock while holding its own, and the retry queued behind it: records of one endpoint
 * waited for each other for as long as the first lock was held. With it, such a backend ends within
 * a second of its socket closing and its transaction rolls back.
 */
const CLIENT_CHECK_INTERVAL_MS = 1000;
const PROBE_DEADLINE_MS = 10_000;

async function sessionSettings(url: string): Promise<Record<string, string>> {
  const probe = postgres(url, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    // Bounded like every other call at a restart (a query can stay unsettled in postgres.js); the
    // error counts as "ledger down", so a starting process retries.
    const [row] = await withTimeout(probe<{ v: number }[]>`SELECT current_setting('server_version_num')::int AS v`, PROBE_DEADLINE_MS, () =>
      Object.assign(new Error(`no answer from Postgres within ${PROBE_DEADLINE_MS} ms`), { code: 'CONNECT_TIMEOUT' }),
    );
    return (row?.v ?? 0) >= 140000 ? { client_connection_check_interval: String(CLIENT_CHECK_INTERVAL_MS) } : {};
  } finally {
    await probe.end({ timeout: 1 }).catch(() => {});
  }
}

async function openPostgres(url: string, schema: string, max: number, applicationName: string): Promise<Ledger> {
  const settings = await sessionSettings(url);
  const connect = () =>
    withSafeTransactions(
      postgres(url, {
        ...COMMON_OPTIONS,
        max,
        connection: { search_path: `${schema},public`, application_name: applicationName, ...settings },
        connect_timeout: 5,
      }) as unknown as Sql,
    );
  const pool = swappableSql(connect());
  const listeners: [string, (payload: string) => void][] = [];
  let closed = false;
  let reconnecting = false;
  return {
    sql: pool.sql,
    schema,
    embedded: false,
    async listen(channel, onNotify) {
      listeners.push([channel, onNotify]);
      await pool.current().listen(channel, onNotify);
    },
    async reconnect() {
      if (closed || reconnecting) return false;
      reconnecting = true;
      try {
        const old = pool.swap(connect());
        // Not awaited: a connection stuck in postgres.js may never finish ending; timeout 0 destroys it.
        void old.end({ timeout: 0 }).catch(() => {});
        // LISTEN again on the new pool (it connects when Postgres is back; postgres.js retries).
        for (const [channel, onNotify] of listeners)
          void pool
            .current()
            .listen(channel, onNotify)
            .catch(() => {});
        return true;
      } finally {
        reconnecting = false;
      }
    },
    async close() {
      closed = true;
      await pool.current().end({ timeout: 5 });
    },
  };
}

async function openEmbedded(dataDir: string, schema: string): Promise<Ledger> {
  const { PGlite } = await import('@electric-sql/pglite');
  const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
  const dir = resolve(dataDir);
  // Private, as Postgres insists for its data directory: the database files (events, sealed secrets) and,
  // beside them, the generated keys. The socket takes no password, so its folder is private too.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Before PGlite touches the folder: a second instance there would not refuse, it would break both.
  const lock = lockDataFolder(dir);
  const socketDir = join(dir, 'run');
  let opened: InstanceType<typeof PGlite> | undefined;
  let db: InstanceType<typeof PGlite>;
  let server: InstanceType<typeof PGLiteSocketServer>;
  try {
    db = opened = await PGlite.create(join(dir, 'pglite'));
    // One backend serves every socket connection, so session settings made here apply to all of them.
    await db.exec(`CREATE SCHEMA IF NOT EXISTS "${schema}"; SET search_path TO "${schema}", public;`);
    mkdirSync(socketDir, { recursive: true, mode: 0o700 });
    const socketPath = join(socketDir, '.s.PGSQL.5432');
    // A crashed run leaves its socket file behind; we hold the folder's lock, so it is no one else's.
    if (existsSync(socketPath)) rmSync(socketPath);
    server = new PGLiteSocketServer({ db, path: socketPath, maxConnections: 4 });
    await server.start();
  } catch (err) {
    await opened?.close().catch(() => {});
    lock.release();
    throw err;
  }

  const handlers: NotifyHandlers = new Map();
  const sql = postgres({
    ...COMMON_OPTIONS,
    host: socketDir,
    port: 5432,
    database: 'postgres',
    username: 'postgres',
    max: 1,
    onnotify: (channel: string, payload: string) => {
      handlers.get(channel)?.forEach((fn) => fn(payload));
    },
  } as postgres.Options<{}>) as unknown as Sql;
  withSafeTransactions(sql);

  return {
    sql,
    schema,
    embedded: true,
    async listen(channel, onNotify) {
      let set = handlers.get(channel);
      if (!set) {
        set = new Set();
        handlers.set(channel, set);
        await sql.unsafe(`LISTEN "${channel}"`);
      }
      set.add(onNotify);
    },
    // One in-process database: nothing to reconnect to.
    reconnect: async () => false,
    async close() {
      await sql.end({ timeout: 5 });
      await server.stop();
      await db.close();
      lock.release();
    },
  };
}

/** Connection-level failures of postgres.js and the socket layer: the ledger is down, not the request bad. */
const LEDGER_DOWN_CODES = new Set([
  'CARTEIRO_LEDGER_DEADLINE',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'EPIPE',
  '57P01',
  '57P02',
  '57P03',
  '08006',
  '08001',
  '08003',
  '08004',
]);

export function isLedgerDown(err: unknown): boolean {
  const code = (err as { code?: string })?.code;
  return code !== undefined && LEDGER_DOWN_CODES.has(code);
}
