// Headless Chromium for the browser tests: Debian's chromium driven by
// playwright-core, with the flags this machine's closed network needs.
import { existsSync } from 'node:fs';

export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
  });
}

// chromiumSkip is the skip reason of a browser test suite: false when
// Chromium is there. Under CI a missing Chromium is an error, never a skip.
export function chromiumSkip() {
  if (existsSync(CHROMIUM)) return false;
  if (process.env.CI === 'true') {
    throw new Error(`Chromium is required under CI: ${CHROMIUM} is missing (apt-get install -y chromium)`);
  }
  return `Chromium not found at ${CHROMIUM}; skipping the browser tests`;
}

// demoLogin opens the demo at url in a new browser context, signs in as
// name and waits for its socket. Page errors (and dialogs, which the demo
// never opens) go to onError.
export async function demoLogin(browser, url, name, { viewport = { width: 1000, height: 700 }, onError } = {}) {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  page.on('pageerror', (err) => onError?.(err));
  page.on('dialog', (d) => { onError?.(new Error('dialog: ' + d.message())); d.dismiss(); });
  await page.goto(url + '/');
  await page.fill('[data-testid=login-name]', name);
  await page.click('[data-testid=login-submit]');
  await page.waitForSelector('#status[data-state=connected]');
  return page;
}
