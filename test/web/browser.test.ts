import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDemo, DEMO_DISTRICT, type Demo } from '../../cli/demo.ts';
import { simSet } from '../../cli/run-sim.ts';

/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core, docs/architecture.md#platform-notes)
 * against a real demo on loopback: the operator opens the printed link and sees the sensors and
 * a case opening. Skips, saying why, without playwright-core or /usr/bin/chromium.
 * CS_WEB_SCREENSHOT=FILE keeps a screenshot of the board for a person to look at.
 */

const CHROMIUM = process.env.CS_CHROMIUM ?? '/usr/bin/chromium';
const pw = await import('playwright-core').catch(() => null);
const skipReason = !pw ? 'playwright-core is not installed (npm install)'
  : !existsSync(CHROMIUM) ? `${CHROMIUM} is absent (apt-get install chromium)` : null;
if (skipReason) console.warn(`dashboard browser test skipped: ${skipReason}`);

type Browser = Awaited<ReturnType<NonNullable<typeof pw>['chromium']['launch']>>;

describe.skipIf(skipReason !== null)('the dashboard in a browser', () => {
  let dir: string;
  let demo: Demo;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'cs-web-browser-'));
    demo = buildDemo({ dataDir: dir, mqttPort: 0, httpPort: 0, scenarios: false, pollMs: 500 });
    base = (await demo.start()).http;
    browser = await pw!.chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 60_000);

  afterAll(async () => {
    // The browser first: its event stream would otherwise hold the cloud's server open.
    await browser?.close();
    await demo?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('shows the 30 sensors on the map from the demo link, and a breach written over Modbus appears as a live case, and the banner follows emergency mode', async () => {
    const page = await browser.newPage({ viewport: { width: 1360, height: 960 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    try {
      await page.goto(`${base}/#token=${demo.tokens.operator}`);
      // The token leaves the address bar at once; the board replaces the form.
      await expect.poll(() => page.url(), { timeout: 5000 }).toBe(`${base}/`);
      await page.locator('#board').waitFor({ state: 'visible', timeout: 10_000 });
      expect(await page.locator('#login').isVisible()).toBe(false);
      await expect.poll(() => page.locator('#map g.device').count(), { timeout: 10_000 }).toBe(30);
      // Every sensor reports through its edge and the broker: no marker stays silent or offline
      // (the API's `status` is normal, alarm, silent or offline since the operator data of issue 11).
      await expect.poll(() => page.locator('#map g.device:not(.st-silent):not(.st-offline)').count(), { timeout: 20_000, interval: 250 }).toBe(30);
      expect(await page.locator('#map g.device[data-kind="water-level"] circle.shape').count()).toBeGreaterThan(0);
      expect(await page.locator('#map g.device[data-kind="manhole-cover"] rect.shape').count()).toBeGreaterThan(0);
      expect(await page.locator('#map g.device[data-kind="pipeline"] polygon.shape').count()).toBeGreaterThan(0);
      await expect.poll(() => page.locator('#mode').textContent(), { timeout: 10_000 }).toContain('Emergency mode');
      await expect.poll(() => page.locator('#live').getAttribute('data-state'), { timeout: 10_000 }).toBe('on');
      // No case for the sensor yet (under a loaded CI machine a stalled poll may already have raised an offline case elsewhere).
      expect(await page.locator('#cases li[data-device="XZ-WL-002"]').count()).toBe(0);

      await simSet({ districtFile: DEMO_DISTRICT, dataDir: dir, device: 'XZ-WL-002', assignment: 'level_m=0.9' });
      // Through the event stream: well before the panel's 15 s fallback refresh.
      const item = page.locator('#cases li[data-device="XZ-WL-002"]');
      await item.waitFor({ state: 'visible', timeout: 10_000 });
      const text = await item.textContent();
      expect(text).toContain('waterlogging');
      expect(text).toMatch(/剩余 .* left/);
      expect(text).toContain('Xiangzhou Drainage Office');
      await expect.poll(() => page.locator('#map g.device[data-device="XZ-WL-002"]').getAttribute('class'), { timeout: 10_000 }).toContain('has-case');

      // Selecting the sensor shows its latest values with units and a sparkline of recent readings.
      await page.locator('#map g.device[data-device="XZ-WL-002"] .shape').click();
      const row = page.locator('#detail tr[data-point="level_m"]');
      await row.waitFor({ state: 'visible', timeout: 10_000 });
      expect(await row.locator('.value').textContent()).toMatch(/ m$/);
      await expect.poll(() => row.locator('svg.spark path').count(), { timeout: 10_000 }).toBe(1);

      // A commander switches to emergency mode: the banner shows the level and the gateways' answers.
      const sw = await demo.cloud.app.inject({
        method: 'POST', url: '/api/emergency', headers: { authorization: `Bearer ${demo.tokens.commander}` },
        payload: { mode: 'emergency', level: 'II', reason: 'Typhoon drill (台风演练)' },
      });
      expect(sw.statusCode).toBe(200);
      await expect.poll(() => page.locator('#mode').getAttribute('class'), { timeout: 10_000 }).toBe('mode emergency level-II');
      await expect.poll(() => page.locator('#mode').textContent(), { timeout: 15_000 }).toContain('gateways acknowledged 2/2');
      expect(await page.locator('#mode').textContent()).toContain('Typhoon drill');
      await expect.poll(() => item.locator('.badge.emg').count(), { timeout: 10_000 }).toBe(1);

      const shot = process.env.CS_WEB_SCREENSHOT;
      if (shot) await page.screenshot({ path: shot, fullPage: true });
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  }, 90_000);

  it('asks for a token when the one in the link is refused', async () => {
    const page = await browser.newPage();
    try {
      await page.goto(`${base}/#token=not-a-real-token`);
      await page.locator('#login-error').waitFor({ state: 'visible', timeout: 10_000 });
      expect(await page.locator('#login-error').textContent()).toContain('token unknown or revoked');
      expect(await page.locator('#board').isVisible()).toBe(false);
      // The refused token is not kept.
      expect(await page.evaluate('sessionStorage.getItem("citysteward.token")')).toBeNull();
    } finally {
      await page.close();
    }
  }, 30_000);
});
