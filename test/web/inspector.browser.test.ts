import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PHONE, screenshot, seriousViolations, signIn, skipReason, watchErrors, chineseLeft, demoUser, openDemo, type Browser, type DemoEnv, type DemoUser } from './harness.ts';

/**
 * The inspector's phone (README "Cases from people"), in Debian's chromium: in Chinese, a case of exposed
 * garbage at the phone's location with a photo, dispatched; in English, a damaged manhole cover picked as
 * the asset, fixed on the spot (closed at once); both in "my cases", no serious accessibility violation,
 * no Chinese left on the English page.
 */
const PHOTO = readFileSync(join(import.meta.dirname, '../fixtures/photos/tiny.jpg'));
const HERE = { latitude: 22.2712, longitude: 113.5671 };

describe.skipIf(skipReason !== null)('the inspector\'s phone in a browser', () => {
  let env: DemoEnv | undefined;
  let browser: Browser;
  let base: string;
  let inspector: DemoUser;

  beforeAll(async () => {
    env = await openDemo('inspector');
    ({ base, browser } = env);
    inspector = demoUser(env.usersFile, 'inspector');
  }, 60_000);
  afterAll(async () => {
    await env?.close();
  });

  it('registers a case at the phone\'s location with a photo, and a self-corrected one at an asset in English', async () => {
    const context = await browser.newContext({ ...PHONE, geolocation: HERE, permissions: ['geolocation'] });
    const page = await context.newPage();
    const errors = watchErrors(page);
    try {
      await signIn(page, base, inspector.username, inspector.password);
      await page.waitForURL((u) => u.pathname === '/inspect');
      expect(await page.locator('h1').textContent()).toBe('巡查上报');
      await page.locator('[data-test="inspect-category"] option[value="E0102"]').waitFor({ state: 'attached' });
      // Nothing chosen: the page says what is missing.
      await page.locator('[data-test="inspect-submit"]').click();
      expect(await page.locator('[data-test="inspect-problems"]').textContent()).toMatch(/请选择类别/);

      await page.locator('[data-test="inspect-category"]').selectOption('E0102');
      await page.locator('[data-test="inspect-gps"]').click();
      await page.locator('[data-test="inspect-gps-ok"]').waitFor();
      await page.locator('[data-test="inspect-address"]').fill('情侣中路');
      await page.locator('[data-test="inspect-description"]').fill('路边垃圾堆放');
      await page.locator('[data-test="inspect-photos"]').setInputFiles({ name: 'site.jpg', mimeType: 'image/jpeg', buffer: PHOTO });
      expect(await seriousViolations(page)).toEqual([]);
      await page.locator('[data-test="inspect-submit"]').click();
      await expect.poll(() => page.locator('[data-test="inspect-case"]').count(), { timeout: 15_000 }).toBe(1);
      expect(await page.locator('[data-test="inspect-case"]').first().textContent()).toMatch(/暴露垃圾.*已派遣/s);
      await screenshot(page, 'inspector-phone');

      await page.locator('[data-test="lang"]').click();
      await expect.poll(() => page.locator('html').getAttribute('lang')).toBe('en');
      expect(await page.locator('h1').textContent()).toBe('Report a case');
      await page.locator('[data-test="inspect-category"]').selectOption('C0104');
      const asset = await page.locator('[data-test="inspect-asset"] option').nth(1).getAttribute('value');
      await page.locator('[data-test="inspect-asset"]').selectOption(asset!);
      await page.locator('[data-test="inspect-description"]').fill('Cover cracked; replaced on the spot');
      await page.locator('[data-test="inspect-self-corrected"]').check();
      await page.locator('[data-test="inspect-submit"]').click();
      await expect.poll(() => page.locator('[data-test="inspect-case"]').count(), { timeout: 15_000 }).toBe(2);
      expect(await page.locator('[data-test="inspect-case"]').first().textContent()).toMatch(/Gas valve manhole cover.*closed/s);
      expect(await chineseLeft(page)).toEqual([]);
      expect(await seriousViolations(page)).toEqual([]);

      const cases = await page.evaluate(async () => (await (await fetch('/api/cases')).json()) as { items: { category: string; source: string; state: string; selfCorrected: boolean; photos: unknown[] }[] });
      expect(cases.items.map((c) => [c.category, c.source, c.state, c.selfCorrected, c.photos.length])).toEqual([
        ['C0104', 'inspector', 'closed', true, 0], ['E0102', 'inspector', 'dispatched', false, 1]]);
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);
});
