import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Demo } from '../../cli/demo.ts';
import { DESK, screenshot, seriousViolations, signIn, skipReason, watchErrors, openDemo, type Browser, type DemoEnv } from './harness.ts';

/** The operator's page on the real demo: the city map with the district's 30 sensors, offline (no tiles). */
describe.skipIf(skipReason !== null)('the operator page map in a browser', () => {
  let env: DemoEnv | undefined;
  let demo: Demo;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    env = await openDemo('opmap');
    ({ demo, base, browser } = env);
    await demo.cloud.users.create('map-operator', 'operator', undefined, 'map-operator-pass-1');
  }, 60_000);

  afterAll(async () => {
    await env?.close();
  });

  it('shows every device of the district over the outlines, asks no other origin, and opens a device from its marker', async () => {
    const context = await browser.newContext(DESK);
    const page = await context.newPage();
    const errors = watchErrors(page);
    const foreign: string[] = [];
    page.on('request', (r) => { if (!r.url().startsWith(base) && !r.url().startsWith('data:')) foreign.push(r.url()); });
    try {
      await signIn(page, base, 'map-operator', 'map-operator-pass-1');
      await page.waitForURL((u) => u.pathname === '/operator');
      await expect.poll(() => page.locator('.cs-marker').count(), { timeout: 15_000 }).toBe(demo.district.devices.length);
      expect(await page.locator('.cs-district-label').allTextContents()).toEqual(['香洲区', '斗门区', '金湾区']);
      expect(await page.locator('.leaflet-tile-pane img').count()).toBe(0);
      await screenshot(page, 'operator-map');
      expect(await seriousViolations(page)).toEqual([]);
      const first = demo.district.devices[0];
      await page.locator(`.cs-marker[title^="${first.name} "]`).click();
      await page.waitForURL((u) => u.pathname === `/operator/devices/${first.id}`);
      expect(errors).toEqual([]);
      expect(foreign).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
