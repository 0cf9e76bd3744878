import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildDemo, type Demo, type DemoOptions } from '../../cli/demo.ts';

/**
 * What the browser tests share (docs/architecture.md#platform-notes): Debian's chromium driven by
 * playwright-core (never `playwright install`), a page that fails the test on any script error or
 * CSP refusal, an accessibility check with axe-core, and screenshots for README under docs/screenshots.
 * Tests skip, saying why, without playwright-core or /usr/bin/chromium; under CI (env CI set) or
 * CS_REQUIRE_BROWSER=1 they fail instead, so a CI run without a browser cannot pass silently.
 */

export const CHROMIUM = process.env.CS_CHROMIUM ?? '/usr/bin/chromium';
export const pw = await import('playwright-core').catch(() => null);
export const skipReason = !pw ? 'playwright-core is not installed (npm install)'
  : !existsSync(CHROMIUM) ? `${CHROMIUM} is absent (apt-get install chromium)` : null;
const underCi = !!process.env.CI && !['0', 'false'].includes(process.env.CI);
if (skipReason && (underCi || process.env.CS_REQUIRE_BROWSER === '1')) {
  throw new Error(`browser tests required (${process.env.CS_REQUIRE_BROWSER === '1' ? 'CS_REQUIRE_BROWSER=1' : 'CI is set'}) but cannot run: ${skipReason}`);
}
if (skipReason) console.warn(`browser tests skipped: ${skipReason}`);

export type Browser = Awaited<ReturnType<NonNullable<typeof pw>['chromium']['launch']>>;
export type BrowserContext = Awaited<ReturnType<Browser['newContext']>>;
export type Page = Awaited<ReturnType<BrowserContext['newPage']>>;

export function launch(): Promise<Browser> {
  return pw!.chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

/** Phone first: the crew's page is made for a 390x844 screen; the command board for a 1920x1080 wall. */
export const PHONE = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true } as const;
export const WALL = { viewport: { width: 1920, height: 1080 } } as const;
export const DESK = { viewport: { width: 1440, height: 900 } } as const;

/** Collects page errors, console errors and CSP refusals; the test asserts the list is empty. */
export function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const url = m.location().url ?? '';
    // Expected by design: the event stream's reconnect after a restart, the page asking whether anyone
    // is signed in (401 when not), and requests made while the test holds the browser offline.
    if (/\/api\/(events|session)$/.test(url) || /ERR_CONNECTION_REFUSED|ERR_INTERNET_DISCONNECTED/.test(m.text())) return;
    errors.push(`${m.text()} (${url})`);
  });
  return errors;
}

/** Signs in through the page's form as a person would. */
export async function signIn(page: Page, base: string, username: string, password: string): Promise<void> {
  await page.goto(`${base}/signin`);
  await page.locator('#username').fill(username);
  await page.locator('#password').fill(password);
  await page.locator('[data-test="signin-form"] button[type="submit"]').click();
  await page.waitForURL((u) => !u.pathname.startsWith('/signin'), { timeout: 15_000 });
}

const requireHere = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(requireHere.resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation { id: string; impact: string | null; help: string; nodes: number; targets: string[] }

/**
 * Runs axe-core in the page (injected as a script: the page's CSP allows only its own scripts, and a
 * page-context evaluation is not bound by it) and returns the serious and critical violations.
 */
export async function seriousViolations(page: Page): Promise<AxeViolation[]> {
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: unknown, opts: unknown) => Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: string[] }[] }[] }> } }).axe;
    const r = await axe.run((globalThis as unknown as { document: unknown }).document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

export const SCREENSHOTS = fileURLToPath(new URL('../../docs/screenshots/', import.meta.url));

/** Saves a screenshot for README (docs/screenshots/NAME.png) when CS_SCREENSHOTS=1 (`npm run screenshots`). */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.CS_SCREENSHOTS !== '1') return;
  mkdirSync(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) });
}

/** Chinese characters and their punctuation: what must not be left on a page switched to English. */
export const CJK = /[\u3400-\u9fff\uf900-\ufaff\u3000-\u303f\uff00-\uffef]/;

/**
 * The page's visible text outside data (names, addresses, notes people typed: marked `.data` or
 * `data-raw`) and outside other-language labels (the language switch, marked with its `lang`).
 * A string: the tests' TypeScript has no DOM types; this runs in the page.
 */
const VISIBLE_TEXT = `(() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    const text = n.textContent.trim();
    if (!el || !text || el.closest('.data, [data-raw], [lang]:not(html), script, style, noscript') || !el.checkVisibility()) continue;
    out.push(text);
  }
  return out;
})()`;

/** What of the page's own words (not data) is still in Chinese: empty on a page switched to English. */
export async function chineseLeft(page: Page): Promise<string[]> {
  return (await page.evaluate<string[]>(VISIBLE_TEXT)).filter((s) => CJK.test(s));
}

export interface DemoUser { username: string; password: string; role: string; unit: string | null }

/** A demo account of the role (and unit) from the demo's users file (<dataDir>/demo-users.json). */
export function demoUser(usersFile: string, role: string, unit?: string): DemoUser {
  const users = (JSON.parse(readFileSync(usersFile, 'utf8')) as { users: DemoUser[] }).users;
  const u = users.find((x) => x.role === role && (unit === undefined || x.unit === unit));
  if (!u) throw new Error(`${usersFile} has no ${role}${unit ? ` of ${unit}` : ''}`);
  return u;
}

/** A real demo on loopback (ephemeral ports, a temp data directory) and a browser, for one test file. */
export interface DemoEnv {
  dir: string;
  demo: Demo;
  base: string;
  usersFile: string;
  browser: Browser;
  /** Closes the browser first (its event streams would hold the cloud open), then the demo, then removes the directory. */
  close(): Promise<void>;
}

export async function openDemo(name: string, opts: Partial<DemoOptions> = {}): Promise<DemoEnv> {
  const dir = mkdtempSync(join(tmpdir(), `cs-web-${name}-`));
  const demo = buildDemo({ dataDir: dir, mqttPort: 0, httpPort: 0, scenarios: false, pollMs: 1000, ...opts });
  let browser: Browser | undefined;
  const close = async () => {
    await browser?.close();
    await demo.stop();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const at = await demo.start();
    browser = await launch();
    return { dir, demo, base: at.http, usersFile: at.usersFile, browser, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
