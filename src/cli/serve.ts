/**
 * Runs a long-lived process (API, worker, or both) until SIGTERM/SIGINT, then shuts down gracefully:
 * the API stops accepting (answering 503 while closing), the worker stops claiming and lets
 * in-flight attempts finish and record, and only then do connections close.
 */
import type { Config } from '../config/config.ts';
import { compose } from '../runtime/compose.ts';
import { buildApp } from '../api/app.ts';
import type { Role } from '../runtime/services.ts';
import { printBanner } from './banner.ts';

export async function runServer(config: Config, role: Role): Promise<number> {
  const composed = await compose(config, role);
  const { services } = composed;
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
  printBanner({ config, role, port, adminKey: services.adminKey, showKey: composed.generatedAdminKey || !config.database.url, embedded: services.ledger.embedded });

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
