/**
 * The dashboard: one static page (public/index.html) with its script and stylesheet served as
 * separate files, so a strict Content-Security-Policy (`default-src 'self'`, no inline script or
 * style) holds. No build step and nothing from a CDN. The page itself is public, as it holds no data:
 * it asks for an API key and calls the JSON API (and the live stream, GET /api/webhooks/live) with it.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SHARED_DOM_SCRIPT, staticAsset, type StaticAsset } from './static-asset.ts';

export const DASHBOARD_PATH = '/dashboard';

export const DASHBOARD_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

const asset = (file: string, type: string) => staticAsset(new URL(`./public/${file}`, import.meta.url), type);

const ASSETS = {
  page: asset('index.html', 'text/html; charset=utf-8'),
  script: asset('app.js', 'text/javascript; charset=utf-8'),
  style: asset('app.css', 'text/css; charset=utf-8'),
  icon: asset('favicon.svg', 'image/svg+xml'),
};

function send(a: StaticAsset) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    reply
      .header('content-type', a.type)
      .header('content-security-policy', DASHBOARD_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('x-frame-options', 'DENY')
      .header('referrer-policy', 'no-referrer')
      .header('cross-origin-opener-policy', 'same-origin')
      .header('cross-origin-resource-policy', 'same-origin')
      // Revalidated on every load (an upgrade shows at once), answered with 304 when unchanged.
      .header('cache-control', 'no-cache')
      .header('etag', a.etag);
    if (request.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.send(a.body);
  };
}

export async function dashboardRoutes(app: FastifyInstance): Promise<void> {
  const opts = { config: { public: true, audit: false }, schema: { hide: true } };
  app.get(DASHBOARD_PATH, opts, send(ASSETS.page));
  app.get(`${DASHBOARD_PATH}/`, opts, send(ASSETS.page));
  app.get(`${DASHBOARD_PATH}/dom.js`, opts, send(SHARED_DOM_SCRIPT));
  app.get(`${DASHBOARD_PATH}/app.js`, opts, send(ASSETS.script));
  app.get(`${DASHBOARD_PATH}/app.css`, opts, send(ASSETS.style));
  app.get(`${DASHBOARD_PATH}/favicon.svg`, opts, send(ASSETS.icon));
}
