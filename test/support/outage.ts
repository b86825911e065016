/**
 * For outage tests: Carteiro as real processes (`carteiro api`, `carteiro worker`) on a Postgres the
 * test may stop and start (a private cluster: bench/lib/private-postgres.ts, on a port of 5442..5449),
 * and the few HTTP and ledger helpers those tests share. Every process is stopped by its own pid.
 */
import { createServer } from 'node:net';
import type postgres from 'postgres';
import { TEST_ADMIN_KEY } from './carteiro.ts';
import { spawnCarteiro, type CarteiroProcess } from './processes.ts';
import { privatePostgresAvailable, startPrivatePostgres, type PrivatePostgres } from '../../bench/lib/private-postgres.ts';

export const exited = (p: CarteiroProcess): boolean => p.child.exitCode !== null || p.child.signalCode !== null;

export function exitOf(p: CarteiroProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (exited(p)) return Promise.resolve({ code: p.child.exitCode, signal: p.child.signalCode });
  return new Promise((resolve) => p.child.once('exit', (code, signal) => resolve({ code, signal })));
}

/** SIGTERM, then SIGKILL after `graceMs`, both to the process' own pid. */
export async function stopProcess(p: CarteiroProcess, graceMs = 20_000): Promise<void> {
  if (exited(p)) return;
  const done = exitOf(p);
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (!exited(p)) p.child.kill('SIGKILL');
  }, graceMs);
  await done;
  clearTimeout(timer);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/** A free loopback port: from `from..to` when given (in random order), else any. */
export async function freePort(from?: number, to?: number): Promise<number> {
  if (from !== undefined && to !== undefined) {
    const ports = Array.from({ length: to - from + 1 }, (_, i) => from + i).sort(() => Math.random() - 0.5);
    for (const p of ports) if (await portFree(p)) return p;
    throw new Error(`no free port in ${from}..${to}`);
  }
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => resolve(typeof addr === 'object' && addr ? addr.port : 0));
    });
  });
}

/** Why a private Postgres cannot run here (a skip reason), or false. */
export function privatePostgresSkip(): string | false {
  return privatePostgresAvailable() ? false : 'needs the Postgres server binaries (initdb, pg_ctl) for a private cluster';
}

export async function startOwnPostgres(): Promise<PrivatePostgres> {
  return startPrivatePostgres(await freePort(5442, 5449));
}

export type Answer = { status: number; body: any; headers: Headers; ms: number };

export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
  timeoutMs = 30_000,
): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(`${base}/api/webhooks/${path}`, {
    method,
    headers: { authorization: `Bearer ${TEST_ADMIN_KEY}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed, headers: res.headers, ms: performance.now() - started };
}

/** Triggers one event, retrying 503s and dropped connections with the same Idempotency-Key, as a client should. */
export async function triggerUntilAccepted(base: string, key: string, data: Record<string, unknown>, giveUpAfterMs = 120_000): Promise<string> {
  const deadline = Date.now() + giveUpAfterMs;
  for (;;) {
    const r = await call(base, 'POST', 'trigger', { event_type: 'agent.created', data }, { 'idempotency-key': key }).catch(() => null);
    if (r?.status === 202) return (r.body as { event_id: string }).event_id;
    if (r && r.status !== 503) throw new Error(`trigger answered ${r.status}: ${JSON.stringify(r.body)}`);
    if (Date.now() > deadline) throw new Error(`trigger not accepted in ${giveUpAfterMs} ms`);
    await new Promise((res) => setTimeout(res, 250));
  }
}

export async function startApiProcess(env: Record<string, string>, timeoutMs = 90_000): Promise<{ proc: CarteiroProcess; url: string }> {
  const port = await freePort();
  const proc = spawnCarteiro('api', { ...env, HOST: '127.0.0.1', PORT: String(port) });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + timeoutMs;
  while (!exited(proc) && Date.now() < deadline) {
    const up = await fetch(`${url}/api/webhooks/health`, { signal: AbortSignal.timeout(3_000) }).then(
      (r) => r.status === 200,
      () => false,
    );
    if (up) return { proc, url };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stopProcess(proc);
  throw new Error(`carteiro api did not come up:\n${proc.output()}`);
}

/** A worker process, once its heartbeat is in the ledger. */
export async function startWorkerProcess(env: Record<string, string>, sql: postgres.Sql, timeoutMs = 90_000): Promise<CarteiroProcess> {
  const proc = spawnCarteiro('worker', env);
  const deadline = Date.now() + timeoutMs;
  while (!exited(proc) && Date.now() < deadline) {
    const rows = await sql`SELECT 1 FROM worker_heartbeats WHERE pid = ${proc.pid}`.catch(() => []);
    if (rows.length) return proc;
    await new Promise((r) => setTimeout(r, 100));
  }
  await stopProcess(proc);
  throw new Error(`carteiro worker gave no heartbeat:\n${proc.output()}`);
}

/** Backends of Carteiro's worker (application_name carteiro-worker) waiting on a lock, with their query. */
export async function workerLockWaits(sql: postgres.Sql): Promise<string[]> {
  const rows = await sql<{ query: string }[]>`
    SELECT query FROM pg_stat_activity WHERE application_name = 'carteiro-worker' AND wait_event_type = 'Lock'`;
  return rows.map((r) => r.query);
}
