import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEMO_DISTRICT, type Demo } from '../../cli/demo.ts';
import { simSet } from '../../cli/run-sim.ts';
import { screenshot, seriousViolations, signIn, skipReason, WALL, watchErrors, chineseLeft, demoUser, openDemo, type Browser, type DemoEnv, type DemoUser } from './harness.ts';

/**
 * The command centre's board on the real demo with its two edge gateways, on a 1920x1080 wall: the
 * commander switches emergency mode (level II, with a reason) and sees both gateways acknowledge, the
 * map shows every sensor, a breach arrives as an open case counting down, a crew's extension request
 * is approved and a second one refused, and the language switch turns the board's own words to English and back.
 */
describe.skipIf(skipReason !== null)('the command board in a browser', () => {
  let env: DemoEnv | undefined;
  let dir: string;
  let demo: Demo;
  let browser: Browser;
  let base: string;
  let commander: DemoUser;

  beforeAll(async () => {
    env = await openDemo('command');
    ({ dir, demo, base, browser } = env);
    commander = demoUser(env.usersFile, 'commander');
  }, 60_000);

  afterAll(async () => {
    await env?.close();
  });

  const bearer = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });
  async function apiCall<T>(method: string, path: string, token: string, body?: unknown): Promise<T> {
    const r = await fetch(`${base}${path}`, { method, headers: bearer(token), body: body === undefined ? undefined : JSON.stringify(body) });
    expect(r.status, `${method} ${path}: ${await r.clone().text()}`).toBeLessThan(300);
    return r.json() as Promise<T>;
  }

  it('switches to emergency level II with a reason and sees 2 of 2 gateways acknowledge; a breach counts down; an extension is approved and another refused; English and back', async () => {
    const context = await browser.newContext(WALL);
    const page = await context.newPage();
    const errors = watchErrors(page);
    const modeText = page.locator('[data-test="mode-text"]');
    const acks = page.locator('[data-test="acks-count"]');
    try {
      await signIn(page, base, commander.username, commander.password);
      await page.waitForURL((u) => u.pathname === '/command');
      await expect.poll(() => modeText.textContent()).toBe('常态');
      // Every demo sensor is on the map (30, fewer than clustering starts at).
      await expect.poll(() => page.locator('.cs-marker').count(), { timeout: 15_000 }).toBe(demo.district.devices.length);

      // The switch asks for a level and a reason in a modal dialog before anything changes.
      await page.locator('[data-test="mode-switch"]').click();
      const dialog = page.locator('[data-test="switch-dialog"]');
      expect(await dialog.getAttribute('open')).not.toBeNull();
      await page.locator('[data-test="switch-reason"]').fill('台风橙色预警，演练');
      await page.locator('[data-test="switch-confirm"]').click();
      await expect.poll(() => page.locator('[data-test="switch-error"]').textContent()).toBe('启动应急状态须选择响应级别');
      expect(await modeText.textContent()).toBe('常态');
      await page.locator('[data-test="switch-level"]').selectOption('II');
      await page.locator('[data-test="switch-confirm"]').click();
      await expect.poll(() => modeText.getAttribute('data-level')).toBe('II');
      expect(await modeText.textContent()).toBe('应急 II 级');
      expect(await dialog.getAttribute('open')).toBeNull();
      // The gateways acknowledge fast mode; the board polls until they all have.
      await expect.poll(() => acks.textContent(), { timeout: 20_000 }).toContain('2 / 2 个网关已确认');
      expect(await page.locator('[data-test="acks-missing"]').count()).toBe(0);
      // The audit log names the switch, who made it and why.
      const logged = await page.locator('[data-test="log-entry"]').first().textContent();
      expect(logged).toContain('启动应急');
      expect(logged).toContain('台风橙色预警，演练');

      // A warning received shows with what it did.
      const sent = new Date(Date.now() - 60_000).toISOString().replace(/\.\d+Z$/, '+00:00');
      const cap = readFileSync(new URL('../fixtures/cap/orange-typhoon.xml', import.meta.url), 'utf8').replace(/<sent>[^<]+</, `<sent>${sent}<`);
      expect((await fetch(`${base}/api/warnings`, { method: 'POST', headers: { authorization: `Bearer ${demo.tokens.commander}`, 'content-type': 'application/cap+xml' }, body: cap })).status).toBe(202);

      // A breach becomes an open case on the board with its countdown, marked by class and period apart.
      await simSet({ districtFile: DEMO_DISTRICT, dataDir: dir, device: 'XZ-WL-002', assignment: 'level_m=0.9' });
      const row = page.locator('[data-test="case"][data-device="XZ-WL-002"]');
      await row.waitFor({ timeout: 20_000 });
      await expect.poll(() => row.locator('[data-test="countdown"]').textContent()).toMatch(/^剩余 \d+小时\d+分$/);
      expect(await row.locator('[data-test="class-urgent"]').textContent()).toBe('紧急类');
      expect(await row.locator('[data-test="emergency-period"]').textContent()).toMatch(/^应急期间 #\d+$/);
      await expect.poll(() => page.locator('[data-test="warning"]').count(), { timeout: 20_000 }).toBe(1);
      // Its marker takes the tier breached (under the emergency thresholds now in force), no longer "normal".
      const wl2 = demo.district.devices.find((d) => d.id === 'XZ-WL-002')!;
      await expect.poll(() => page.locator(`.cs-marker[title^="${wl2.name} · "]`).getAttribute('title'), { timeout: 10_000 }).toMatch(/ · (提示|一般|严重|紧急)$/);

      // The unit's crew asks for more time through the API; the request reaches the board live.
      const caseId = await row.getAttribute('data-case');
      const before = await apiCall<{ unit: string; deadline: string }>('GET', `/api/cases/${caseId}`, demo.tokens.commander);
      // A whole minute: the approval's datetime field (in the city's zone) is to the minute.
      const until = new Date(Math.floor(Date.parse(before.deadline) / 60_000) * 60_000 + 30 * 60_000).toISOString();
      await apiCall('POST', `/api/cases/${caseId}/request-extension`, demo.tokens[`crew:${before.unit}`], { reason: '积水过深，需调泵车', until });
      const ext = page.locator(`[data-test="extension"][data-case="${caseId}"]`);
      await ext.waitFor({ timeout: 10_000 });
      await ext.locator('[data-test="ext-approve"]').click();
      await page.locator('[data-test="ext-reason"]').fill('同意，调派泵车');
      await page.locator('[data-test="ext-confirm"]').click();
      await ext.waitFor({ state: 'detached', timeout: 10_000 });
      const after = await apiCall<{ deadline: string; extensionRequest: unknown }>('GET', `/api/cases/${caseId}`, demo.tokens.commander);
      expect(after).toMatchObject({ deadline: until, extensionRequest: null });

      // A second request is refused with a reason: the deadline stays.
      await apiCall('POST', `/api/cases/${caseId}/request-extension`, demo.tokens[`crew:${before.unit}`], { reason: '再延一小时' });
      await ext.waitFor({ timeout: 10_000 });
      await ext.locator('[data-test="ext-refuse"]').click();
      expect(await page.locator('#ext-until').count()).toBe(0);
      await page.locator('[data-test="ext-reason"]').fill('已批准过一次，请按时办结');
      await page.locator('[data-test="ext-confirm"]').click();
      await ext.waitFor({ state: 'detached', timeout: 10_000 });
      expect(await apiCall('GET', `/api/cases/${caseId}`, demo.tokens.commander)).toMatchObject({ deadline: until, extensionRequest: null });

      await screenshot(page, 'command-board');
      expect(await seriousViolations(page)).toEqual([]);

      // English: the board's own words change, data (unit names, addresses, typed reasons) stays as entered.
      await page.locator('[data-test="lang"]').click();
      await expect.poll(() => page.locator('h1').textContent()).toBe('Command centre');
      expect(await modeText.textContent()).toBe('Emergency level II');
      expect(await acks.textContent()).toContain('2 of 2 gateways acknowledged');
      expect(await row.locator('[data-test="countdown"]').textContent()).toMatch(/^\d+ h \d+ min left$/);
      expect(await row.locator('[data-test="class-urgent"]').textContent()).toBe('Urgent');
      expect(await chineseLeft(page)).toEqual([]);
      await screenshot(page, 'command-board-en');
      expect(await seriousViolations(page)).toEqual([]);
      await page.locator('[data-test="lang"]').click();
      await expect.poll(() => page.locator('h1').textContent()).toBe('应急指挥');

      // Back to normal (the dialog proposes it while in emergency); the gateways acknowledge again.
      await page.locator('[data-test="mode-switch"]').click();
      expect(await page.locator('[data-test="target-normal"]').isChecked()).toBe(true);
      await page.locator('[data-test="switch-reason"]').fill('预警解除');
      await page.locator('[data-test="switch-confirm"]').click();
      await expect.poll(() => modeText.textContent()).toBe('常态');
      await expect.poll(() => page.locator('#acks-h').textContent()).toBe('网关恢复常态确认');
      await expect.poll(() => acks.textContent(), { timeout: 20_000 }).toContain('2 / 2 个网关已确认');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 90_000);
});
