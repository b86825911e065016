/**
 * Runs a long-lived process (API, worker, or both) until SIGTERM/SIGINT, then shuts down gracefully:
 * the API stops accepting (answering 503 while closing), the worker stops claiming and lets
 * in-flight attempts finish and record, and only then do connections close.
 */
import type { Logger } from 'pino';
import { createLogger } from '../util/logger.ts';
import type { Config } from '../config/config.ts';
import { compose, type Composed } from '../runtime/compose.ts';
import { isLedgerDown } from '../ledger/connection.ts';
import { buildApp } from '../api/app.ts';
import type { Role } from '../runtime/services.ts';
import { printBanner } from './banner.ts';

const START_RETRY_MAX_DELAY_MS = 10_000;

/**
 * postgres.js 3.4.9 can throw from a socket callback after its server went away (a null socket in
 * nextWrite: porsager/postgres#1066, #1208), outside any promise we could catch. Such an error is
 * logged and survived, and the pool is replaced: the connection it came from can leave a query
 * unsettled for good (a worker stalled that way for minutes).
 */
function isPostgresClientSocketBug(err: unknown): boolean {
  return err instanceof TypeError && /node_modules[\\/]postgres[\\/](cjs[\\/])?src[\\/]connection\.js/.test(err.stack ?? '');
}

/**
 * A pool replaced after a deadline is destroyed with its queries; postgres.js also rejects internal
 * promises nobody holds then (seen: CONNECTION_DESTROYED from its destroy timer, unhandled). Those
 * are expected, not a reason to exit. Any other uncaught error still ends the process.
 */
function isAbandonedPoolError(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return (code === 'CONNECTION_DESTROYED' || code === 'CONNECTION_ENDED') && /node_modules[\\/]postgres[\\/]/.test((err as Error).stack ?? '');
}

/** A worker that stayed stalled exits with this code, for its supervisor to start a fresh one. */
const STALLED_EXIT_CODE = 75;

/** A process started while Postgres is down waits for it (with backoff) instead of exiting. */
async function composeWhenLedgerIsUp(config: Config, role: Role, log: Logger, onWorkerStalled: (reason: string) => void): Promise<Composed> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await compose(config, role, { log, onWorkerStalled });
    } catch (err) {
      if (!config.database.url || !isLedgerDown(err)) throw err;
      const delayMs = Math.min(START_RETRY_MAX_DELAY_MS, 500 * 2 ** Math.min(attempt, 5));
      log.warn({ err: (err as Error).message, attempt, retryInMs: delayMs }, 'ledger unavailable at start; retrying');
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

export async function runServer(config: Config, role: Role): Promise<number> {
  const log = createLogger({ level: config.logLevel, format: config.logFormat, base: { role } });
  let composed: Composed | null = null;
  // Installed before anything connects: the postgres.js socket error also comes while a process
  // starts during a Postgres restart (a worker exited on it, uncaught, before this was up).
  process.on('uncaughtException', (err) => {
    if (isPostgresClientSocketBug(err)) {
      log.error({ err }, 'postgres client failed on a lost connection; replacing the connection pool');
      void composed?.services.ledger.reconnect('postgres client socket error');
      return;
    }
    if (isAbandonedPoolError(err)) {
      log.warn({ err: (err as Error).message }, 'a query of a replaced connection pool failed after nobody waited for it');
      return;
    }
    log.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  const onWorkerStalled = () => {
    // The stalled worker's unrecorded work goes back to the queue when its leases run out.
    setTimeout(() => process.exit(STALLED_EXIT_CODE), 100);
  };
  composed = await composeWhenLedgerIsUp(config, role, log, onWorkerStalled);
  const { services } = composed;
  const ready = composed;
  const app = role === 'worker' ? null : await buildApp(services);
  try {
    if (app) await app.listen({ host: config.http.host, port: config.http.port });
  } catch (err) {
    // Without this the worker would keep the process alive with no API in front of it.
    await ready.dispose().catch(() => {});
    throw err;
  }
  const address = app ? app.server.address() : null;
  const port = address && typeof address === 'object' ? address.port : config.http.port;
  printBanner({
    config,
    role,
    port,
    adminKey: services.adminKey,
    showKey: ready.generatedAdminKey || !config.database.url,
    embedded: services.ledger.embedded,
    log: services.log,
  });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      services.log.info({ signal }, 'shutting down');
      const force = setTimeout(
        () => {
          services.log.error('shutdown took too long; exiting');
          resolve(1);
          process.exit(1);
        },
        config.worker.shutdownGraceMs + config.worker.ledgerDeadlineMs * 2 + 15_000,
      );
      force.unref();
      try {
        await app?.close();
        await ready.dispose();
        resolve(0);
      } catch (err) {
        services.log.error({ err }, 'error during shutdown');
        resolve(1);
      }
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
}
