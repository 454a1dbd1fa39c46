/**
 * Debian's Chromium (`apt-get install chromium`), headless, driven by playwright-core: no browser
 * download, a fresh profile per launch, networking features that would reach outside loopback
 * turned off. Under CI=true a missing Chromium is a failure; elsewhere the caller skips with the
 * reason returned here.
 *
 * Screenshots go to ARTIFACTS_DIR (`test-artifacts/` at the repository root, gitignored; override
 * with TEST_ARTIFACTS_DIR) so a CI run keeps them for a person to look at.
 *
 *   const b = await launchBrowser();
 *   if ('skip' in b) return t.skip(b.skip);
 *   const page = await b.newPage();           // page.console: console errors and page errors seen so far
 *   await page.goto(url);
 *   await b.screenshot(page, 'study-list');   // → test-artifacts/study-list.png
 *   await b.close();
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM_BIN = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const ARTIFACTS_DIR = path.resolve(process.env.TEST_ARTIFACTS_DIR ?? path.join(import.meta.dirname, '../../test-artifacts'));

/** Flags for a quiet, loopback-only Chromium (playwright adds --headless and the profile dir itself). */
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface ConsoleLog {
  /** console.error messages and uncaught page errors, in order */
  errors: string[];
  /** every console message as "type: text" */
  all: string[];
}

export type WatchedPage = Page & { console: ConsoleLog };

export interface Browser {
  context: BrowserContext;
  userDataDir: string;
  /** A new page whose console errors and page errors are recorded in `page.console`. */
  newPage: () => Promise<WatchedPage>;
  /** Full-page PNG in ARTIFACTS_DIR; returns its path. */
  screenshot: (page: Page, name: string) => Promise<string>;
  close: () => Promise<void>;
}

/** Why Chromium cannot run here, or undefined when it can. */
export function browserUnavailable(): string | undefined {
  if (!fs.existsSync(CHROMIUM_BIN)) return `Chromium not installed (${CHROMIUM_BIN}; apt-get install chromium)`;
  return undefined;
}

/** Launch Chromium with a fresh profile, or return { skip } when it is not installed (throws under CI=true). */
export interface LaunchOptions {
  viewport?: { width: number; height: number };
  /**
   * Resolve no host name but localhost, so a page cannot reach beyond loopback (without request
   * interception, which in playwright answers CORS preflights itself and would hide CORS bugs).
   */
  loopbackOnly?: boolean;
}

export async function launchBrowser(options: LaunchOptions = {}): Promise<Browser | { skip: string }> {
  const missing = browserUnavailable();
  if (missing) {
    if (process.env.CI === 'true') throw new Error(`CI=true and ${missing}`);
    return { skip: missing };
  }
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'chromium-profile-'));
  // a persistent context is how playwright takes a profile directory (--user-data-dir)
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM_BIN,
    headless: true,
    args: options.loopbackOnly ? [...CHROMIUM_ARGS, '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1'] : CHROMIUM_ARGS,
    viewport: options.viewport ?? { width: 1280, height: 800 },
  });
  const newPage = async (): Promise<WatchedPage> => {
    const page = (await context.newPage()) as WatchedPage;
    const log: ConsoleLog = { errors: [], all: [] };
    page.on('console', (m) => {
      log.all.push(`${m.type()}: ${m.text()}`);
      if (m.type() === 'error') log.errors.push(m.text());
    });
    page.on('pageerror', (e) => log.errors.push(`pageerror: ${e.message}`));
    page.console = log;
    return page;
  };
  const screenshot = async (page: Page, name: string): Promise<string> => {
    fs.mkdirSync(ARTIFACTS_DIR, { recursive: true });
    const file = path.join(ARTIFACTS_DIR, `${name.replace(/[^A-Za-z0-9._-]/g, '_')}.png`);
    await page.screenshot({ path: file, fullPage: true });
    return file;
  };
  const close = async () => {
    await context.close().catch(() => undefined);
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, userDataDir, newPage, screenshot, close };
}
