/**
 * The customer portal's page (docs/portal.md): what a SaaS's own users see, at the `url` a portal
 * session returns (`/portal?token=…`). Like the dashboard, one static page with its script and
 * stylesheet as separate files, no build step and nothing from a CDN, so `script-src 'self'` holds.
 * The page holds no data: it reads the session token from its URL, drops it from the address bar,
 * and calls the portal's API (/api/webhooks/portal/…) with it as a bearer token.
 *
 * Unlike the dashboard it may be framed: `frame-ancestors` is CARTEIRO_PORTAL_FRAME_ANCESTORS
 * ('self' unless the operator names the SaaS's app), so no X-Frame-Options is sent. Images may come
 * from any http(s) origin, for the logo the embedding app names (`?logo=`).
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SHARED_DOM_SCRIPT, staticAsset, type StaticAsset } from './static-asset.ts';

export const PORTAL_PATH = '/portal';

export function portalCsp(frameAncestors: readonly string[]): string {
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: https: http:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${frameAncestors.join(' ')}`,
  ].join('; ');
}

type Asset = StaticAsset & { page: boolean };

const asset = (file: string, type: string, page = false): Asset => ({ ...staticAsset(new URL(`./portal/${file}`, import.meta.url), type), page });

const ASSETS = {
  page: asset('index.html', 'text/html; charset=utf-8', true),
  script: asset('app.js', 'text/javascript; charset=utf-8'),
  style: asset('app.css', 'text/css; charset=utf-8'),
};

export async function portalPageRoutes(app: FastifyInstance, opts: { frameAncestors: readonly string[] }): Promise<void> {
  const csp = portalCsp(opts.frameAncestors);
  const send = (a: Asset) => async (request: FastifyRequest, reply: FastifyReply) => {
    reply
      .header('content-type', a.type)
      .header('content-security-policy', csp)
      .header('x-content-type-options', 'nosniff')
      // The page's URL carries the session token: no referrer leaves it, and no cache keeps a copy
      // under that URL. Its assets are plain files, revalidated on every load.
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', a.page ? 'no-store' : 'no-cache');
    if (a.page) return reply.send(a.body);
    reply.header('cross-origin-resource-policy', 'same-origin').header('etag', a.etag);
    if (request.headers['if-none-match'] === a.etag) return reply.code(304).send();
    return reply.send(a.body);
  };
  const route = { config: { public: true, audit: false }, schema: { hide: true } };
  app.get(PORTAL_PATH, route, send(ASSETS.page));
  app.get(`${PORTAL_PATH}/`, route, send(ASSETS.page));
  app.get(`${PORTAL_PATH}/dom.js`, route, send({ ...SHARED_DOM_SCRIPT, page: false }));
  app.get(`${PORTAL_PATH}/app.js`, route, send(ASSETS.script));
  app.get(`${PORTAL_PATH}/app.css`, route, send(ASSETS.style));
}
