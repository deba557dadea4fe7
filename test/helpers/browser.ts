// Headless Chromium (Debian's `chromium` package) driven by playwright-core, for the dashboard
// tests: the one file that imports playwright-core. Console errors and uncaught page errors are
// collected so a test can require none.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot } from './ringmaster.ts';

export const chromiumBin = '/usr/bin/chromium';
/** Screenshots land here; CI keeps the directory as an artifact (it is gitignored). */
export const resultsDir = join(repoRoot, 'test-results');

export type { Page };

/** Skip reason when Chromium is missing; in CI a missing browser is an error, not a skip. */
export function skipUnlessChromium(): string | false {
  if (existsSync(chromiumBin)) return false;
  const reason = `needs the Debian package chromium (apt-get install chromium) at ${chromiumBin}`;
  if (process.env.CI === 'true') throw new Error(`${reason}; CI must not skip real-software tests`);
  return reason;
}

export type Session = {
  page: Page;
  /** Console errors, failed requests' console lines and uncaught exceptions so far. */
  problems: string[];
  screenshot(name: string): Promise<string>;
  close(): Promise<void>;
};

export async function openBrowser(): Promise<Session> {
  // Tests run as root, where Chromium's sandbox cannot start.
  const browser: Browser = await chromium.launch({ executablePath: chromiumBin, args: ['--no-sandbox', '--disable-dev-shm-usage'], headless: true });
  // ringmaster's certificate is issued by its own CA for its certnames, not for 127.0.0.1.
  const context: BrowserContext = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  const dir = join(resultsDir, 'dashboard');
  await mkdir(dir, { recursive: true });
  return {
    page,
    problems,
    screenshot: async (name) => {
      const path = join(dir, `${name}.png`);
      await page.screenshot({ path, fullPage: true });
      return path;
    },
    close: async () => {
      await context.close();
      await browser.close();
    },
  };
}
