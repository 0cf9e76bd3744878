import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withKeyStore } from '../../cloud/open311/keys.ts';
import { DESK, seriousViolations, signIn, skipReason, watchErrors, demoUser, openDemo, type Browser, type DemoEnv, type DemoUser } from './harness.ts';

/**
 * Citizen reports on the operator's console (README "Open311"): two reports posted through Open311 by a
 * client app wait for acceptance; the operator accepts one (its case is dispatched, the citizen sees the
 * deadline) and refuses the other with a reason the citizen sees; no serious accessibility violation.
 */
describe.skipIf(skipReason !== null)('citizen reports on the operator console in a browser', () => {
  let env: DemoEnv | undefined;
  let browser: Browser;
  let base: string;
  let operator: DemoUser;
  let key: string;

  beforeAll(async () => {
    env = await openDemo('citizen-reports');
    ({ base, browser } = env);
    operator = demoUser(env.usersFile, 'operator');
    ({ key } = await withKeyStore({ kind: 'sqlite', file: join(env.dir, 'citysteward.db') }, (k) => k.create('browser test app')));
  }, 60_000);
  afterAll(async () => {
    await env?.close();
  });

  const report = async (code: string, description: string): Promise<string> => {
    const r = await fetch(`${base}/open311/v2/requests.json`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ api_key: key, service_code: code, lat: '22.27', long: '113.55', description, phone: '13800000000' }).toString(),
    });
    expect(r.status).toBe(200);
    return ((await r.json()) as { service_request_id: string }[])[0].service_request_id;
  };
  const request = async (id: string) => ((await (await fetch(`${base}/open311/v2/requests/${id}.json`)).json()) as Record<string, unknown>[])[0];

  it('accepts one report (its case dispatched) and refuses another with a reason', async () => {
    const services = (await (await fetch(`${base}/open311/v2/services.json`)).json()) as { service_code: string }[];
    const code = services[0].service_code;
    const first = await report(code, '路面积水，车辆无法通行');
    const second = await report(code, '同一处积水');
    const context = await browser.newContext(DESK);
    const page = await context.newPage();
    const errors = watchErrors(page);
    try {
      await signIn(page, base, operator.username, operator.password);
      await page.waitForURL((u) => u.pathname === '/operator');
      const one = page.locator(`[data-test="report-${first}"]`);
      const two = page.locator(`[data-test="report-${second}"]`);
      await expect.poll(() => one.count(), { timeout: 15_000 }).toBe(1);
      expect(await one.textContent()).toContain('13800000000');
      expect(await seriousViolations(page)).toEqual([]);

      await one.locator('[data-test="report-accept"]').click();
      await expect.poll(() => page.locator('[data-test="report-done"]').textContent(), { timeout: 10_000 }).toMatch(/已受理/);
      await expect.poll(() => one.count()).toBe(0);
      const accepted = await request(first);
      expect(accepted).toMatchObject({ status: 'open', expected_datetime: expect.any(String), agency_responsible: expect.any(String) });

      await two.locator('[data-test="report-refuse"]').click();
      expect(await page.locator('[role="alert"]').first().textContent()).toMatch(/理由/);
      await two.locator('[data-test="report-reason"]').fill('重复举报');
      await two.locator('[data-test="report-refuse"]').click();
      await expect.poll(() => two.count(), { timeout: 10_000 }).toBe(0);
      expect(await request(second)).toMatchObject({ status: 'closed', status_notes: '重复举报' });
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
