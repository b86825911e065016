/**
 * The customer portal's page in a real browser (Debian's chromium driven by playwright-core), against
 * a real Carteiro and a loopback receiver: a SaaS issues a session for its user; the user opens the
 * portal's URL (the token leaves the address bar), creates an endpoint picking event types from the
 * catalog, sees its secret once, sends a test event and sees what the receiver answered (verified with
 * that secret), finds the delivery and replays it, rotates the secret, edits, pauses, recovers and
 * deletes. A read-scope session sees everything and no write control; another user's session sees
 * none of it; a revoked or expired session shows that it has expired; names and answers that look
 * like HTML stay text; the theme parameters apply and malicious ones are ignored; the page works
 * framed by an allowed origin and is refused by another. Screenshots go to /tmp (carteiro-portal-*.png).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { eventually, startCarteiro, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, verifiesWithStandardWebhooks, type TestReceiver } from '../support/receiver.ts';
import { CHROMIUM, INSTALL_HINT, installed, launch, SHOTS, skipWithoutChromium as skip } from '../support/chromium.ts';
import { createOrgWithKey, withKey } from '../security/tenancy-helpers.ts';

const HOSTILE_NAME = '<img src=x onerror="window.__pwned=1">';
const RECEIVER_ANSWER = '<b>thanks</b> {"received":true,"by":"acme-receiver"}';
const LOGO_SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32"><rect width="32" height="32" fill="#ff6600"/></svg>';

/** The SaaS's own app: a page that frames the portal (`/embed?src=…`), and a logo. */
async function startSaasApp(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/logo.svg') return void res.writeHead(200, { 'content-type': 'image/svg+xml' }).end(LOGO_SVG);
    if (url.pathname === '/embed') {
      const src = (url.searchParams.get('src') ?? '').replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
      return void res
        .writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
        .end(
          `<!doctype html><link rel="icon" href="data:,"><title>SaaS app</title><h1>Settings</h1><iframe id="portal" src="${src}" width="1200" height="760"></iframe>`,
        );
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** Collects what the page must never do: throw, open a dialog, log an error (bar the ones a step expects). */
function watch(page: Page) {
  const problems: string[] = [];
  const expected: RegExp[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('dialog', (d) => {
    problems.push(`dialog: ${d.message()}`);
    void d.dismiss();
  });
  page.on('console', (m) => {
    if (m.type() === 'error' && !expected.some((re) => re.test(m.text()))) problems.push(`console: ${m.text()}`);
  });
  return { problems, expect: (re: RegExp) => expected.push(re) };
}

test('the portal in a real browser: endpoints, secret, test event, deliveries, replay, rotation, scopes, expiry, theming, framing', {
  skip,
  timeout: 170_000,
}, async (t) => {
  assert.ok(installed, `${INSTALL_HINT}; CI must not skip this test (looked for ${CHROMIUM})`);

  const saas = await startSaasApp();
  const allowedParent = `http://127.0.0.1:${saas.port}`;
  const c: TestCarteiro = await startCarteiro({ listen: true, env: { CARTEIRO_PORTAL_FRAME_ANCESTORS: `'self' ${allowedParent}` } });
  const receiver: TestReceiver = await startReceiver(() => ({ status: 200, body: RECEIVER_ANSWER, headers: { 'content-type': 'text/html' } }));
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await c.stop();
    await receiver.close();
    await saas.close();
  });

  const org = await createOrgWithKey(c, 'Acme SaaS');
  const asOrg = withKey(c, org.key);
  async function issue(userId: string, scope: 'read' | 'manage'): Promise<{ id: string; token: string; url: string }> {
    const res = await asOrg('POST', 'portal/sessions', { user_id: userId, scope });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    return res.body;
  }
  /** The session's url, on the address this test's Carteiro listens at, with extra parameters. */
  const portalUrl = (session: { url: string; token: string }, extra = '') => {
    const u = new URL(session.url);
    assert.equal(`${u.pathname}${u.search}`, `/portal?token=${session.token}`);
    return `${c.url}/portal?token=${encodeURIComponent(session.token)}${extra}`;
  };

  // ---- A manage session: open the portal --------------------------------------------------------
  const manage = await issue('customer-7', 'manage');
  const page = await browser.context.newPage();
  const w = watch(page);
  await page.goto(portalUrl(manage));
  await page.locator('#app').waitFor({ state: 'visible' });
  assert.ok(!page.url().includes(manage.token), `the token must leave the address bar: ${page.url()}`);
  assert.equal(new URL(page.url()).pathname, '/portal');
  assert.equal(await page.evaluate(() => localStorage.length), 0);
  assert.equal(await page.textContent('#who-user'), 'customer-7');
  assert.equal(await page.textContent('#who-scope'), 'can manage');
  await page.locator('#endpoints-empty').waitFor({ state: 'visible' });

  // ---- Create an endpoint, picking event types from the catalog ----------------------------------
  await page.click('#new-endpoint');
  await page.locator('#view-form').waitFor({ state: 'visible' });
  const registered = page.locator('#ep-events li').filter({ has: page.locator('input[value="user.registered"]') });
  await registered.waitFor();
  assert.match((await registered.textContent()) ?? '', /Novo usuário registrado/, 'the type is described');
  await registered.locator('details summary').click();
  assert.match((await registered.locator('details pre').textContent()) ?? '', /"email"/, 'an example of its data is shown');
  await page.fill('#ep-name', 'Acme orders');
  await page.fill('#ep-url', `${receiver.url}/hooks/acme`);
  await page.fill('#ep-description', 'Orders service');
  await registered.locator('input').check();
  await page.screenshot({ path: join(SHOTS, 'carteiro-portal-new-endpoint.png'), fullPage: true });
  await page.click('#ep-save');

  // Its secret, once.
  await page.locator('#secret-panel').waitFor({ state: 'visible' });
  const secret = (await page.textContent('#secret-value')) ?? '';
  assert.match(secret, /^whsec_/);
  await page.locator('#view-endpoint').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#detail-name'), 'Acme orders');
  const endpointId = await eventually(
    async () => {
      const listed = await withKey(c, manage.token)('GET', 'portal/endpoints');
      return listed.body.data[0]?.id as string | undefined;
    },
    { what: 'the endpoint to be listed' },
  );
  const stored = await withKey(c, manage.token)('GET', `portal/endpoints/${endpointId}`);
  assert.deepEqual(stored.body.events, ['user.registered']);
  assert.equal(stored.body.description, 'Orders service');
  assert.equal(JSON.stringify(stored.body).includes(secret), false, 'the secret is never shown again');
  await page.screenshot({ path: join(SHOTS, 'carteiro-portal-secret.png'), fullPage: true });
  await page.click('#secret-dismiss');
  assert.equal(await page.textContent('#secret-value'), '');
  assert.equal(await page.locator('#secret-panel').isHidden(), true);

  // ---- Send a test event: the receiver's exact answer is shown, as text ----------------------------
  await page.click('#detail-test');
  await page.locator('#test-status').filter({ hasText: 'HTTP 200' }).waitFor({ timeout: 60_000 });
  assert.equal(await page.textContent('#test-body'), RECEIVER_ANSWER);
  assert.equal(await page.locator('#test-result b').count(), 0, "the receiver's HTML stays text");
  assert.equal(receiver.received.length, 1);
  assert.ok(verifiesWithStandardWebhooks(secret, receiver.received[0]!), 'signed with the secret shown once');
  assert.equal(JSON.parse(receiver.received[0]!.body).type, 'webhook.test');
  await page.locator('#detail-attempts li').filter({ hasText: 'HTTP 200' }).first().waitFor();
  assert.match((await page.textContent('#detail-meta')) ?? '', /Delivered1Failed0/, "the endpoint's counters include the test");
  await page.screenshot({ path: join(SHOTS, 'carteiro-portal-endpoint.png'), fullPage: true });

  // ---- The delivery, its attempt, and a replay --------------------------------------------------
  await page.click('#test-delivery-link');
  await page.locator('#view-delivery').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#delivery-title'), 'webhook.test');
  assert.equal(await page.textContent('#delivery-status'), 'succeeded');
  await page.locator('#delivery-attempts li').first().waitFor();
  assert.equal(await page.locator('#delivery-attempts li').count(), 1);
  await page.locator('#delivery-attempts li summary').first().click();
  assert.equal(await page.locator('#delivery-attempts li pre').first().textContent(), RECEIVER_ANSWER);
  await page.click('#delivery-replay');
  await receiver.waitFor(2);
  await eventually(async () => (await page.locator('#delivery-attempts li').count()) === 2, {
    what: 'the replayed attempt in the delivery',
    timeoutMs: 60_000,
  });
  assert.ok(verifiesWithStandardWebhooks(secret, receiver.received[1]!));
  await page.screenshot({ path: join(SHOTS, 'carteiro-portal-delivery.png'), fullPage: true });

  // ---- Rotate the secret: a new one, shown once, signs the next delivery ----------------------------
  await page.goto(`${c.url}/portal#endpoints/${endpointId}`);
  await page.reload(); // the session is kept in this tab
  await page.locator('#view-endpoint').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#detail-name'), 'Acme orders');
  await page.click('#detail-rotate');
  await page.click('#confirm-ok');
  await page.locator('#secret-panel').waitFor({ state: 'visible' });
  const rotated = (await page.textContent('#secret-value')) ?? '';
  assert.match(rotated, /^whsec_/);
  assert.notEqual(rotated, secret);
  assert.match((await page.textContent('#secret-note')) ?? '', /previous secret keeps signing until/);
  await page.click('#secret-dismiss');
  await page.click('#detail-test');
  await page.locator('#test-status').filter({ hasText: 'HTTP 200' }).waitFor({ timeout: 60_000 });
  await receiver.waitFor(3);
  assert.ok(verifiesWithStandardWebhooks(rotated, receiver.received[2]!), 'signed with the rotated secret');

  // ---- Edit: a name that looks like HTML is shown as text ------------------------------------------
  await page.click('#detail-edit');
  await page.locator('#view-form').waitFor({ state: 'visible' });
  assert.equal(await page.inputValue('#ep-name'), 'Acme orders');
  assert.equal(await page.locator('#ep-events input[value="user.registered"]').isChecked(), true);
  await page.fill('#ep-name', HOSTILE_NAME);
  await page.click('#ep-save');
  await page.locator('#detail-name').filter({ hasText: 'onerror' }).waitFor();
  assert.equal(await page.textContent('#detail-name'), HOSTILE_NAME);
  await page.click('a[data-view="endpoints"]');
  await page.locator(`#endpoints-table tr[data-endpoint-id="${endpointId}"]`).filter({ hasText: 'onerror' }).waitFor();
  assert.equal(await page.locator('#app img:not(#brand-logo)').count(), 0, 'no element was made from the name');
  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);

  // ---- Pause and resume ------------------------------------------------------------------------
  await page.locator(`#endpoints-table tr[data-endpoint-id="${endpointId}"]`).click();
  await page.locator('#detail-status').filter({ hasText: 'active' }).waitFor();
  await page.click('#detail-pause');
  await page.locator('#detail-status').filter({ hasText: 'paused' }).waitFor();
  assert.equal((await withKey(c, manage.token)('GET', `portal/endpoints/${endpointId}`)).body.is_active, false);
  await page.click('#detail-pause');
  await page.locator('#detail-status').filter({ hasText: 'active' }).waitFor();
  assert.equal((await withKey(c, manage.token)('GET', `portal/endpoints/${endpointId}`)).body.is_active, true);

  // ---- Recover since a time ----------------------------------------------------------------------
  await page.fill('#recover-since', '2020-01-01T00:00');
  await page.click('#recover-submit');
  await page
    .locator('.toast')
    .filter({ hasText: /queued again/ })
    .waitFor();

  // ---- Deliveries: all of them, with the endpoint's name as text ------------------------------------
  await page.click('a[data-view="deliveries"]');
  await eventually(async () => (await page.locator('#deliveries-table tbody tr').count()) === 2, { what: 'two test deliveries listed' });
  assert.match((await page.locator('#deliveries-table tbody tr').first().textContent()) ?? '', /webhook\.test.*onerror/);
  await page.selectOption('#filter-status', 'failed');
  await page.locator('#deliveries-empty').waitFor({ state: 'visible' });
  await page.selectOption('#filter-status', '');
  await page.locator('#deliveries-table tbody tr').nth(1).waitFor();
  await page.screenshot({ path: join(SHOTS, 'carteiro-portal-deliveries.png'), fullPage: true });
  assert.deepEqual(w.problems, [], 'the manage page logged errors');

  // ---- A read-scope session: everything visible, no write control --------------------------------------
  const read = await issue('customer-7', 'read');
  const readPage = await browser.context.newPage();
  const rw = watch(readPage);
  await readPage.goto(portalUrl(read));
  await readPage.locator(`#endpoints-table tr[data-endpoint-id="${endpointId}"]`).waitFor();
  assert.equal(await readPage.textContent('#who-scope'), 'read only');
  assert.equal(await readPage.locator('[data-write]:visible').count(), 0, 'no write control on the list');
  await readPage.locator(`#endpoints-table tr[data-endpoint-id="${endpointId}"]`).click();
  await readPage.locator('#view-endpoint').waitFor({ state: 'visible' });
  await readPage.locator('#detail-attempts li').first().waitFor();
  assert.equal(await readPage.locator('[data-write]:visible').count(), 0, 'no write control on the endpoint');
  assert.equal(
    await readPage
      .locator('button:visible')
      .filter({ hasText: /Send test|Edit|Pause|Rotate|Delete|Recover|New endpoint/ })
      .count(),
    0,
  );
  await readPage.click('#detail-deliveries');
  await readPage.locator('#deliveries-table tbody tr').first().click();
  await readPage.locator('#view-delivery').waitFor({ state: 'visible' });
  assert.equal(await readPage.locator('#delivery-replay').isVisible(), false);
  assert.equal(await readPage.locator('#delivery-replay').isDisabled(), true);
  await readPage.goto(`${c.url}/portal#new`);
  await readPage.locator('#view-endpoints').waitFor({ state: 'visible' });
  assert.equal(await readPage.locator('#view-form').isVisible(), false, 'the form does not open for a read session');
  // And the API refuses anyway.
  rw.expect(/status of 403/);
  const refused = await readPage.evaluate(async (id) => {
    const token = sessionStorage.getItem('carteiro.portal.token');
    const res = await fetch(`/api/webhooks/portal/endpoints/${id}/disable`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    return res.status;
  }, endpointId);
  assert.equal(refused, 403);
  await readPage.screenshot({ path: join(SHOTS, 'carteiro-portal-read-only.png'), fullPage: true });

  // ---- Another user of the same organization sees none of it, whatever the URL names ------------------
  const other = await browser.context.newPage();
  const ow = watch(other);
  ow.expect(/status of 404/);
  await other.goto(portalUrl(await issue('customer-8', 'manage')));
  await other.locator('#endpoints-empty').waitFor({ state: 'visible' });
  assert.equal(await other.textContent('#who-user'), 'customer-8');
  await other.goto(`${c.url}/portal#endpoints/${endpointId}`);
  await other
    .locator('.toast')
    .filter({ hasText: /not found/i })
    .waitFor();
  assert.equal(await other.locator('#view-endpoint').isVisible(), false);
  assert.doesNotMatch((await other.locator('#app').textContent()) ?? '', /onerror|hooks\/acme/, "nothing of the other user's endpoint is shown");
  await other.click('a[data-view="deliveries"]');
  await other.locator('#deliveries-empty').waitFor({ state: 'visible' });
  assert.deepEqual(ow.problems, []);
  await other.close();

  // ---- Revoked: the page says the session has expired, and forgets the token ---------------------------
  assert.equal((await asOrg('DELETE', `portal/sessions/${read.id}`)).status, 200);
  rw.expect(/status of 401/);
  await readPage.click('a[data-view="deliveries"]');
  await readPage.locator('#ended').waitFor({ state: 'visible' });
  assert.equal(await readPage.textContent('#ended-title'), 'This session has expired');
  assert.equal(await readPage.locator('#app').isVisible(), false);
  assert.equal(await readPage.evaluate(() => sessionStorage.getItem('carteiro.portal.token')), null);
  await readPage.screenshot({ path: join(SHOTS, 'carteiro-portal-expired.png') });
  assert.deepEqual(rw.problems, [], 'the read-only page logged errors');

  // ---- Expired (by the ledger's clock), and no token at all ----------------------------------------------
  const old = await issue('customer-7', 'manage');
  await c.services.ledger
    .sql`UPDATE portal_sessions SET created_at = now() - interval '2 hours', expires_at = now() - interval '1 second' WHERE id = ${old.id}`;
  const expiredPage = await browser.context.newPage();
  const ew = watch(expiredPage);
  ew.expect(/status of 401/);
  await expiredPage.goto(portalUrl(old));
  await expiredPage.locator('#ended').waitFor({ state: 'visible' });
  assert.equal(await expiredPage.textContent('#ended-title'), 'This session has expired');
  assert.ok(!expiredPage.url().includes(old.token));
  const blank = await browser.context.newPage();
  await blank.goto(`${c.url}/portal`);
  await blank.locator('#ended').waitFor({ state: 'visible' });
  assert.equal(await blank.textContent('#ended-title'), 'No session');
  assert.deepEqual(ew.problems, []);
  await expiredPage.close();
  await blank.close();

  // ---- Theming: dark mode, a primary colour, a logo; malicious values ignored ------------------------
  const themed = await browser.context.newPage();
  const tw = watch(themed);
  const logo = `${allowedParent}/logo.svg`;
  await themed.goto(portalUrl(await issue('customer-7', 'manage'), `&theme=dark&primary=%23ff6600&logo=${encodeURIComponent(logo)}`));
  await themed.locator('#app').waitFor({ state: 'visible' });
  assert.equal(await themed.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(11, 16, 32)');
  assert.equal(await themed.evaluate(() => getComputedStyle(document.getElementById('new-endpoint')!).backgroundColor), 'rgb(255, 102, 0)');
  assert.equal(await themed.getAttribute('#brand-logo', 'src'), logo);
  await eventually(() => themed.evaluate(() => (document.getElementById('brand-logo') as HTMLImageElement).naturalWidth === 32), { what: 'the logo to load' });
  assert.match(themed.url(), /theme=dark/, 'the theme stays in the URL, the token does not');
  assert.ok(!themed.url().includes('token='));
  await themed.screenshot({ path: join(SHOTS, 'carteiro-portal-dark.png'), fullPage: true });
  assert.deepEqual(tw.problems, []);

  const hostile = await browser.context.newPage();
  const hw = watch(hostile);
  const badParams = [
    `theme=${encodeURIComponent('dark"><script>window.__pwned=2</script>')}`,
    `primary=${encodeURIComponent('#ff6600;background:url(https://evil.example/x)')}`,
    `logo=${encodeURIComponent('javascript:window.__pwned=3')}`,
  ].join('&');
  await hostile.goto(portalUrl(await issue('customer-7', 'manage'), `&${badParams}`));
  await hostile.locator('#app').waitFor({ state: 'visible' });
  assert.equal(await hostile.evaluate(() => document.documentElement.getAttribute('data-theme')), 'light');
  assert.equal(await hostile.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(246, 247, 249)');
  assert.equal(
    await hostile.evaluate(() => getComputedStyle(document.getElementById('new-endpoint')!).backgroundColor),
    'rgb(37, 99, 235)',
    'the malicious primary is ignored',
  );
  assert.equal(await hostile.evaluate(() => document.documentElement.style.length), 0);
  assert.equal(await hostile.locator('#brand-logo').isVisible(), false);
  assert.equal(await hostile.getAttribute('#brand-logo', 'src'), null);
  assert.equal(await hostile.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
  assert.deepEqual(hw.problems, []);
  await hostile.close();

  // ---- Framed by the SaaS's app (an allowed ancestor), and refused by any other ---------------------
  const framed = await browser.context.newPage();
  const fw = watch(framed);
  const embedSrc = portalUrl(await issue('customer-7', 'read'));
  await framed.goto(`${allowedParent}/embed?src=${encodeURIComponent(embedSrc)}`);
  const frame = framed.frameLocator('#portal');
  await frame.locator(`#endpoints-table tr[data-endpoint-id="${endpointId}"]`).waitFor();
  assert.equal(await frame.locator('#who-scope').textContent(), 'read only');
  await framed.screenshot({ path: join(SHOTS, 'carteiro-portal-embedded.png') });
  assert.deepEqual(fw.problems, []);

  const stranger = await browser.context.newPage();
  const sw = watch(stranger);
  sw.expect(/frame-ancestors|Refused to frame/);
  const refusedFrame = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the browser did not report the refused frame')), 30_000);
    stranger.on('console', (m) => {
      if (!/frame-ancestors|Refused to frame/.test(m.text())) return;
      clearTimeout(timer);
      resolve(m.text());
    });
  });
  // Another origin (localhost is not 127.0.0.1 to the browser) frames the same portal URL.
  await stranger.goto(`http://localhost:${saas.port}/embed?src=${encodeURIComponent(portalUrl(await issue('customer-7', 'read')))}`);
  assert.match(await refusedFrame, /frame-ancestors/);
  assert.equal(await stranger.frameLocator('#portal').locator('#app').count(), 0);
  assert.deepEqual(sw.problems, []);

  // ---- Delete ----------------------------------------------------------------------------------
  await page.click('a[data-view="endpoints"]');
  await page.locator(`#endpoints-table tr[data-endpoint-id="${endpointId}"]`).click();
  await page.locator('#view-endpoint').waitFor({ state: 'visible' });
  await page.click('#detail-delete');
  await page.click('#confirm-ok');
  await page.locator('#endpoints-empty').waitFor({ state: 'visible' });
  assert.equal((await withKey(c, manage.token)('GET', `portal/endpoints/${endpointId}`)).status, 404);
  assert.deepEqual(w.problems, [], 'the manage page logged errors');
});
