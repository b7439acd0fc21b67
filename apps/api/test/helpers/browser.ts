import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Browser, chromium, Page } from 'playwright-core';

/** Debian's Chromium, driven by playwright-core (.ci/run installs it). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// A developer machine without it skips the browser files; CI must have it.
export const haveChromium = existsSync(CHROMIUM);
if (!haveChromium && process.env.CI) throw new Error(`CI must have Chromium at ${CHROMIUM} (.ci/run installs it)`);

/** Headless, sandbox off (containers), no network chatter of its own. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** Screenshots of the POS browser tests, kept as test output (git-ignored). */
export const POS_SHOTS = resolve(__dirname, '..', '..', '.test-output', 'pos');

/** A POS element by its data-testid. */
export const testId = (testid: string): string => `[data-testid="${testid}"]`;

/** The POS status badge showing status `s`. */
export const posStatus = (s: string): string => `${testId('status')}[data-status="${s}"]`;

/** A full-page screenshot into POS_SHOTS. */
export const posShot = (page: Page, name: string): Promise<Buffer> =>
  page.screenshot({ path: join(POS_SHOTS, `${name}.png`), fullPage: true });

/** A new page of `size` (a phone's, or a till's screen) with the POS at `url` loaded and ready. */
export async function openPosPage(
  browser: Browser,
  url: string,
  size: 'phone' | 'till',
  wait: { timeout: number },
): Promise<Page> {
  const page = await browser.newPage({
    viewport: size === 'phone' ? { width: 390, height: 844 } : { width: 1280, height: 800 },
  });
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]', wait);
  return page;
}
