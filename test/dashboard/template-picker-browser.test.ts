/**
 * Choosing a transformation template when creating an endpoint, in a real browser (Debian's chromium
 * driven by playwright-core), against a real Carteiro and a loopback receiver: in the dashboard's
 * new-endpoint form and in the portal's, picking a template fills the transformation with its code
 * (as GET …/transformation-templates lists it), which the user may edit; created unedited, the
 * endpoint's transformation is exactly the template's code, labelled with its name, and what the
 * receiver gets is the template's message. In the portal, editing the endpoint shows the template and
 * its code, and choosing None removes the transformation.
 *
 * Needs /usr/bin/chromium (test/support/chromium.ts): skipped with that hint when it is missing,
 * except in CI (CI set), where that is a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { eventually, startCarteiro, TEST_ADMIN_KEY, trigger, type TestCarteiro } from '../support/carteiro.ts';
import { startReceiver, type TestReceiver } from '../support/receiver.ts';
import { CHROMIUM, INSTALL_HINT, installed, launch, SHOTS, skipWithoutChromium as skip } from '../support/chromium.ts';
import { createOrgWithKey, withKey } from '../security/tenancy-helpers.ts';

type Template = { name: string; title: string; source: string };

/** What the page must never do: throw, or log an error. */
function watch(page: Page): string[] {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  return problems;
}

test("dashboard: a template picked in the new-endpoint form becomes the endpoint's transformation", { skip, timeout: 120_000 }, async (t) => {
  assert.ok(installed, `${INSTALL_HINT}; CI must not skip this test (looked for ${CHROMIUM})`);
  const c: TestCarteiro = await startCarteiro({ listen: true });
  const receiver: TestReceiver = await startReceiver();
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await c.stop();
    await receiver.close();
  });
  const templates = (await c.request('GET', 'transformation-templates')).body.data as Template[];
  const slack = templates.find((x) => x.name === 'slack') as Template;
  const telegram = templates.find((x) => x.name === 'telegram') as Template;

  const page = await browser.context.newPage();
  const problems = watch(page);
  await page.goto(`${c.url}/dashboard#endpoints`);
  await page.fill('#login-key', TEST_ADMIN_KEY);
  await page.click('#login-submit');
  await page.locator('#view-endpoints').waitFor({ state: 'visible' });
  await page.locator('#endpoints-empty').waitFor({ state: 'visible' });

  await page.click('#new-endpoint');
  await page.locator('#endpoint-create').waitFor({ state: 'visible' });
  // The picker lists every template by its title.
  await page.locator('#ep-template option[value="slack"]').waitFor({ state: 'attached' });
  assert.deepEqual(await page.locator('#ep-template option').allTextContents(), ['None', ...templates.map((x) => x.title)]);
  assert.equal(await page.inputValue('#ep-transformation'), '');

  // A template with an option says what to fill in; None takes its untouched code away again.
  await page.selectOption('#ep-template', 'telegram');
  assert.equal(await page.inputValue('#ep-transformation'), telegram.source);
  assert.match((await page.textContent('#ep-template-hint')) ?? '', /chat_id/);
  await page.selectOption('#ep-template', '');
  assert.equal(await page.inputValue('#ep-transformation'), '');
  assert.equal(await page.locator('#ep-template-hint').isHidden(), true);

  await page.fill('#ep-name', 'alerts');
  await page.fill('#ep-url', `${receiver.url}/slack`);
  await page.fill('#ep-events', 'user.*');
  await page.selectOption('#ep-template', 'slack');
  assert.equal(await page.inputValue('#ep-transformation'), slack.source, "the template's code, to edit");
  await page.screenshot({ path: join(SHOTS, 'carteiro-dashboard-new-endpoint-template.png'), fullPage: true });
  await page.click('#ep-create');

  // The secret, once; the endpoint listed; its transformation the template's code, labelled.
  await page.locator('#ep-secret').waitFor({ state: 'visible' });
  assert.match((await page.textContent('#ep-secret-value')) ?? '', /^whsec_/);
  await page.locator('#endpoints-table tbody tr').filter({ hasText: 'alerts' }).waitFor();
  const listed = (await c.request('GET', 'endpoints')).body.data as { id: string; name: string }[];
  const id = listed.find((e) => e.name === 'alerts')?.id as string;
  const stored = (await c.request('GET', `endpoints/${id}`)).body;
  assert.equal(stored.transformation, slack.source);
  assert.equal(stored.template, 'slack');
  assert.deepEqual(stored.events, ['user.*']);
  await page.click('#ep-secret-done');
  assert.equal(await page.locator('#endpoint-create').isHidden(), true);
  assert.equal(await page.textContent('#ep-secret-value'), '', 'the secret is gone from the page');

  // What the receiver gets is the Slack message the template makes.
  await trigger(c, { event_type: 'user.registered', data: { user_id: 'u-1', email: 'ana@example.com', name: 'Ana' } });
  const [got] = await receiver.waitFor(1);
  const body = JSON.parse(got?.body ?? '{}');
  assert.equal(typeof body.text, 'string');
  assert.ok(Array.isArray(body.blocks), got?.body);

  // Code that does not compile is refused with the API's message, and nothing is created.
  await page.click('#new-endpoint');
  await page.fill('#ep-name', 'broken');
  await page.fill('#ep-url', `${receiver.url}/broken`);
  await page.selectOption('#ep-template', 'passthrough');
  await page.fill('#ep-transformation', 'function handler(webhook) {');
  await page.click('#ep-create');
  await page.locator('#ep-error').filter({ hasText: 'transformation' }).waitFor();
  assert.equal(((await c.request('GET', 'endpoints')).body.data as unknown[]).length, 1);
  // The browser logs the refused request itself: that one is expected.
  assert.deepEqual(
    problems.filter((p) => !/status of 422/.test(p)),
    [],
  );
});

test('portal: a template picked when creating an endpoint becomes its transformation; editing shows it, None removes it', {
  skip,
  timeout: 120_000,
}, async (t) => {
  assert.ok(installed, `${INSTALL_HINT}; CI must not skip this test (looked for ${CHROMIUM})`);
  const c: TestCarteiro = await startCarteiro({ listen: true });
  const receiver: TestReceiver = await startReceiver();
  const browser = await launch();
  t.after(async () => {
    await browser.close();
    await c.stop();
    await receiver.close();
  });
  const org = await createOrgWithKey(c, 'Acme SaaS');
  const session = (await withKey(c, org.key)('POST', 'portal/sessions', { user_id: 'customer-9', scope: 'manage' })).body as { token: string };
  const asUser = withKey(c, session.token);
  const templates = (await asUser('GET', 'portal/transformation-templates')).body.data as Template[];
  const discord = templates.find((x) => x.name === 'discord') as Template;
  assert.equal(discord.source, ((await c.request('GET', 'transformation-templates')).body.data as Template[]).find((x) => x.name === 'discord')?.source);

  const page = await browser.context.newPage();
  const problems = watch(page);
  await page.goto(`${c.url}/portal?token=${encodeURIComponent(session.token)}`);
  await page.locator('#endpoints-empty').waitFor({ state: 'visible' });
  await page.click('#new-endpoint');
  await page.locator('#view-form').waitFor({ state: 'visible' });
  await page.locator('#ep-template option[value="discord"]').waitFor({ state: 'attached' });
  await page.fill('#ep-name', 'Team chat');
  await page.fill('#ep-url', `${receiver.url}/discord`);
  await page.check('#ep-all-events');
  await page.selectOption('#ep-template', 'discord');
  assert.equal(await page.inputValue('#ep-transformation'), discord.source);
  assert.match((await page.textContent('#ep-template-hint')) ?? '', /Discord/);
  await page.screenshot({ path: join(SHOTS, 'carteiro-portal-new-endpoint-template.png'), fullPage: true });
  await page.click('#ep-save');

  await page.locator('#secret-panel').waitFor({ state: 'visible' });
  await page.locator('#view-endpoint').waitFor({ state: 'visible' });
  const id = await eventually(async () => (await asUser('GET', 'portal/endpoints')).body.data[0]?.id as string | undefined, {
    what: 'the endpoint to be listed',
  });
  const stored = (await asUser('GET', `portal/endpoints/${id}`)).body;
  assert.equal(stored.transformation, discord.source);
  assert.equal(stored.template, 'discord');
  assert.match((await page.textContent('#detail-meta')) ?? '', /from the discord template/);
  await page.click('#secret-dismiss');

  // Edit: the template and its code are shown; None (the code untouched) removes the transformation.
  await page.click('#detail-edit');
  await page.locator('#view-form').waitFor({ state: 'visible' });
  assert.equal(await page.inputValue('#ep-template'), 'discord');
  assert.equal(await page.inputValue('#ep-transformation'), discord.source);
  await page.selectOption('#ep-template', '');
  assert.equal(await page.inputValue('#ep-transformation'), '');
  await page.click('#ep-save');
  await page.locator('#view-endpoint').waitFor({ state: 'visible' });
  await eventually(async () => (await asUser('GET', `portal/endpoints/${id}`)).body.transformation === null, { what: 'the transformation removed' });
  assert.equal((await asUser('GET', `portal/endpoints/${id}`)).body.template, null);
  assert.deepEqual(problems, []);
});
