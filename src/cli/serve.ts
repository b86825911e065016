/**
 * Runs a long-lived process (API, worker, or both) until SIGTERM/SIGINT, then shuts down gracefully:
 * the API stops accepting (answering 503 while closing), the worker stops claiming and lets
 * in-flight attempts finish and record, and only then do connections close.
 */
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
 * nextWrite: porsager/postgres#1066, #1208), outside any promise we could catch. The pool reconnects
 * by itself, so such an error is logged and survived; any other uncaught error still ends the process.
 */
function isPostgresClientSocketBug(err: unknown): boolean {
  return err instanceof TypeError && /node_modules[\\/]postgres[\\/]src[\\/]connection\.js/.test(err.stack ?? '');
}

/** A process started while Postgres is down waits for it (with backoff) instead of exiting. */
async function composeWhenLedgerIsUp(config: Config, role: Role): Promise<Composed> {
  const log = createLogger({ level: config.logLevel, format: config.logFormat, base: { role } });
  for (let attempt = 1; ; attempt++) {
    try {
      return await compose(config, role, { log });
    } catch (err) {
      if (!config.database.url || !isLedgerDown(err)) throw err;
      const delayMs = Math.min(START_RETRY_MAX_DELAY_MS, 500 * 2 ** Math.min(attempt, 5));
      log.warn({ err: (err as Error).message, attempt, retryInMs: delayMs }, 'ledger unavailable at start; retrying');
      await new Promise((r) => setTimeout(r, delayMs));
    }
  }
}

export async function runServer(config: Config, role: Role): Promise<number> {
  const composed = await composeWhenLedgerIsUp(config, role);
  const { services } = composed;
  process.on('uncaughtException', (err) => {
    if (isPostgresClientSocketBug(err)) {
      services.log.error({ err }, 'postgres client failed on a lost connection; it reconnects by itself');
      return;
    }
    services.log.fatal({ err }, 'uncaught exception');
    process.exit(1);
  });
  const app = role === 'worker' ? null : await buildApp(services);
  try {
    if (app) await app.listen({ host: config.http.host, port: config.http.port });
  } catch (err) {
    // Without this the worker would keep the process alive with no API in front of it.
    await composed.dispose().catch(() => {});
    throw err;
  }
  const address = app ? app.server.address() : null;
  const port = address && typeof address === 'object' ? address.port : config.http.port;
  printBanner({ config, role, port, adminKey: services.adminKey, showKey: composed.generatedAdminKey || !config.database.url, embedded: services.ledger.embedded, log: services.log });

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      services.log.info({ signal }, 'shutting down');
      const force = setTimeout(() => {
        services.log.error('shutdown took too long; exiting');
        resolve(1);
        process.exit(1);
      }, config.delivery.retry.timeoutMs + 15_000);
      force.unref();
      try {
        await app?.close();
        await composed.dispose();
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
