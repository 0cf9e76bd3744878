import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDemo, type Demo } from '../../cli/demo.ts';
import { launch, PHONE, screenshot, seriousViolations, skipReason, watchErrors, type Browser } from './harness.ts';

/** The sign-in page on the real demo, in Chinese by default and in English after the switch. */
describe.skipIf(skipReason !== null)('the sign-in page in a browser', () => {
  let dir: string;
  let demo: Demo;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-web-signin-'));
    demo = buildDemo({ dataDir: dir, mqttPort: 0, httpPort: 0, scenarios: false, pollMs: 1000 });
    base = (await demo.start()).http;
    browser = await launch();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await demo?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('opens on the sign-in form in Chinese, switches every string to English and back, and keeps the choice', async () => {
    const context = await browser.newContext(PHONE);
    const page = await context.newPage();
    const errors = watchErrors(page);
    try {
      await page.goto(`${base}/crew`);
      // Not signed in: the page sends the user to sign-in, remembering where they were going.
      await page.waitForURL((u) => u.pathname === '/signin' && u.searchParams.get('next') === '/crew');
      expect(await page.locator('h1').textContent()).toBe('登录');
      expect(await page.locator('html').getAttribute('lang')).toBe('zh-CN');
      await screenshot(page, 'signin-zh');
      await page.locator('[data-test="lang"]').click();
      await expect.poll(() => page.locator('h1').textContent()).toBe('Sign in');
      expect(await page.locator('label[for="password"]').textContent()).toBe('Password');
      expect(await page.locator('html').getAttribute('lang')).toBe('en');
      await page.reload();
      expect(await page.locator('h1').textContent()).toBe('Sign in');
      await page.locator('[data-test="lang"]').click();
      await expect.poll(() => page.locator('h1').textContent()).toBe('登录');
      expect(await seriousViolations(page)).toEqual([]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
