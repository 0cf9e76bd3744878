import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Demo } from '../../cli/demo.ts';
import { PHONE, screenshot, seriousViolations, skipReason, watchErrors, openDemo, type Browser, type DemoEnv } from './harness.ts';

/** The sign-in page on the real demo, in Chinese by default and in English after the switch. */
describe.skipIf(skipReason !== null)('the sign-in page in a browser', () => {
  let env: DemoEnv | undefined;
  let demo: Demo;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    env = await openDemo('signin');
    ({ demo, base, browser } = env);
  }, 60_000);

  afterAll(async () => {
    await env?.close();
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
