/**
 * Where /metrics is served, and who may read it (docs/observability.md):
 *
 * - On the API (`carteiro api`, `carteiro start`): GET /metrics with `Authorization: Bearer <key>`,
 *   the admin key or CARTEIRO_METRICS_KEY. Organization keys cannot read it: the figures span every
 *   organization.
 * - On a listener of its own, CARTEIRO_METRICS_HOST:CARTEIRO_METRICS_PORT (any role; the only way for
 *   `carteiro worker`, which serves no API). It answers GET /metrics and nothing else. The address is
 *   the protection (127.0.0.1 by default); with CARTEIRO_METRICS_KEY set it asks for the key too.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { isIP } from 'node:net';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { UnauthorizedError } from '../errors/errors.ts';
import { METRICS_CONTENT_TYPE, type Metrics } from './metrics.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Counted in carteiro_ingest_refusals_total when refused (the routes that take events in). */
    ingest?: boolean;
  }
}

const digest = (s: string) => createHash('sha256').update(s).digest();

/** Whether an Authorization header carries one of `keys` (compared in constant time). */
export function bearerMatcher(keys: readonly string[]): (authorization: string | undefined) => boolean {
  const expected = keys.map(digest);
  return (authorization) => {
    const match = typeof authorization === 'string' ? /^Bearer\s+(\S{1,512})$/i.exec(authorization) : null;
    if (!match) return false;
    const given = digest(match[1] as string);
    let ok = false;
    for (const e of expected) ok = timingSafeEqual(given, e) || ok;
    return ok;
  };
}

/** GET /metrics on the API, for the admin key or the metrics key. */
export function registerMetricsRoute(app: FastifyInstance, metrics: Metrics, keys: { adminKey: string; metricsKey: string | undefined }): void {
  const allowed = bearerMatcher(keys.metricsKey ? [keys.adminKey, keys.metricsKey] : [keys.adminKey]);
  // Public to the general auth hook (which would look organization keys up in the ledger): the two
  // keys that may read metrics are checked here, without a query.
  app.get('/metrics', { config: { public: true }, schema: { hide: true }, logLevel: 'warn' }, async (request, reply) => {
    if (!allowed(request.headers.authorization)) throw new UnauthorizedError('/metrics needs the admin key or CARTEIRO_METRICS_KEY');
    reply.header('content-type', METRICS_CONTENT_TYPE).header('cache-control', 'no-store');
    return metrics.render();
  });
}

export type MetricsServer = { url: string; close(): Promise<void> };

/** The metrics listener of its own (CARTEIRO_METRICS_PORT). */
export async function startMetricsServer(
  metrics: Metrics,
  opts: { host: string; port: number; metricsKey: string | undefined; adminKey: string; log: Logger },
): Promise<MetricsServer> {
  const allowed = opts.metricsKey ? bearerMatcher([opts.metricsKey, opts.adminKey]) : () => true;
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: this listener serves GET /metrics only\n');
      return;
    }
    if (!allowed(req.headers.authorization)) {
      res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer' }).end('unauthorized: /metrics needs CARTEIRO_METRICS_KEY\n');
      return;
    }
    metrics.render().then(
      (text) => res.writeHead(200, { 'content-type': METRICS_CONTENT_TYPE, 'cache-control': 'no-store' }).end(req.method === 'HEAD' ? undefined : text),
      (err: unknown) => {
        opts.log.error({ err }, 'metrics: rendering failed');
        res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics unavailable\n');
      },
    );
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = isIP(opts.host) === 6 ? `[${opts.host}]` : opts.host;
  const url = `http://${host}:${port}/metrics`;
  if (!opts.metricsKey && !isLoopback(opts.host)) {
    opts.log.warn({ host: opts.host }, 'metrics listener is not on loopback and CARTEIRO_METRICS_KEY is unset: anyone who reaches it reads the metrics');
  }
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
