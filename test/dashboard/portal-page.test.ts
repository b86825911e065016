/**
 * The customer portal's page over HTTP (docs/portal.md): served at the `url` a portal session returns,
 * public, under a Content-Security-Policy that keeps scripts to 'self' and lets only the configured
 * ancestors frame it; no response carries the session token; the script renders text only.
 * The page in a real browser: portal-browser.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startCarteiro, type TestCarteiro } from '../support/carteiro.ts';
import { loadConfig } from '../../src/config/config.ts';
import { createOrgWithKey, withKey } from '../security/tenancy-helpers.ts';

const PAGE_URLS = ['/portal', '/portal/'];

function cspDirectives(header: unknown): Map<string, string> {
  return new Map(
    String(header)
      .split(';')
      .map((d) => d.trim())
      .filter(Boolean)
      .map((d) => {
        const [name, ...rest] = d.split(/\s+/);
        return [name as string, rest.join(' ')];
      }),
  );
}

describe('portal page', () => {
  let c: TestCarteiro;
  before(async () => {
    c = await startCarteiro({ env: { CARTEIRO_PUBLIC_URL: 'https://hooks.example.com' } });
  });
  after(async () => {
    await c?.stop();
  });

  test('GET /portal serves the page without a key, with a CSP that keeps scripts to self and frames to self by default', async () => {
    for (const url of PAGE_URLS) {
      const res = await c.app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.match(String(res.headers['content-type']), /^text\/html/);
      const csp = cspDirectives(res.headers['content-security-policy']);
      assert.equal(csp.get('default-src'), "'self'");
      assert.equal(csp.get('script-src'), "'self'");
      assert.equal(csp.get('style-src'), "'self'");
      assert.equal(csp.get('connect-src'), "'self'");
      assert.equal(csp.get('object-src'), "'none'");
      assert.equal(csp.get('base-uri'), "'none'");
      assert.equal(csp.get('frame-ancestors'), "'self'");
      assert.doesNotMatch(String(res.headers['content-security-policy']), /unsafe-inline|unsafe-eval/);
      // Framing is governed by frame-ancestors alone: an X-Frame-Options DENY would forbid every embedding.
      assert.equal(res.headers['x-frame-options'], undefined);
      assert.equal(res.headers['x-content-type-options'], 'nosniff');
      assert.equal(res.headers['referrer-policy'], 'no-referrer');
      assert.equal(res.headers['cache-control'], 'no-store');
      assert.match(res.body, /<script src="\/portal\/app\.js" defer><\/script>/);
      assert.match(res.body, /<link rel="stylesheet" href="\/portal\/app\.css">/);
    }
  });

  test("a session's url leads to the page, and no response carries its token", async () => {
    const org = await createOrgWithKey(c, 'Portal page SaaS');
    const issued = await withKey(c, org.key)('POST', 'portal/sessions', { user_id: 'customer-page', scope: 'manage' });
    assert.equal(issued.status, 201, JSON.stringify(issued.body));
    const { token, url } = issued.body as { token: string; url: string };
    const u = new URL(url);
    assert.equal(u.origin + u.pathname, 'https://hooks.example.com/portal');
    assert.equal(u.searchParams.get('token'), token);

    for (const path of [`${u.pathname}${u.search}`, `/portal/?token=${encodeURIComponent(token)}&theme=dark`, '/portal/app.js', '/portal/app.css']) {
      const res = await c.app.inject({ method: 'GET', url: path, headers: { referer: `https://app.example.com/settings?token=${token}` } });
      assert.equal(res.statusCode, 200, path);
      assert.equal(res.body.includes(token), false, `${path}: the body carries the token`);
      assert.equal(JSON.stringify(res.headers).includes(token), false, `${path}: a header carries the token`);
      assert.equal(res.body.includes('cp_sess_'), false, `${path}: the body names a token`);
    }
  });

  test('the page has no inline script, style or handler', async () => {
    const html = (await c.app.inject({ method: 'GET', url: '/portal' })).body;
    for (const script of html.match(/<script\b[^>]*>/g) ?? []) assert.match(script, /\bsrc="\/portal\//, script);
    assert.doesNotMatch(html, /<style\b/);
    assert.doesNotMatch(html, /\sstyle=/);
    assert.doesNotMatch(html, /\son[a-z]+=/i);
    assert.doesNotMatch(html, /<(?:script|link)\b[^>]*(?:src|href)="https?:/, 'nothing loaded from another origin');
  });

  test('script and stylesheet are public, typed, cacheable by ETag, under the same CSP', async () => {
    for (const [url, type] of [
      ['/portal/app.js', /^text\/javascript/],
      ['/portal/app.css', /^text\/css/],
    ] as const) {
      const res = await c.app.inject({ method: 'GET', url });
      assert.equal(res.statusCode, 200, url);
      assert.match(String(res.headers['content-type']), type);
      assert.equal(cspDirectives(res.headers['content-security-policy']).get('script-src'), "'self'");
      const again = await c.app.inject({ method: 'GET', url, headers: { 'if-none-match': String(res.headers.etag) } });
      assert.equal(again.statusCode, 304, url);
    }
  });

  test('the script renders text only, checks theme values, and keeps the token out of the URL and localStorage', () => {
    const js = readFileSync(new URL('../../src/dashboard/portal/app.js', import.meta.url), 'utf8');
    for (const sink of [
      'innerHTML',
      'outerHTML',
      'insertAdjacentHTML',
      'document.write',
      'eval(',
      'new Function',
      'localStorage',
      "setAttribute('style'",
      '.cssText',
    ]) {
      assert.ok(!js.includes(sink), `app.js uses ${sink}`);
    }
    assert.match(js, /history\.replaceState/);
    assert.match(js, /authorization: 'Bearer '/);
    assert.match(js, /\^#\(\?:\[0-9a-f\]\{3\}\|\[0-9a-f\]\{6\}\)\$/, 'colours are checked as #rgb or #rrggbb');
  });
});

describe('CARTEIRO_PORTAL_FRAME_ANCESTORS', () => {
  const base = { CARTEIRO_ADMIN_KEY: 'ck_admin_test_key_0123456789abcdef' };

  test("names who may frame the page: origins, 'self', 'none', *", () => {
    assert.deepEqual(loadConfig(base).portal.frameAncestors, ["'self'"]);
    assert.deepEqual(
      loadConfig({ ...base, CARTEIRO_PORTAL_FRAME_ANCESTORS: 'https://app.example.com, https://*.example.org:8443 self' }).portal.frameAncestors,
      ['https://app.example.com', 'https://*.example.org:8443', "'self'"],
    );
    assert.deepEqual(loadConfig({ ...base, CARTEIRO_PORTAL_FRAME_ANCESTORS: '*' }).portal.frameAncestors, ['*']);
    assert.deepEqual(loadConfig({ ...base, CARTEIRO_PORTAL_FRAME_ANCESTORS: "'none'" }).portal.frameAncestors, ["'none'"]);
  });

  test('refuses anything that would write another directive or is not a source', () => {
    for (const bad of [
      "https://app.example.com; script-src 'unsafe-inline'",
      'https://app.example.com/path',
      'javascript:alert(1)',
      "'unsafe-inline'",
      "'none' https://app.example.com",
      'app.example.com"',
    ]) {
      assert.throws(() => loadConfig({ ...base, CARTEIRO_PORTAL_FRAME_ANCESTORS: bad }), /CARTEIRO_PORTAL_FRAME_ANCESTORS/, bad);
    }
  });

  test('the configured ancestors are the page’s frame-ancestors', async () => {
    const c = await startCarteiro({ env: { CARTEIRO_PORTAL_FRAME_ANCESTORS: 'https://app.example.com https://admin.example.com' } });
    try {
      const res = await c.app.inject({ method: 'GET', url: '/portal' });
      assert.equal(cspDirectives(res.headers['content-security-policy']).get('frame-ancestors'), 'https://app.example.com https://admin.example.com');
      // The dashboard stays unframeable whatever the portal allows.
      const dash = await c.app.inject({ method: 'GET', url: '/dashboard' });
      assert.equal(cspDirectives(dash.headers['content-security-policy']).get('frame-ancestors'), "'none'");
    } finally {
      await c.stop();
    }
  });
});
