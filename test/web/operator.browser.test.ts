import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DISTRICT, type Demo } from '../../cli/demo.ts';
import { simSet } from '../../cli/run-sim.ts';
import { DESK, screenshot, seriousViolations, signIn, skipReason, watchErrors, chineseLeft, demoUser, openDemo, type Browser, type DemoEnv, type DemoUser } from './harness.ts';

/**
 * The operator's console on the real demo at 1440x900: the device list filtered on the server, a
 * device's month chart drawn from the history's buckets, an alarm raised by a breach acknowledged,
 * no serious accessibility violation on the three pages, and the language switch to English and back.
 */
const BREACHED = 'XZ-WL-002';

describe.skipIf(skipReason !== null)('the operator console in a browser', () => {
  let env: DemoEnv | undefined;
  let dir: string;
  let demo: Demo;
  let browser: Browser;
  let base: string;
  let operator: DemoUser;

  beforeAll(async () => {
    env = await openDemo('operator');
    ({ dir, demo, base, browser } = env);
    operator = demoUser(env.usersFile, 'operator');
  }, 60_000);

  afterAll(async () => {
    await env?.close();
  });

  it('filters the devices, draws a device\'s month from buckets, acknowledges a breach\'s alarm, and switches to English and back', async () => {
    const context = await browser.newContext(DESK);
    const page = await context.newPage();
    const errors = watchErrors(page);
    const rows = page.locator('[data-test="device-row"]');
    const total = demo.district.devices.length;
    const waterLevels = demo.district.devices.filter((d) => d.profile === 'water-level').length;
    try {
      await signIn(page, base, operator.username, operator.password);
      await page.waitForURL((u) => u.pathname === '/operator');
      await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(total);
      expect(await page.locator('[data-test="offline-gateways"]').textContent()).toBe('2 个中 0 个离线');

      // The filters ask the server (GET /api/devices?kind=...), and the map follows the table.
      const byKind = page.waitForResponse((r) => r.url().includes('/api/devices?kind=water-level'));
      await page.locator('[data-test="filter-kind"]').selectOption('water-level');
      expect((await byKind).status()).toBe(200);
      await expect.poll(() => rows.count()).toBe(waterLevels);
      await expect.poll(() => page.locator('.cs-marker').count()).toBe(waterLevels);
      await page.locator('[data-test="filter-q"]').fill(BREACHED);
      await expect.poll(() => rows.count()).toBe(1);

      // A breach: the device goes to alarm and its open case is counted.
      await simSet({ districtFile: DEMO_DISTRICT, dataDir: dir, device: BREACHED, assignment: 'level_m=0.9' });
      const row = rows.first();
      await expect.poll(() => row.getAttribute('data-status'), { timeout: 20_000 }).toBe('alarm');
      await page.locator('[data-test="filter-open"]').selectOption('true');
      await expect.poll(() => row.locator('[data-test="open-cases"]').textContent(), { timeout: 15_000 }).toBe('1');
      await page.locator('[data-test="filter-clear"]').click();
      await expect.poll(() => rows.count()).toBe(total);
      expect(await seriousViolations(page)).toEqual([]);
      await screenshot(page, 'operator-devices');

      // The device page: a month drawn from ~500 server-side buckets.
      await page.locator(`[data-test="device-row"][data-device="${BREACHED}"]`).click();
      await page.waitForURL((u) => u.pathname === `/operator/devices/${BREACHED}`);
      const chart = page.locator('[data-test="history-chart"]');
      await expect.poll(() => chart.getAttribute('data-points'), { timeout: 15_000 }).not.toBe('0');
      const month = page.waitForResponse((r) => /\/readings\?.*buckets=500/.test(r.url()));
      await page.locator('[data-test="range-30d"]').check();
      const answer = await (await month).json() as { from: string; to: string; stepMs: number; series: Record<string, { mean: number; count: number }[]> };
      // From the hour rollups: 86.4 min asked, rounded up to whole hours, `from` moved back to an hour boundary (README "Devices for the operator").
      expect(Date.parse(answer.to) - Date.parse(answer.from)).toBeGreaterThanOrEqual(30 * 86_400_000);
      expect(Date.parse(answer.to) - Date.parse(answer.from)).toBeLessThan(30 * 86_400_000 + 3_600_000);
      expect(answer.stepMs).toBe(Math.ceil(30 * 86_400_000 / 500 / 3_600_000) * 3_600_000);
      expect(answer.series.level_m.length).toBeGreaterThan(0);
      await expect.poll(() => chart.getAttribute('data-to')).toBe(String(Date.parse(answer.to)));
      expect(Number(await chart.getAttribute('data-points'))).toBe(answer.series.level_m.length);
      expect(await page.locator('[data-test="chart-step"]').getAttribute('data-step-ms')).toBe(String(answer.stepMs));
      await expect.poll(() => page.locator('[data-test="gateway-online"]').getAttribute('data-online')).toBe('true');
      await screenshot(page, 'operator-device');
      // Zooming in (the mouse wheel over the chart) fetches finer buckets for the window shown.
      const finer = page.waitForResponse((r) => /\/readings\?.*buckets=500/.test(r.url()) && !r.url().includes(encodeURIComponent(answer.from)));
      const box = (await chart.boundingBox())!;
      await page.mouse.move(box.x + box.width * 0.9, box.y + box.height / 2);
      for (let i = 0; i < 4; i++) await page.mouse.wheel(0, -400);
      const zoomed = await (await finer).json() as { from: string; to: string; stepMs: number };
      expect(Date.parse(zoomed.to) - Date.parse(zoomed.from)).toBeLessThan(30 * 86_400_000);
      await expect.poll(async () => Number(await page.locator('[data-test="chart-step"]').getAttribute('data-step-ms'))).toBe(zoomed.stepMs);
      expect(zoomed.stepMs).toBeLessThan(answer.stepMs);

      // The breach's alarm, acknowledged here.
      const alarm = page.locator('[data-test="alarm"][data-active="true"]').first();
      await alarm.waitFor({ timeout: 15_000 });
      const alarmId = (await alarm.getAttribute('data-alarm'))!;
      // The alarm links to the open case it opened, listed beside it.
      await expect.poll(() => page.locator('[data-test="open-case"]').count()).toBe(1);
      const caseId = await alarm.locator('[data-test="alarm-case"]').textContent();
      expect(await page.locator('[data-test="open-case"]').getAttribute('id')).toBe(`case-${caseId}`);
      expect(await seriousViolations(page)).toEqual([]);
      await alarm.locator('[data-test="ack"]').click();
      await expect.poll(() => page.locator(`[data-test="alarm"][data-alarm="${alarmId}"]`).getAttribute('data-acked')).toBe('true');
      expect(await page.locator(`[data-test="alarm"][data-alarm="${alarmId}"] [data-test="acked"]`).textContent()).toContain('user:operator');
      const stored = await (await fetch(`${base}/api/alarms?device=${BREACHED}`, { headers: { authorization: `Bearer ${demo.tokens.commander}` } })).json() as { items: { id: string; acknowledgedBy: string | null }[] };
      expect(stored.items.find((a) => a.id === alarmId)?.acknowledgedBy).toBe('user:operator');

      // The alarms page lists it, active first, acknowledged; filtered by severity and device.
      await page.locator('nav a[href="/operator/alarms"]').click();
      await page.waitForURL((u) => u.pathname === '/operator/alarms');
      const listed = page.locator(`[data-test="alarm"][data-alarm="${alarmId}"]`);
      await listed.waitFor({ timeout: 10_000 });
      expect(await listed.getAttribute('data-acked')).toBe('true');
      await page.locator('[data-test="alarm-filter-device"]').selectOption(BREACHED);
      await expect.poll(async () => (await page.locator('[data-test="alarm"]').evaluateAll((els) => els.map((e) => e.getAttribute('data-device')))).every((d) => d === BREACHED)).toBe(true);
      expect(await seriousViolations(page)).toEqual([]);

      // English on the three pages, then back: the pages' own words change, data stays as entered.
      await page.locator('[data-test="lang"]').click();
      await expect.poll(() => page.locator('h1').textContent()).toBe('Alarms');
      expect(await listed.locator('[data-test="acked"]').textContent()).toMatch(/^Acknowledged .* by user:operator$/);
      expect(await chineseLeft(page)).toEqual([]);
      await page.goto(`${base}/operator/devices/${BREACHED}`);
      await expect.poll(() => page.locator('#health-h').textContent()).toBe('Health');
      expect(await chineseLeft(page)).toEqual([]);
      await page.goto(`${base}/operator`);
      await expect.poll(() => rows.count(), { timeout: 15_000 }).toBe(total);
      expect(await page.locator('[data-test="offline-gateways"]').textContent()).toBe('0 of 2 offline');
      expect(await chineseLeft(page)).toEqual([]);
      await page.locator('[data-test="lang"]').click();
      await expect.poll(() => page.locator('h1').textContent()).toBe('设备监测');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
