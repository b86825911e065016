/**
 * The dashboard manages, in a real browser (Debian's chromium driven by playwright-core) against a
 * real Carteiro and a loopback receiver: an endpoint created, opened from its row, edited (and an
 * edit the API refuses shows its message), sent a test event whose answer from the receiver is
 * shown, its secret rotated (the new one signs), disabled and enabled; an organization and a key
 * created, the key's last use shown, the key revoked; a custom event type registered, after a bad
 * schema is refused beside its field; the audit log filtered by action, actor and time; a portal
 * session issued with a theme, and the portal opened from its link, themed.
 * Screenshots go to CARTEIRO_SCREENSHOT_DIR or /tmp (carteiro-dashboard-manage-*.png).
 *
 * Needs /usr/bin/chromium (test/support/chromium.ts): skipped with that hint when it is missing,
 * except in CI (CI set), where that is a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { Webhook } from 'standardwebhooks';
import { eventually, startCarteiro, TEST_ADMIN_KEY, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { CHROMIUM, INSTALL_HINT, installed, launch, SHOTS, skipWithoutChromium as skip } from '../support/chromium.ts';
import { withKey } from '../security/tenancy-helpers.ts';
import { startFakeN8n, type FakeN8n } from '../n8n-fake/fake-n8n.ts';

/** A 32 × 32 logo as a data: image, as a session's theme may carry it. */
const LOGO =
  'data:image/svg+xml;base64,' +
  Buffer.from(
    '<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32"><rect width="32" height="32" rx="8" fill="#ff6600"/><path d="M9 16l5 5 9-10" stroke="#fff" stroke-width="3" fill="none"/></svg>',
  ).toString('base64');

/** What the page must never do: throw, or log an error (but the refusals the test asks for, by status). */
function watch(page: Page): { problems: string[]; expect(status: number): void } {
  const problems: string[] = [];
  const expected = new Set<number>();
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (m) => {
    const status = /status of (\d{3})/.exec(m.text());
    if (status && expected.has(Number(status[1]))) return;
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  return { problems, expect: (status) => void expected.add(status) };
}

/** A screenshot of the page as it stands, without the toasts of earlier steps. */
async function shot(page: Page, name: string, fullPage = true): Promise<void> {
  await page.evaluate(() => document.getElementById('toasts')?.replaceChildren());
  await page.screenshot({ path: join(SHOTS, `carteiro-dashboard-manage-${name}.png`), fullPage });
}

async function signIn(page: Page, url: string): Promise<void> {
  await page.goto(url);
  await page.fill('#login-key', TEST_ADMIN_KEY);
  await page.click('#login-submit');
  await page.locator('#app').waitFor({ state: 'visible' });
}

test('dashboard manages: endpoints, keys, event types, the audit log and portal sessions', { skip, timeout: 170_000 }, async (t) => {
  assert.ok(installed, `${INSTALL_HINT}; CI must not skip this test (looked for ${CHROMIUM})`);
  // n8n's API and webhooks on loopback (test/n8n-fake): what discovery reads and sync delivers to.
  const n8n: FakeN8n = await startFakeN8n();
  const c: TestCarteiro = await startCarteiro({ listen: true, env: { N8N_WEBHOOK_URL: n8n.url, N8N_API_URL: `${n8n.url}/api/v1`, N8N_API_KEY: n8n.apiKey } });
  const receiver: TestReceiver = await startReceiver(() => ({
    status: 200,
    body: '{"received":true,"by":"orders-service"}',
    headers: { 'content-type': 'application/json' },
  }));
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await c.stop();
    await receiver.close();
    await n8n.close();
  });
  const page = await browser.context.newPage();
  const w = watch(page);
  await signIn(page, `${c.url}/dashboard#endpoints`);

  // ---- An endpoint: created, opened from its row ------------------------------------------------------
  await page.locator('#endpoints-empty').waitFor({ state: 'visible' });
  await page.click('#new-endpoint');
  await page.fill('#ep-name', 'orders');
  await page.fill('#ep-url', `${receiver.url}/hooks/orders`);
  await page.fill('#ep-events', 'order.*');
  await page.click('#ep-create');
  await page.locator('#ep-secret').waitFor({ state: 'visible' });
  await page.click('#ep-secret-done');
  const row = page.locator('#endpoints-table tbody tr').filter({ hasText: 'orders' });
  await row.click();
  await page.locator('#endpoint-detail').waitFor({ state: 'visible' });
  assert.equal(await page.textContent('#epd-name'), 'orders');
  const id = (await row.getAttribute('data-endpoint-id')) as string;
  assert.equal(new URL(page.url()).hash, `#endpoints/${id}`);

  // ---- Edited; a value the API refuses shows its message ---------------------------------------------
  await page.click('#epd-edit');
  await page.fill('#epd-f-events', 'user.*, payment.*');
  await page.fill('#epd-f-description', 'The orders service');
  await page.fill('#epd-f-rate', '50');
  await page.fill('#epd-f-inflight', '4');
  await page.fill('#epd-f-timeout', '10');
  w.expect(422);
  await page.click('#epd-save');
  await page.locator('#epd-error').filter({ hasText: 'timeout_ms' }).waitFor();
  await page.fill('#epd-f-timeout', '1500');
  await page.click('#epd-save');
  await page.locator('#epd-form').waitFor({ state: 'hidden' });
  const edited = (await c.request('GET', `endpoints/${id}`)).body;
  assert.deepEqual(edited.events, ['user.*', 'payment.*']);
  assert.equal(edited.description, 'The orders service');
  assert.equal(edited.rate_limit_per_second, 50);
  assert.equal(edited.max_in_flight, 4);
  assert.equal(edited.timeout_ms, 1500);
  assert.equal(edited.max_retries, null, "an empty field is the server's default");
  assert.match((await page.textContent('#epd-meta')) ?? '', /50 \/ s/);

  // ---- A test event: what the receiver answered ------------------------------------------------------
  await page.click('#epd-test');
  await page.locator('#epd-test-status').filter({ hasText: 'HTTP 200' }).waitFor({ timeout: 60_000 });
  assert.equal(await page.textContent('#epd-test-body'), '{"received":true,"by":"orders-service"}');
  assert.match((await page.textContent('#epd-test-summary')) ?? '', /accepted the test event in [\d.,]+ ms/);
  const [first] = await receiver.waitFor(1);
  assert.equal(JSON.parse(first?.body ?? '{}').type, 'webhook.test');
  await shot(page, 'endpoint');

  // ---- The secret rotated: shown once, and it signs the next delivery --------------------------------
  await page.click('#epd-rotate');
  await page.click('#confirm-ok');
  await page.locator('#epd-secret').waitFor({ state: 'visible' });
  const secret = (await page.textContent('#epd-secret-value')) as string;
  assert.match(secret, /^whsec_/);
  await page.click('#epd-test');
  const [, second] = await receiver.waitFor(2);
  assert.ok(second);
  const webhookHeaders = {
    'webhook-id': second.headers['webhook-id'],
    'webhook-timestamp': second.headers['webhook-timestamp'],
    'webhook-signature': second.headers['webhook-signature'],
  };
  assert.doesNotThrow(() => new Webhook(secret).verify(second.body, webhookHeaders as Record<string, string>), 'the new secret signs');
  await page.locator('#epd-test-status').filter({ hasText: 'HTTP 200' }).waitFor({ timeout: 60_000 });
  await page.click('#epd-secret-done');
  assert.equal(await page.textContent('#epd-secret-value'), '', 'the secret is gone from the page');

  // ---- Disabled and enabled from its details -------------------------------------------------------------
  await page.click('#epd-toggle');
  await page.click('#confirm-ok');
  await page.locator('#epd-status').filter({ hasText: 'disabled' }).waitFor();
  assert.equal((await c.request('GET', `endpoints/${id}`)).body.is_active, false);
  await page.click('#epd-toggle');
  await page.locator('#epd-status').filter({ hasText: 'active' }).waitFor();
  assert.equal((await c.request('GET', `endpoints/${id}`)).body.is_active, true);

  // ---- An organization and a key: created, used, revoked ------------------------------------------------
  await page.click('a[data-view="organizations"]');
  await page.fill('#org-name', 'Acme Ltda');
  await page.click('#org-create');
  await page.locator('#org-detail-name').filter({ hasText: 'Acme Ltda' }).waitFor();
  const orgId = (await page.textContent('#org-detail-id')) as string;
  await page.fill('#key-name', 'ci');
  await page.click('#key-create');
  await page.locator('#key-secret').waitFor({ state: 'visible' });
  const key = (await page.textContent('#key-secret-value')) as string;
  assert.match(key, /^ck_/);
  const keyRow = page.locator('#keys-table tbody tr').filter({ hasText: 'ci' });
  await keyRow.locator('.key-last-used').filter({ hasText: 'never' }).waitFor();
  assert.equal((await withKey(c, key)('GET', 'endpoints')).status, 200);
  await eventually(
    async () => {
      const keys = (await c.request('GET', `organizations/${orgId}/keys`)).body.data as { name: string; last_used_at: string | null }[];
      return keys.find((k) => k.name === 'ci')?.last_used_at;
    },
    { what: "the key's last use recorded" },
  );
  await page.locator(`#orgs-table tr[data-org-id="${orgId}"]`).click();
  await keyRow.locator('.key-last-used time').waitFor();
  assert.equal(await page.locator('#key-secret').isHidden(), true, 'the key is shown once');
  await shot(page, 'keys');
  await keyRow.getByRole('button', { name: 'Revoke' }).click();
  await page.click('#confirm-ok');
  await keyRow.locator('.badge').filter({ hasText: 'revoked' }).waitFor();
  assert.equal((await withKey(c, key)('GET', 'endpoints')).status, 401);

  // ---- A custom event type; a bad schema refused beside its field -----------------------------------------
  await page.click('a[data-view="types"]');
  await page.locator('#types-table tr[data-type="user.registered"]').waitFor();
  await page.fill('#type-name', 'order.shipped');
  await page.fill('#type-schema', '{"type": "object",');
  await page.click('#type-register');
  await page.locator('.field-error[data-for="schema"]').filter({ hasText: 'not JSON' }).waitFor();
  w.expect(400);
  await page.fill('#type-schema', '{"type": "object", "properties": {"carrier": {"type": "strin"}}}');
  await page.click('#type-register');
  await page.locator('.field-error[data-for="schema"]').filter({ hasText: 'schema' }).filter({ hasNotText: 'not JSON' }).waitFor();
  assert.equal(await page.locator('#type-form .form-error').isHidden(), true, 'the message is beside the field');
  assert.equal(
    ((await c.request('GET', 'event-types')).body.data as { name: string }[]).some((x) => x.name === 'order.shipped'),
    false,
  );
  await shot(page, 'type-error');
  await page.fill('#type-description', 'An order left the warehouse');
  await page.fill(
    '#type-schema',
    JSON.stringify({
      type: 'object',
      required: ['order_id'],
      properties: { order_id: { type: 'string' }, carrier: { type: 'string' } },
      examples: [{ order_id: 'o_1001', carrier: 'Correios' }],
    }),
  );
  await page.click('#type-register');
  const typeRow = page.locator('#types-table tr[data-type="order.shipped"]');
  await typeRow.waitFor();
  assert.equal(await page.locator('.field-error[data-for="schema"]').isHidden(), true);
  assert.match((await typeRow.textContent()) ?? '', /An order left the warehouse.*custom/);
  await typeRow.locator('summary').filter({ hasText: 'Example data' }).click();
  assert.match((await typeRow.locator('pre').first().textContent()) ?? '', /"carrier": "Correios"/);
  await typeRow.scrollIntoViewIfNeeded();
  await shot(page, 'types', false);

  // ---- n8n: workflows discovered from n8n's API, listed, and synced to ---------------------------------------
  n8n.addWebhookWorkflow({ name: 'Order sync', path: 'order-sync' });
  await page.click('a[data-view="n8n"]');
  await page.locator('#n8n-empty').waitFor({ state: 'visible' });
  await page.click('#n8n-discover');
  await page.locator('#n8n-discover-result').filter({ hasText: 'Discovered' }).waitFor();
  const workflowRow = page.locator('#n8n-table tbody tr').filter({ hasText: 'Order sync' });
  await workflowRow.waitFor();
  await page.fill('#n8n-sync-type', 'order-sync');
  await page.fill('#n8n-sync-data', '{"order_id": "o_1001"}');
  await page.click('#n8n-sync');
  await page.locator('#n8n-sync-result').filter({ hasText: '"delivered"' }).waitFor({ timeout: 60_000 });
  const [hit] = await n8n.waitForHits('order-sync', 1);
  assert.match(hit?.body ?? '', /o_1001/);
  await workflowRow.filter({ hasText: '1 ok' }).waitFor();
  await shot(page, 'n8n');

  // ---- The audit log, filtered by action, actor and time --------------------------------------------------
  await page.click('a[data-view="audit"]');
  await page.locator('#audit-table tbody tr').first().waitFor();
  await page.fill('#audit-action', 'organizations.keys.revoke');
  await page.click('#audit-apply');
  await eventually(async () => (await page.locator('#audit-table tbody tr').count()) === 1, { what: "only the key's revocation listed" });
  assert.match(
    (await page.locator('#audit-table tbody tr').textContent()) ?? '',
    new RegExp(`admin key.*organizations\\.keys\\.revoke.*DELETE /api/webhooks/organizations/${orgId}/keys/`),
  );
  await page.fill('#audit-action', '');
  await page.selectOption('#audit-actor', 'organization');
  await page.click('#audit-apply');
  await page.locator('#audit-empty').waitFor({ state: 'visible' }); // the organization key only read
  await page.selectOption('#audit-actor', 'admin');
  await page.fill('#audit-since', '2099-01-01T00:00:00');
  await page.click('#audit-apply');
  await page.locator('#audit-empty').waitFor({ state: 'visible' });
  await page.fill('#audit-since', '2000-01-01T00:00:00');
  await page.fill('#audit-action', 'endpoints.update');
  await page.click('#audit-apply');
  await eventually(async () => (await page.locator('#audit-table tbody tr').count()) === 1, { what: "the endpoint's one accepted edit" });
  await shot(page, 'audit');

  // ---- A portal session, with a theme; the portal opened from its link -------------------------------------
  await page.click('a[data-view="portal"]');
  await page.fill('#portal-user', 'customer-42');
  await page.selectOption('#portal-scope', 'manage');
  await page.selectOption('#portal-theme', 'dark');
  await page.fill('#portal-primary', 'orange');
  await page.click('#portal-issue');
  w.expect(422);
  await page.locator('.field-error[data-for="theme.primary_color"]').filter({ hasText: 'theme.primary_color: must be a #rrggbb colour' }).waitFor();
  assert.equal(((await c.request('GET', 'portal/sessions')).body.data as unknown[]).length, 0, 'nothing issued');
  await page.fill('#portal-primary', '#ff6600');
  await page.fill('#portal-logo', LOGO);
  await page.click('#portal-issue');
  await page.locator('#portal-issued').waitFor({ state: 'visible' });
  const link = (await page.getAttribute('#portal-open', 'href')) as string;
  assert.match(link, /\/portal\?token=cp_sess_[\w-]+$/, 'the theme goes with the session, not in the link');
  await page.locator('#sessions-table tbody tr').filter({ hasText: 'customer-42' }).locator('.badge').filter({ hasText: 'active' }).waitFor();
  await shot(page, 'portal');
  const [portal] = await Promise.all([browser.context.waitForEvent('page'), page.click('#portal-open')]);
  const pw = watch(portal);
  await portal.locator('#app').waitFor({ state: 'visible' });
  assert.equal(await portal.textContent('#who-user'), 'customer-42');
  assert.equal(await portal.evaluate(() => getComputedStyle(document.body).backgroundColor), 'rgb(11, 16, 32)', 'dark');
  assert.equal(
    await portal.evaluate(() => getComputedStyle(document.getElementById('new-endpoint')!).backgroundColor),
    'rgb(255, 102, 0)',
    'the primary colour',
  );
  assert.equal(await portal.getAttribute('#brand-logo', 'src'), LOGO);
  await eventually(() => portal.evaluate(() => (document.getElementById('brand-logo') as HTMLImageElement).naturalWidth === 32), { what: 'the logo to load' });
  assert.ok(!portal.url().includes('token='), 'the token leaves the address bar');
  await portal.screenshot({ path: join(SHOTS, 'carteiro-dashboard-manage-portal-themed.png'), fullPage: true });
  await page.click('#portal-issued-done');
  assert.equal(await page.textContent('#portal-issued-url'), '');

  assert.deepEqual(w.problems, []);
  assert.deepEqual(pw.problems, []);
});
