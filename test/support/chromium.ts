/**
 * Debian's chromium driven by playwright-core, for the browser tests (the dashboard's and the
 * portal's): where it is, whether a test runs without it, and a fresh profile per launch.
 *
 * Needs /usr/bin/chromium (`apt-get install -y chromium`): a test is skipped with that hint when it is
 * missing, except in CI (CI set), where that is a failure.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';

export const CHROMIUM = process.env.CARTEIRO_CHROMIUM_PATH || '/usr/bin/chromium';
export const INSTALL_HINT = 'chromium is not installed (needs /usr/bin/chromium: apt-get install -y chromium)';
export const installed = existsSync(CHROMIUM);
/** The `skip` option of a browser test. */
export const skipWithoutChromium = !installed && !process.env['CI'] ? `${INSTALL_HINT}; skipped outside CI` : false;
/** Where screenshots go (CARTEIRO_SCREENSHOT_DIR, else the system's temporary folder). */
export const SHOTS = process.env.CARTEIRO_SCREENSHOT_DIR || tmpdir();

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launch(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const profile = mkdtempSync(join(tmpdir(), 'carteiro-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1440, height: 900 },
    locale: 'pt-BR',
    timezoneId: 'America/Sao_Paulo',
  });
  return {
    context,
    async close() {
      await context.close().catch(() => {});
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
