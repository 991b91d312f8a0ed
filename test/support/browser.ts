/**
 * Real Chromium for the browser tests: Debian's /usr/bin/chromium driven by playwright-core, which
 * never downloads a browser of its own. Each launch gets a fresh, empty profile (--user-data-dir in
 * a new temp folder) and the flags these machines need: as root Chromium needs --no-sandbox, and
 * without the background-networking flags it fills the log with refused connections.
 */
import { access, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = process.env.HUBSINK_CHROMIUM ?? '/usr/bin/chromium';

const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  /** console errors and uncaught page errors seen so far, on every page of the context. */
  errors: string[];
  close(): Promise<void>;
}

export async function chromiumMissing(): Promise<string | null> {
  try {
    await access(CHROMIUM);
    return null;
  } catch {
    return `${CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)`;
  }
}

export async function launchBrowser(opts: { width?: number; height?: number } = {}): Promise<TestBrowser> {
  // launchPersistentContext passes this folder as --user-data-dir: a fresh, empty profile.
  const profile = await mkdtemp(path.join(tmpdir(), 'hubsink-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: FLAGS,
    viewport: { width: opts.width ?? 1400, height: opts.height ?? 1000 },
    timezoneId: 'Europe/Berlin',
  });
  const errors: string[] = [];
  const watch = (page: Page): void => {
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(`console: ${m.text()} (${m.location().url})`);
    });
    page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  };
  context.on('page', watch);
  const page = context.pages()[0] ?? (await context.newPage());
  watch(page);
  return {
    context,
    page,
    errors,
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

/**
 * Runs a JavaScript expression in the page. The tests are type-checked without the DOM library
 * (they run in Node), so page-side code is passed as text.
 */
export async function inPage<T>(target: Page, expression: string): Promise<T> {
  return (await target.evaluate(expression)) as T;
}

/** The cells of a table element: header texts and body rows. */
export async function tableCells(target: Page, selector: string): Promise<{ head: string[]; rows: string[][] }> {
  return inPage(
    target,
    `(() => { const t = document.querySelector(${JSON.stringify(selector)}); if (!t) return null;
      return { head: [...t.querySelectorAll('thead th')].map((th) => th.textContent ?? ''),
               rows: [...t.querySelectorAll('tbody tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent ?? '')) }; })()`,
  );
}

/** The little of the page's globals the wait functions read (the tests have no DOM types). */
interface PageGlobals {
  document: { body: { dataset: Record<string, string | undefined> } };
  location: { hash: string };
}

/**
 * Waits until the dashboard has painted data loaded after `after` (ms since the epoch). Passed as a
 * function, not text: the page's Content-Security-Policy forbids evaluating strings.
 */
export async function waitForLoad(target: Page, after = 0, timeout = 20_000): Promise<void> {
  await target.waitForFunction((t) => Number((globalThis as unknown as PageGlobals).document.body.dataset.loadedAt ?? 0) > t, after, { timeout });
}

export async function waitForHash(target: Page, part: string, timeout = 10_000): Promise<void> {
  await target.waitForFunction((p) => (globalThis as unknown as PageGlobals).location.hash.includes(p), part, { timeout });
}
